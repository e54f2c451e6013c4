//! The case sets over the whole registry: the quick and default sets still cover every part
//! at its telling shapes, and the full set is every case.

use candle_core::Device;
use mistral_rs_bench::case::id::{Case, CaseId, Subject, Workload};
use mistral_rs_bench::case::{set, CaseSet, Group};
use mistral_rs_bench::config::{Models, RunProfile};
use mistral_rs_bench::parts::REGISTRY;
use mistral_rs_bench::run::harness::{specs_of, Setup};
use std::collections::{BTreeMap, BTreeSet};
use strum::IntoEnumIterator;

/// Every case id the CPU run generates for the default presets, with its smallest set.
fn cpu_cases() -> Vec<(CaseId, CaseSet)> {
    let setup = Setup {
        device: Device::Cpu,
        presets: Models::load_default().unwrap().selected().unwrap(),
        profile: RunProfile::DEFAULT,
    };
    let mut out = Vec::new();
    for part in REGISTRY {
        let specs = specs_of(&setup, part).unwrap();
        let ids: Vec<CaseId> = specs.iter().map(|(_, _, s)| s.id.clone()).collect();
        let sets = set::assign(&ids);
        out.extend(ids.into_iter().zip(sets));
    }
    out
}

fn in_set(cases: &[(CaseId, CaseSet)], s: CaseSet) -> Vec<&CaseId> {
    cases
        .iter()
        .filter(|(_, smallest)| s.holds(*smallest))
        .map(|(id, _)| id)
        .collect()
}

#[test]
fn every_part_is_in_the_quick_and_default_sets() {
    let cases = cpu_cases();
    for s in [CaseSet::Quick, CaseSet::Default] {
        let groups: BTreeSet<Group> = in_set(&cases, s).iter().map(|id| id.group()).collect();
        for g in Group::iter().filter(|g| *g != Group::Peers) {
            assert!(groups.contains(&g), "{g} has no case in the {s} set");
        }
    }
    // The sets nest and the full set is every generated case.
    let (q, d, f) = (
        in_set(&cases, CaseSet::Quick).len(),
        in_set(&cases, CaseSet::Default).len(),
        in_set(&cases, CaseSet::Full).len(),
    );
    assert!(q < d && d < f, "quick {q}, default {d}, full {f}");
    assert_eq!(f, cases.len());
}

#[test]
fn every_quantized_format_runs_at_the_decode_shape_in_the_quick_set() {
    let cases = cpu_cases();
    let mut formats: BTreeMap<String, bool> = BTreeMap::new();
    for (id, smallest) in &cases {
        if let Case::QuantMatmul { format, m, proj } = &id.case {
            let e = formats.entry(format.to_string()).or_default();
            if *m == 1 && proj.to_string() == "gate_up" && *smallest == CaseSet::Quick {
                *e = true;
            }
        }
    }
    assert!(formats.len() >= 4, "formats: {formats:?}");
    for (f, quick) in &formats {
        assert!(quick, "{f} has no gate_up/m1 case in the quick set");
    }
}

#[test]
fn attention_and_kv_keep_both_context_ends_in_the_default_set() {
    let cases = cpu_cases();
    // Per attention phase: the smallest and largest context generated are both default.
    let mut ctx: BTreeMap<String, Vec<(usize, CaseSet)>> = BTreeMap::new();
    for (id, s) in &cases {
        if let Case::Attention { phase, ctx: c, .. } = &id.case {
            ctx.entry(format!("{}/{phase}", id.subject))
                .or_default()
                .push((*c, *s));
        }
    }
    assert!(!ctx.is_empty());
    for (k, mut v) in ctx {
        v.sort();
        let (lo, hi) = (v.first().unwrap(), v.last().unwrap());
        assert!(
            CaseSet::Default.holds(lo.1),
            "{k}: ctx {} not default",
            lo.0
        );
        assert!(
            CaseSet::Default.holds(hi.1),
            "{k}: ctx {} not default",
            hi.0
        );
    }
}

#[test]
fn every_end_to_end_kind_is_in_quick_and_default_and_quick_has_no_real_model() {
    let cases = cpu_cases();
    let kind = |w: &Workload| match w {
        Workload::Prefill { .. } => "prefill",
        Workload::Decode { .. } => "decode",
        Workload::Ttft { .. } => "ttft",
        Workload::Concurrent { .. } => "concurrent",
    };
    for s in [CaseSet::Quick, CaseSet::Default] {
        let kinds: BTreeSet<&str> = in_set(&cases, s)
            .iter()
            .filter_map(|id| match &id.case {
                Case::Generation(w) => Some(kind(w)),
                _ => None,
            })
            .collect();
        assert_eq!(
            kinds,
            BTreeSet::from(["prefill", "decode", "ttft", "concurrent"]),
            "{s}"
        );
    }
    for id in in_set(&cases, CaseSet::Quick) {
        if let Subject::Model(m) = &id.subject {
            assert!(m.is_synthetic(), "{id} (a real model) is in the quick set");
        }
        // The quick set's end-to-end shapes are small.
        match &id.case {
            Case::Generation(Workload::Prefill { prompt } | Workload::Ttft { prompt }) => {
                assert!(*prompt <= 128, "{id}")
            }
            Case::Generation(Workload::Decode { gen, depth }) => {
                assert!(*gen <= 32 && *depth == 0, "{id}")
            }
            _ => {}
        }
    }
}
