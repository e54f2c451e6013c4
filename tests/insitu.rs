//! In-situ attribution: the rules on stacks (hand-written and recorded from a real run of
//! mistralrs-core 0.8.1, `tests/fixtures/insitu/`), the attribution of pool threads to their
//! caller, windows, and the sampler itself on this process.

use mistral_rs_bench::device::insitu::{
    self, attribute, rules::Role, sampler, Frame, Part, Rules, Sample, Tick, Trace, Window,
};
use mistral_rs_bench::engine::attribution_rules;
use std::collections::BTreeMap;
use std::path::Path;

/// A frame as the release build's line tables give it: the file, the (often short) name.
fn f(file: &str, func: &str, line: Option<u32>) -> Frame {
    Frame {
        func: func.into(),
        file: (!file.is_empty()).then(|| format!("/registry/src/index/{file}")),
        line,
    }
}

type F<'a> = (&'a str, &'a str, Option<u32>);

/// A stack given outermost first (as one reads it), stored innermost first.
fn stack(frames: &[F]) -> Vec<Frame> {
    frames.iter().rev().map(|(p, n, l)| f(p, n, *l)).collect()
}

const CORE: &str = "mistralrs-core-0.8.1/src";
const ENGINE: F = (
    "mistralrs-core-0.8.1/src/engine/mod.rs",
    "{async_fn#0}",
    Some(470),
);
const LAYERS: &str = "mistralrs-core-0.8.1/src/layers.rs";
const LLAMA: &str = "mistralrs-core-0.8.1/src/models/llama.rs";
const QMM: F = (
    "mistralrs-quant-0.8.1/src/lib.rs",
    "qmethod_matmul",
    Some(540),
);
const WAIT: [F; 2] = [
    (
        "rayon-core-1.13.0/src/latch.rs",
        "wait_and_reset",
        Some(246),
    ),
    ("", "syscall", Some(36)),
];

fn rules() -> Rules {
    attribution_rules().unwrap()
}

fn part(frames: &[F]) -> Part {
    rules().classify(&stack(frames)).part
}

#[test]
fn the_rules_name_the_part_from_the_engine_files_and_lines() {
    let r = rules();
    let mm = |outer: F<'static>| {
        let mut v = vec![ENGINE, (LLAMA, "forward", Some(269)), outer, QMM];
        v.extend(WAIT);
        v
    };
    assert_eq!(part(&mm((LAYERS, "forward", Some(2903)))), Part::FfnGateUp);
    assert_eq!(part(&mm((LAYERS, "forward", Some(2906)))), Part::FfnDown);
    let c = r.classify(&stack(&mm((LLAMA, "forward", Some(84)))));
    assert_eq!(c.part, Part::QkvoProj);
    assert!(c.engine && c.waiting && !c.pool);
    // The activation sits on the down projection's line: its own frame decides.
    let ops = format!("{CORE}/ops.rs");
    assert_eq!(
        part(&[
            ENGINE,
            (LAYERS, "forward", Some(2906)),
            (&ops, "mul_and_act", Some(760))
        ]),
        Part::FfnAct
    );
    // In the attention block: SDPA, the cache append, RoPE (layers.rs), each its own part.
    let in_attn = |inner: F| part(&[ENGINE, (LLAMA, "forward", Some(148)), inner]);
    let attn = format!("{CORE}/attention/mod.rs");
    let kv = format!("{CORE}/kv_cache/single_cache.rs");
    assert_eq!(in_attn((&attn, "run_attention", Some(90))), Part::Attention);
    assert_eq!(in_attn((&kv, "append", Some(60))), Part::KvWrite);
    assert_eq!(in_attn((LAYERS, "forward", Some(2298))), Part::Rope);
    // A cast in the attention block is not a projection: no mistralrs-quant frame.
    assert_eq!(
        part(&[
            ENGINE,
            (LLAMA, "forward", Some(89)),
            ("candle-core-0.10.2/src/tensor.rs", "to_dtype", None)
        ]),
        Part::ModelOther
    );
    // The LM head is the matmul of forward_embeds, outside the blocks; the embedding, line 488.
    assert_eq!(
        part(&[ENGINE, (LLAMA, "forward_embeds", Some(545)), QMM]),
        Part::LmHead
    );
    assert_eq!(
        part(&[ENGINE, (LLAMA, "forward", Some(488))]),
        Part::Embedding
    );
    // Sampling, and the engine's own host code.
    let sampler = format!("{CORE}/sampler.rs");
    assert_eq!(
        part(&[ENGINE, (&sampler, "sample_argmax", Some(450))]),
        Part::Sampling
    );
    assert_eq!(part(&[ENGINE]), Part::HostEngine);
    // A parked thread is idle; a pool thread's kernel alone says nothing.
    assert_eq!(
        part(&[
            ("tokio-1.0/src/runtime/park.rs", "park", Some(1)),
            ("", "epoll_wait", None)
        ]),
        Part::Idle
    );
    let pool = stack(&[
        ("rayon-core-1.13.0/src/registry.rs", "main_loop", Some(1)),
        ("gemm-common-0.19.0/src/gemm.rs", "{closure#0}", Some(1)),
    ]);
    let c = r.classify(&pool);
    assert!(c.pool && !c.engine);
    assert_eq!(c.part, Part::Unassigned);
}

#[test]
fn a_bad_rules_table_is_an_error() {
    assert!(Rules::parse("engine = 'x'\n[threads]\nengine='a'\npool='b'\nwait='c'\n").is_err());
    let bad_part = "engine = 'x'\n[threads]\nengine='a'\npool='b'\nwait='c'\n[[rule]]\npart='nope'\nframe='a'\n";
    assert!(Rules::parse(bad_part).is_err());
    let bad_re = "engine = 'x'\n[threads]\nengine='a'\npool='b'\nwait='c'\n[[rule]]\npart='attention'\nframe='('\n";
    assert!(Rules::parse(bad_re).is_err());
}

/// A trace of three threads: the engine (tid 1), a pool worker (2), a parked tokio worker (3).
fn toy_trace() -> Trace {
    let cpu_attn = format!("{CORE}/attention/backends/cpu.rs");
    let stacks = vec![
        // 0: engine waiting in the FFN down projection
        stack(&[
            ENGINE,
            (LAYERS, "forward", Some(2906)),
            QMM,
            WAIT[0],
            WAIT[1],
        ]),
        // 1: engine in the attention kernel itself
        stack(&[ENGINE, (&cpu_attn, "run_flash_attn_cpu", Some(10))]),
        // 2: pool worker running a kernel
        stack(&[
            ("rayon-core-1.13.0/src/registry.rs", "main_loop", Some(1)),
            ("gemm-f16-0.19.0/src/gemm.rs", "{closure#0}", Some(1)),
        ]),
        // 3: parked
        stack(&[
            ("tokio-1.0/src/runtime/park.rs", "park", Some(1)),
            ("", "syscall", None),
        ]),
    ];
    let tick = |at_ms: u64, engine_stack: u32, pool_cpu_ms: u64| Tick {
        at_ns: at_ms * 1_000_000,
        resumed: false,
        samples: vec![
            // the engine thread waits 1 ms for a CPU at each tick in attention
            Sample {
                tid: 1,
                cpu_ns: 0,
                wait_ns: if engine_stack == 1 { 1_000_000 } else { 0 },
                stack: engine_stack,
            },
            // the pool worker 0.5 ms at each tick its caller is in the FFN
            Sample {
                tid: 2,
                cpu_ns: pool_cpu_ms * 1_000_000,
                wait_ns: if engine_stack == 0 { 500_000 } else { 0 },
                stack: 2,
            },
            // a parked thread's run-queue delay is no part's
            Sample {
                tid: 3,
                cpu_ns: 0,
                wait_ns: 0,
                stack: 3,
            },
        ],
    };
    Trace {
        engine: "mistralrs-core 0.8.1".into(),
        interval_ns: 4_000_000,
        // ticks every 4 ms; ticks at 4..16 ms in the FFN, 20..24 in attention, 28 outside
        ticks: vec![
            tick(0, 0, 0),
            tick(4, 0, 4),
            tick(8, 0, 4),
            tick(12, 0, 4),
            tick(16, 0, 4),
            tick(20, 1, 0),
            tick(24, 1, 0),
            tick(28, 1, 4),
        ],
        stacks,
        threads: BTreeMap::from([
            (1, "engine".into()),
            (2, "pool".into()),
            (3, "tokio".into()),
        ]),
        windows: vec![
            Window {
                phase: "decode".into(),
                start_ns: 2_000_000,
                end_ns: 14_000_000,
                units: 0,
            },
            Window {
                phase: "decode".into(),
                start_ns: 15_000_000,
                end_ns: 25_000_000,
                units: 0,
            },
            Window {
                phase: "other".into(),
                start_ns: 26_000_000,
                end_ns: 30_000_000,
                units: 0,
            },
        ],
        dropped: 0,
        late_ticks: 0,
        unit: "token".into(),
        exe: None,
        gpu: None,
    }
}

#[test]
fn wall_time_follows_the_engine_thread_and_pool_cpu_its_caller() {
    let t = toy_trace();
    let b = attribute(&t, Some("decode"), &rules(), "token", 11).unwrap();
    // Ticks 4, 8, 12 (window 1) and 16, 20, 24 (window 2); each weighs 4 ms.
    assert_eq!(b.ticks, 6);
    assert!((b.sampled_s - 0.024).abs() < 1e-9);
    assert!((b.timed_s - 0.022).abs() < 1e-9);
    let down = b.part(Part::FfnDown).unwrap();
    let attn = b.part(Part::Attention).unwrap();
    assert!((down.wall_share - 4.0 / 6.0).abs() < 1e-9);
    assert!((attn.wall_share - 2.0 / 6.0).abs() < 1e-9);
    // The pool thread's CPU went to the part its caller waited in (ticks 4..16: 16 ms).
    assert!((down.cpu_s - 0.016).abs() < 1e-9);
    assert_eq!(attn.cpu_s, 0.0);
    assert_eq!(b.unassigned_wall, 0.0);
    // Per-unit figures split the timed time (not the sampled one) and sum to it.
    let sum: f64 = b.parts.iter().map(|p| p.per_unit_ms).sum();
    assert!((sum - b.per_unit_ms).abs() < 1e-9);
    assert!((b.per_unit_ms - 22.0 / 11.0).abs() < 1e-9);
    // Window 2 holds one FFN tick and two attention ticks: the spread shows it.
    assert!(down.per_unit_range_ms[0] < down.per_unit_range_ms[1]);
    // Run-queue delay: the engine thread's in its own part, the pool's in its caller's.
    // Attention ticks 20 and 24 lie in the decode windows, FFN ticks 4, 8, 12 and 16.
    assert!((attn.wait_s - 0.002).abs() < 1e-12);
    assert_eq!(attn.pool_wait_s, 0.0);
    assert!((down.pool_wait_s - 0.002).abs() < 1e-12);
    assert_eq!(down.wait_s, 0.0);
    assert!((b.engine_wait_share.unwrap() - 0.002 / 0.022).abs() < 1e-9);
    // The other phase is its own breakdown; an unknown phase is an error.
    let o = attribute(&t, Some("other"), &rules(), "token", 1).unwrap();
    assert_eq!(o.ticks, 1);
    assert!(attribute(&t, Some("nope"), &rules(), "token", 1).is_err());
}

/// mistralrs-core 0.9.2's table knows candle 0.11's barrier-pool workers by their thread name
/// (`candle-bp-N`): their CPU goes to the part the engine thread is in, like rayon's; a thread
/// of another name running the same frames stays unassigned.
#[test]
fn candle_barrier_pool_threads_are_pool_threads_by_name_in_the_0_9_2_table() {
    let rules = Rules::parse(include_str!("../src/engine/attribution-0.9.2.toml")).unwrap();
    let worker = stack(&[
        ("candle-core/src/utils.rs", "{closure#0}", Some(160)),
        ("candle-core/src/cpu_backend/mod.rs", "{closure#1}", Some(1)),
    ]);
    let stacks = vec![
        // 0: the engine thread in the CPU attention kernel (a checkout's path)
        stack(&[
            (
                "mistralrs-core/src/engine/mod.rs",
                "{async_fn#0}",
                Some(464),
            ),
            (
                "mistralrs-core/src/attention/backends/cpu/mod.rs",
                "run",
                Some(10),
            ),
        ]),
        worker,
    ];
    let tick = |at_ms: u64| Tick {
        at_ns: at_ms * 1_000_000,
        resumed: false,
        samples: vec![
            Sample {
                tid: 1,
                cpu_ns: 4_000_000,
                wait_ns: 0,
                stack: 0,
            },
            Sample {
                tid: 2,
                cpu_ns: 3_000_000,
                wait_ns: 0,
                stack: 1,
            },
            Sample {
                tid: 3,
                cpu_ns: 1_000_000,
                wait_ns: 0,
                stack: 1,
            },
        ],
    };
    let trace = Trace {
        engine: "mistralrs-core 0.9.2".into(),
        interval_ns: 4_000_000,
        ticks: (1..=5).map(|i| tick(4 * i)).collect(),
        stacks,
        threads: BTreeMap::from([
            (1, "mistralrs-engine".into()),
            (2, "candle-bp-3".into()),
            (3, "tokio-runtime-w".into()),
        ]),
        windows: vec![Window {
            phase: "decode".into(),
            start_ns: 2_000_000,
            end_ns: 22_000_000,
            units: 0,
        }],
        ..toy_trace()
    };
    let b = attribute(&trace, Some("decode"), &rules, "token", 5).unwrap();
    let attn = b.part(Part::Attention).unwrap();
    // five ticks: the engine's own 4 ms and the candle-bp worker's 3 ms each
    assert!((attn.cpu_s - 5.0 * 0.007).abs() < 1e-9, "{}", attn.cpu_s);
    let un = b.part(Part::Unassigned).map(|p| p.cpu_s).unwrap_or(0.0);
    assert!((un - 5.0 * 0.001).abs() < 1e-9, "{un}");
    assert!(rules.is_pool_thread("candle-bp-12"));
    assert!(!rules.is_pool_thread("candle-bp"));
    // 0.8.1's table has no such pool: the same worker's CPU is unassigned there
    let b081 = attribute(&trace, Some("decode"), &rules_081(), "token", 5).unwrap();
    let un081 = b081.part(Part::Unassigned).map(|p| p.cpu_s).unwrap_or(0.0);
    assert!(un081 >= 5.0 * 0.004 - 1e-9, "{un081}");
}

/// The crates.io release's table (0.8.1), whatever engine the suite is built against.
fn rules_081() -> Rules {
    Rules::parse(include_str!("../src/engine/attribution-0.8.1.toml")).unwrap()
}

#[test]
fn a_tick_after_a_pause_weighs_one_interval() {
    let mut t = toy_trace();
    // Pause between 8 and 100 ms: the tick at 100 ms is the first after it.
    t.ticks.truncate(3);
    let mut resumed = t.ticks[2].clone();
    resumed.at_ns = 100_000_000;
    resumed.resumed = true;
    t.ticks.push(resumed);
    t.windows = vec![Window {
        phase: "decode".into(),
        start_ns: 2_000_000,
        end_ns: 101_000_000,
        units: 0,
    }];
    let b = attribute(&t, None, &rules(), "token", 1).unwrap();
    assert_eq!(b.ticks, 3);
    assert!(
        (b.sampled_s - 0.012).abs() < 1e-9,
        "sampled {}",
        b.sampled_s
    );
}

#[test]
fn the_overhead_and_the_suite_figure_are_relative_to_the_attributed_time() {
    let mut b = attribute(&toy_trace(), None, &rules(), "token", 10).unwrap();
    let per = b.per_unit_ms;
    b.set_without(per / 1.05);
    assert!((b.overhead_pct.unwrap() - 5.0).abs() < 1e-9);
    b.set_suite(per / 1.10);
    assert!((b.vs_suite_pct.unwrap() - 10.0).abs() < 1e-9);
}

#[test]
fn a_trace_round_trips_through_json() {
    let t = toy_trace();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("t.json");
    mistral_rs_bench::util::json::write(&p, &t).unwrap();
    assert_eq!(Trace::load(&p).unwrap(), t);
}

/// CPU time of the samples `keep` takes, ns.
fn cpu_of(ticks: &[Tick], keep: impl Fn(&Sample) -> bool) -> u64 {
    ticks
        .iter()
        .flat_map(|t| &t.samples)
        .filter(|s| keep(s))
        .map(|s| s.cpu_ns)
        .sum()
}

/// This thread's CPU time, ns.
fn own_cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid clock id and timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Spins until this thread has used `ms` of CPU (however loaded the machine is).
fn busy(ms: u64) -> u64 {
    let start = own_cpu_ns();
    let mut x = 1u64;
    while own_cpu_ns() - start < ms * 1_000_000 {
        for _ in 0..1000 {
            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
    }
    x
}

#[inline(never)]
fn spin_marker_for_the_sampler_test(ms: u64) -> u64 {
    busy(ms)
}

/// The sampler tests take turns: one sampler per process.
static ONE_SAMPLER: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn the_sampler_reads_the_run_queue_delay_of_threads_without_a_cpu() {
    let _turn = ONE_SAMPLER.lock().unwrap_or_else(|e| e.into_inner());
    let s = sampler::Sampler::start(std::time::Duration::from_millis(5)).unwrap();
    // Two more spinning threads than CPUs: two of them are always runnable without a CPU,
    // so together they wait about twice the wall time (at least 120 ms × (cpus + 2) / cpus).
    let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
    let spinners: Vec<_> = (0..cpus + 2)
        .map(|_| std::thread::spawn(|| busy(60)))
        .collect();
    for h in spinners {
        h.join().unwrap();
    }
    let raw = s.stop().unwrap();
    let waited: u64 = raw
        .ticks
        .iter()
        .flat_map(|t| &t.samples)
        .map(|s| s.wait_ns)
        .sum();
    assert!(waited > 20_000_000, "run-queue delay seen: {waited} ns");
}

#[test]
fn the_sampler_sees_a_busy_thread_and_a_blocked_one_in_their_own_functions() {
    let _turn = ONE_SAMPLER.lock().unwrap_or_else(|e| e.into_inner());
    let s = sampler::Sampler::start(std::time::Duration::from_millis(2)).unwrap();
    // A second sampler in the same process is refused.
    assert!(sampler::Sampler::start(std::time::Duration::from_millis(2)).is_err());
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let blocked = std::thread::spawn(move || {
        let _ = rx.recv();
    });
    std::hint::black_box(spin_marker_for_the_sampler_test(250));
    tx.send(()).unwrap();
    blocked.join().unwrap();
    let raw = s.stop().unwrap();
    assert!(
        raw.ticks.len() > 50,
        "only {} ticks in 300 ms",
        raw.ticks.len()
    );
    let stacks = sampler::symbolize(&raw);
    let has = |needle: &str| {
        stacks
            .iter()
            .any(|s| s.iter().any(|f| f.func.contains(needle)))
    };
    assert!(
        has("spin_marker_for_the_sampler_test"),
        "the busy thread's own function"
    );
    assert!(has("std::sync::mpsc"), "the blocked thread's wait");
    // The busy thread consumed CPU between its samples; a stack was reused for a parked one.
    let cpu = cpu_of(&raw.ticks, |_| true);
    // (250 ms of CPU spun; the first sample of each thread carries none)
    assert!(cpu > 150_000_000, "CPU time seen: {cpu} ns");
    assert_eq!(raw.dropped, 0);
}

#[test]
fn attribution_is_off_unless_asked() {
    // The suite's tests never set the variable for this process.
    if std::env::var_os(insitu::ENV).is_none() {
        assert!(!insitu::enabled());
    }
}

/// Recorded from a real decode of synthetic SmolLM2 (see `tests/fixtures/insitu/README.md`).
#[test]
fn a_recorded_engine_trace_is_split_with_little_unassigned() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/insitu");
    let t = Trace::load(&dir.join("smollm2-decode.json")).unwrap();
    let r = rules();
    let b = attribute(&t, Some("decode"), &r, "token", 10).unwrap();
    assert!(b.ticks >= 90, "{} ticks", b.ticks);
    assert!(
        b.unassigned_wall <= 0.10,
        "unassigned wall {:.3}",
        b.unassigned_wall
    );
    assert!(
        b.unassigned_cpu <= 0.10,
        "unassigned cpu {:.3}",
        b.unassigned_cpu
    );
    assert!(
        (b.coverage - 1.0).abs() < 0.05,
        "coverage {:.3}",
        b.coverage
    );
    for p in [
        Part::FfnGateUp,
        Part::FfnDown,
        Part::QkvoProj,
        Part::Rope,
        Part::LmHead,
        Part::Attention,
    ] {
        assert!(b.part(p).is_some(), "{p} missing from {:?}", b.parts);
    }
    // One engine thread; the pool threads' CPU went to parts (the matmuls run there).
    let classes = t.classes(&r);
    let engine = t.engine_threads(&classes);
    assert_eq!(engine.len(), 1, "engine threads {engine:?}");
    let pool_cpu = cpu_of(&t.ticks, |s| classes[s.stack as usize].pool);
    let all_cpu = cpu_of(&t.ticks, |_| true);
    assert!(
        pool_cpu * 4 > all_cpu,
        "pool threads ran {pool_cpu} of {all_cpu} ns"
    );
    let matmul_cpu: f64 = [Part::FfnGateUp, Part::FfnDown, Part::QkvoProj, Part::LmHead]
        .iter()
        .filter_map(|p| b.part(*p))
        .map(|s| s.cpu_share)
        .sum();
    assert!(matmul_cpu > 0.3, "matmul share of CPU {matmul_cpu:.2}");
}

/// A device timeline of one decode step of a two-layer model as mistral.rs 0.8.1 launches it
/// on CUDA (kernel names as candle-kernels, mistralrs-quant and cuBLAS give them), each
/// kernel 10 µs with 1 µs gaps, then the logits' copy to the host and 100 µs with no device
/// work while the host samples; the engine thread's ticks: two in that gap (sampling), one
/// in a kernel.
/// `seq`'s kernels on stream 7, 10 µs each after a 1 µs gap, from 1 ms (the window's start):
/// the names, the activities and the end of the last one's slot.
fn kernel_timeline(seq: &[&str]) -> (Vec<String>, Vec<insitu::Activity>, u64) {
    let mut names: Vec<String> = vec![];
    let mut activities = vec![];
    let mut t = 1_000_000u64;
    for n in seq {
        let id = match names.iter().position(|x| x == n) {
            Some(i) => i,
            None => {
                names.push(n.to_string());
                names.len() - 1
            }
        } as u32;
        activities.push(insitu::Activity {
            kind: insitu::ActKind::Kernel,
            name: id,
            start_ns: t + 1_000,
            end_ns: t + 11_000,
            stream: 7,
            bytes: 0,
        });
        t += 11_000;
    }
    (names, activities, t)
}

fn gpu_trace() -> Trace {
    use insitu::{ActKind, Activity, GpuTrace};
    let layer = [
        "rmsnorm_bf16",
        "nvjet_tst_64x8_64x16_4x1_v_bz_TNT",
        "nvjet_tst_64x8_64x16_4x1_v_bz_TNT",
        "nvjet_tst_64x8_64x16_4x1_v_bz_TNT",
        "_ZN4vllm23rotary_embedding_kernelI13__nv_bfloat16Lb1EEEvPKlPT_S5_PKS4_iiiii",
        "copy2d_bf16",
        "sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n_tilesize64x64x64",
        "softmax_bf16",
        "sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n_tilesize64x64x64",
        "nvjet_tst_64x8_64x16_4x1_v_bz_TNT",
        "badd_bf16",
        "rmsnorm_bf16",
        "nvjet_tst_128x8_64x16_4x1_v_bz_TNT",
        "nvjet_tst_128x8_64x16_4x1_v_bz_TNT",
        "fused_glu_kernel",
        "nvjet_tst_64x8_64x16_4x1_v_bz_TNT",
        "badd_bf16",
    ];
    let mut seq: Vec<&str> = vec!["index_select_u32_bf16"];
    seq.extend(layer);
    seq.extend(layer);
    seq.extend(["rmsnorm_bf16", "gemv2T_kernel_val", "cast_bf16_f32"]);
    let (names, mut activities, mut t) = kernel_timeline(&seq);
    activities.push(Activity {
        kind: ActKind::CopyDtoH,
        name: u32::MAX,
        start_ns: t + 1_000,
        end_ns: t + 11_000,
        stream: 7,
        bytes: 98_304,
    });
    t += 11_000;
    let end = t + 100_000;
    let sampler = format!("{CORE}/sampler.rs");
    let stacks = vec![
        stack(&[ENGINE, (&sampler, "sample_argmax", Some(450))]),
        stack(&[ENGINE, (LLAMA, "forward", Some(148))]),
    ];
    let tick = |at_ns: u64, s: u32| Tick {
        at_ns,
        resumed: false,
        samples: vec![Sample {
            tid: 1,
            cpu_ns: 1,
            wait_ns: 0,
            stack: s,
        }],
    };
    Trace {
        engine: "mistralrs-core 0.8.1".into(),
        interval_ns: 50_000,
        ticks: vec![tick(1_005_000, 1), tick(t + 30_000, 0), tick(t + 80_000, 0)],
        stacks,
        threads: BTreeMap::from([(1, "engine".into())]),
        windows: vec![Window {
            phase: "decode".into(),
            start_ns: 1_000_000,
            end_ns: end,
            units: 1,
        }],
        dropped: 0,
        late_ticks: 0,
        unit: "token".into(),
        exe: None,
        gpu: Some(GpuTrace {
            names,
            activities,
            dropped: 0,
            clock_skew_ns_per_s: 0.0,
        }),
    }
}

#[test]
fn a_gpu_timeline_places_gemms_by_their_block_and_measures_idle() {
    let t = gpu_trace();
    let b = attribute(&t, Some("decode"), &rules(), "token", 1).unwrap();
    let us = |p: Part| b.part(p).map_or(0.0, |s| s.wall_s * 1e6);
    let near = |p: Part, want: f64| {
        let got = us(p);
        assert!((got - want).abs() < 1e-6, "{p}: {got} µs, want {want}");
    };
    // Per layer: Q, K, V and O (4 GEMMs), Q·Kᵀ + softmax + P·V, RoPE, the cache copy, two
    // norms, two residual adds, gate and up, the GLU, down.
    near(Part::QkvoProj, 2.0 * 40.0);
    near(Part::Attention, 2.0 * 30.0);
    near(Part::Rope, 2.0 * 10.0);
    near(Part::KvWrite, 2.0 * 10.0);
    near(Part::Rmsnorm, 2.0 * 20.0 + 10.0);
    near(Part::ModelOther, 2.0 * 20.0);
    near(Part::FfnGateUp, 2.0 * 20.0);
    near(Part::FfnAct, 2.0 * 10.0);
    near(Part::FfnDown, 2.0 * 10.0);
    near(Part::Embedding, 10.0);
    // The head block: its GEMM (a gemv) is the LM head, the cast after it sampling's.
    near(Part::LmHead, 10.0);
    near(Part::Copies, 10.0);
    let g = b.gpu.as_ref().expect("a GPU breakdown");
    assert_eq!(g.kernels, 38);
    assert_eq!(g.copies, 1);
    // Idle is measured: 39 gaps of 1 µs and the 100 µs at the end, none of it a remainder.
    assert!((g.idle_s * 1e6 - 139.0).abs() < 1e-6, "idle {}", g.idle_s);
    assert!((g.busy_s + g.idle_s - b.timed_s).abs() < 1e-12);
    assert_eq!(g.idle_gaps, 1, "gaps of 1 µs are not counted as gaps");
    assert!((g.longest_gap_us - 100.0).abs() < 1e-6);
    // Both ticks in the idle time show the host sampling: all idle time is sampling's, on top
    // of the cast the device ran for it.
    assert_eq!(g.idle_ticks, 2);
    assert_eq!(g.idle_host, vec![(Part::Sampling, 1.0)]);
    near(Part::Sampling, 10.0 + 139.0);
    assert_eq!(us(Part::DeviceIdle), 0.0);
    // Everything is placed, and the parts add up to the window exactly.
    assert_eq!(b.unassigned_wall, 0.0);
    let sum: f64 = b.parts.iter().map(|p| p.wall_s).sum();
    assert!((sum - b.timed_s).abs() < 1e-12);
    let per: f64 = b.parts.iter().map(|p| p.per_unit_ms).sum();
    assert!((per - b.per_unit_ms).abs() < 1e-9);
    // The kernel table names what each part holds.
    let softmax = g
        .top_kernels
        .iter()
        .find(|k| k.name == "softmax_bf16")
        .unwrap();
    assert_eq!((softmax.part, softmax.count), (Part::Attention, 2));
    // And what the copies were: one device-to-host copy of the logits, 10 µs.
    assert_eq!(g.top_copies.len(), 1);
    let c = &g.top_copies[0];
    assert_eq!(
        (c.kind, c.bytes, c.count),
        (insitu::ActKind::CopyDtoH, 98_304, 1)
    );
    assert!((c.s * 1e6 - 10.0).abs() < 1e-6);
}

/// `gpu_trace()`'s host side with another device timeline: `seq`'s kernels
/// ([`kernel_timeline`]), no copies and no host ticks.
fn gpu_trace_of(seq: &[&str]) -> Trace {
    let mut t = gpu_trace();
    let g = t.gpu.as_mut().unwrap();
    (g.names, g.activities, _) = kernel_timeline(seq);
    t.ticks.clear();
    t
}

#[test]
fn quantized_decode_kernels_are_placed_as_gemms_and_a_fused_glu_gemv_is_gate_up() {
    // (the suite's rules, 0.8.1's here: the kernel rules are the same in 0.9.2's)
    // One ISQ Q4K decode layer and the head as mistral.rs 0.9.2 launches them on an H200
    // (names from its in-situ run): the input of every GEMV is quantized first, gate/up run
    // as one GEMV fused with the GLU, the LM head is Q6K
    let seq = [
        "rmsnorm_bf16",
        "mmvq_gguf_quantize_q8_1_bf16",
        "mmvq_gguf_q4_k_bf16_fused_qkv_cuda1",
        "_ZN4vllm33rotary_embedding_positions_kernelI13__nv_bfloat16Lb1EEEvPT_S3_PKS2_S5_PKjiilliii",
        "_ZN4vllm24reshape_and_cache_kernelI13__nv_bfloat16S1_LNS_18Fp8KVCacheDataTypeE0EEEvPKT_S5_PT0_S7_PKliiiiiiPKfSB_",
        "_ZN10flashinfer33BatchDecodeWithPagedKVCacheKernelILNS_15PosEncodingModeE0ELj2ELj1ELj8ELj16ELj4ELj2ENS_16DefaultAttentionILb0ELb0ELb0ELb0EEENS_17BatchDecodeParamsI13__nv_bfloat16S5_S5_iEEEEvT7_",
        "mmvq_gguf_quantize_q8_1_bf16",
        "mmvq_gguf_q4_k_bf16_plain_cuda1",
        "badd_bf16",
        "rmsnorm_bf16",
        "mmvq_gguf_quantize_q8_1_bf16",
        "mmvq_gguf_q4_k_bf16_fused_glu_cuda1",
        "mmvq_gguf_quantize_q8_1_bf16",
        "mmvq_gguf_q4_k_bf16_plain_cuda1",
        "badd_bf16",
        "rmsnorm_bf16",
        "mmvq_gguf_quantize_q8_1_bf16",
        "mmvq_gguf_q6_k_bf16_plain_cuda1",
    ];
    let b = attribute(&gpu_trace_of(&seq), Some("decode"), &rules(), "token", 1).unwrap();
    let us = |p: Part| b.part(p).map_or(0.0, |s| s.wall_s * 1e6);
    let near = |p: Part, want: f64| {
        let got = us(p);
        assert!((got - want).abs() < 1e-6, "{p}: {got} µs, want {want}");
    };
    near(Part::QkvoProj, 40.0);
    near(Part::Rope, 10.0);
    near(Part::KvWrite, 10.0);
    near(Part::Attention, 10.0);
    near(Part::FfnGateUp, 20.0);
    near(Part::FfnAct, 0.0);
    near(Part::FfnDown, 20.0);
    near(Part::ModelOther, 20.0);
    assert_eq!(us(Part::Unassigned), 0.0);
    // each quantization of a GEMV's input is that GEMV's part: the head's is the LM head's
    near(Part::LmHead, 20.0);
    near(Part::Sampling, 0.0);
    // 0.8.1's candle kernels for the same work have the same roles
    let r = rules();
    for n in ["mul_mat_vec_q4_K_q8_1_cuda1", "mul_mat_q4_K"] {
        assert_eq!(r.gpu.kernel(n).0, Role::Gemm, "{n}");
    }
    assert_eq!(r.gpu.kernel("quantize_q8_1").0, Role::GemmInput);
    assert_eq!(r.gpu.kernel("dequantize_block_q8_0").0, Role::Named);
}

#[test]
fn gpu_idle_without_host_ticks_stays_device_idle_and_unknown_gemms_are_unassigned() {
    let mut t = gpu_trace();
    t.ticks.clear();
    // A GEMM before the first norm cannot be placed.
    let g = t.gpu.as_mut().unwrap();
    g.names.push("nvjet_lead".into());
    let id = g.names.len() as u32 - 1;
    g.activities.insert(
        0,
        insitu::Activity {
            kind: insitu::ActKind::Kernel,
            name: id,
            start_ns: 1_000_000,
            end_ns: 1_001_000,
            stream: 7,
            bytes: 0,
        },
    );
    let b = attribute(&t, None, &rules(), "token", 1).unwrap();
    let idle = b.part(Part::DeviceIdle).unwrap().wall_s;
    let gi = b.gpu.as_ref().unwrap();
    assert!((idle - gi.idle_s).abs() < 1e-12);
    assert!((b.part(Part::Unassigned).unwrap().wall_s * 1e6 - 1.0).abs() < 1e-6);
    assert!(b.unassigned_wall > 0.0);
}

#[test]
fn overlapping_kernels_share_the_instant() {
    let mut t = gpu_trace();
    t.ticks.clear();
    // A second stream's copy over the first norm's whole span: each gets half of it.
    let g = t.gpu.as_mut().unwrap();
    let norm = g.activities[1].clone();
    g.activities.push(insitu::Activity {
        kind: insitu::ActKind::CopyHtoD,
        name: u32::MAX,
        start_ns: norm.start_ns,
        end_ns: norm.end_ns,
        stream: 9,
        bytes: 64,
    });
    g.activities.sort_by_key(|a| a.start_ns);
    let b = attribute(&t, None, &rules(), "token", 1).unwrap();
    let us = |p: Part| b.part(p).map_or(0.0, |s| s.wall_s * 1e6);
    assert!((us(Part::Rmsnorm) - 45.0).abs() < 1e-6);
    assert!((us(Part::Copies) - 15.0).abs() < 1e-6);
    let sum: f64 = b.parts.iter().map(|p| p.wall_s).sum();
    assert!((sum - b.timed_s).abs() < 1e-12);
}

#[test]
fn insitu_trace_splits_a_dumped_gpu_trace_again() {
    let dir = std::env::temp_dir().join(format!("mrb-insitu-trace-{}", std::process::id()));
    let path = dir.join("decode.json");
    mistral_rs_bench::util::json::write_compact(&path, &gpu_trace()).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mistral-rs-bench"))
        .args(["insitu", "--trace"])
        .arg(&path)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The part table, the device table and the kernel table, per trace and phase.
    assert!(text.contains("| decode/decode | qkvo_proj |"), "{text}");
    assert!(text.contains("Device timeline (CUPTI)"), "{text}");
    assert!(text.contains("`softmax_bf16`"), "{text}");
    assert!(text.contains("sampling 100 % (2 ticks)"), "{text}");
    // A trace whose windows carry no units cannot be split per token: a clear error.
    let mut t = gpu_trace();
    t.windows[0].units = 0;
    mistral_rs_bench::util::json::write_compact(&path, &t).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mistral-rs-bench"))
        .args(["insitu", "--trace"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("record no units"));
    std::fs::remove_dir_all(&dir).ok();
}

#[inline(never)]
fn marker_for_the_symbol_test(x: u64) -> u64 {
    std::hint::black_box(x).wrapping_mul(3)
}

#[test]
fn a_stripped_runs_addresses_resolve_offline_against_its_binary() {
    // As the sampler keeps an address it could not resolve: `0x…`, no file.
    let addr = marker_for_the_symbol_test as *const () as usize as u64;
    assert_eq!(marker_for_the_symbol_test(2), 6);
    let mut t = toy_trace();
    t.stacks = vec![vec![Frame {
        func: format!("{addr:#x}"),
        file: None,
        line: None,
    }]];
    t.exe = insitu::symbols::exe_map();
    assert!(
        t.exe.is_some(),
        "/proc/self/maps names this test's executable"
    );
    let exe = std::env::current_exe().unwrap();
    let n = insitu::symbols::resymbolize(&mut t, &exe).unwrap();
    assert_eq!(n, 1);
    // Inlined frames too, innermost first (as the in-process symboliser gives them): the
    // black_box inlined into the marker, then the marker in this file.
    let s = &t.stacks[0];
    let f = s.last().unwrap();
    assert!(f.func.ends_with("marker_for_the_symbol_test"), "{s:?}");
    assert!(
        f.file.as_deref().is_some_and(|p| p.ends_with("insitu.rs")),
        "{s:?}"
    );
    assert!(s.len() == 1 || s[0].func.contains("black_box"), "{s:?}");
    // A trace without the mapping cannot be resolved: an error, not a silent no-op.
    t.exe = None;
    assert!(insitu::symbols::resymbolize(&mut t, &exe).is_err());
}

/// The kernels CUPTI recorded for five decode steps of SmolLM2 (30 layers) on an H200: the
/// block placement gives every layer its structure, though cuBLAS's one GEMV kernel serves
/// every projection.
#[test]
fn a_recorded_h200_decode_places_every_layers_gemms() {
    let t = Trace::load(Path::new("tests/fixtures/insitu/h200-smollm2-decode.json")).unwrap();
    let b = attribute(&t, None, &rules(), "token", 1).unwrap();
    let g = b.gpu.as_ref().unwrap();
    let mut count: BTreeMap<Part, u64> = BTreeMap::new();
    for k in &g.top_kernels {
        *count.entry(k.part).or_default() += k.count;
    }
    let n = |p: Part| count.get(&p).copied().unwrap_or(0);
    // One paged-attention kernel per layer and step.
    let layers_steps = n(Part::Attention);
    assert_eq!(layers_steps, 150, "{count:?}");
    let steps = n(Part::LmHead);
    assert_eq!(steps, 5, "{count:?}");
    assert_eq!(n(Part::QkvoProj), 4 * layers_steps, "q, k, v, o: {count:?}");
    assert_eq!(n(Part::FfnGateUp), 2 * layers_steps, "gate, up: {count:?}");
    assert_eq!(n(Part::FfnDown), layers_steps);
    assert_eq!(n(Part::FfnAct), layers_steps);
    assert_eq!(n(Part::KvWrite), layers_steps);
    assert_eq!(n(Part::Rope), 2 * layers_steps, "q and k: {count:?}");
    assert_eq!(
        n(Part::Rmsnorm),
        2 * layers_steps + steps,
        "two per layer, the final norm"
    );
    // The same GEMV kernel is in four parts.
    let gemv: Vec<Part> = g
        .top_kernels
        .iter()
        .filter(|k| k.name.contains("gemv_kernel_batched"))
        .map(|k| k.part)
        .collect();
    for p in [Part::QkvoProj, Part::FfnGateUp, Part::FfnDown, Part::LmHead] {
        assert!(gemv.contains(&p), "{p}: {gemv:?}");
    }
    // At most the kernel cut by the window's start is unplaced.
    assert!(n(Part::Unassigned) <= 1, "{count:?}");
    assert!(b.unassigned_wall < 0.001);
    // Idle is measured and most of the decode step (the device waits for launches).
    assert!(g.idle_s > g.busy_s, "{g:?}");
    let sum: f64 = b.parts.iter().map(|p| p.wall_s).sum();
    assert!((sum - b.timed_s).abs() < 1e-9);
}

#[test]
fn the_0_9_2_rules_name_the_parts_of_a_checkout_build() {
    // mistralrs-core 0.9.2 built from a checkout (scripts/engine-manifest.py): its frames are
    // `<checkout>/mistralrs-core/src/...`, at v0.9.2's lines; the CPU decode's fused GEMVs
    // (ops.rs qkv_projections, quantized_ffn) and the merged gate/up of layers::Mlp.
    let r = Rules::parse(include_str!("../src/engine/attribution-0.9.2.toml")).unwrap();
    let at = |file: &str, func: &str, line: u32| Frame {
        func: func.into(),
        file: Some(format!(
            "/work/upstream/mistral.rs-v0.9.2/mistralrs-core/src/{file}"
        )),
        line: Some(line),
    };
    let quant = Frame {
        func: "try_fused_gemv_shared_lhs_cpu".into(),
        file: Some("/work/upstream/mistral.rs-v0.9.2/mistralrs-quant/src/gemv/cpu.rs".into()),
        line: Some(10),
    };
    // outermost first, stored innermost first
    let part = |frames: Vec<Frame>| r.classify(&frames.into_iter().rev().collect::<Vec<_>>());
    let engine = at("engine/mod.rs", "{async_fn#0}", 470);
    let rotary = Frame {
        func: "apply_rotary_qk".into(),
        file: Some("/work/upstream/mistral.rs-v0.9.2/mistralrs-quant/src/rotary/mod.rs".into()),
        line: Some(5),
    };
    let fwd = at("models/llama.rs", "forward", 479);
    let qffn = |line| at("ops.rs", "quantized_ffn", line);
    let mlp = at("layers.rs", "forward", 3505);
    // (the stack below the engine loop, outermost first; its part)
    let cases: Vec<(Vec<Frame>, Part)> = vec![
        // the fused q/k/v GEMV
        (
            vec![
                at("models/llama.rs", "forward", 79),
                at("ops.rs", "qkv_projections", 4156),
                quant.clone(),
            ],
            Part::QkvoProj,
        ),
        // ops::quantized_ffn: the shared-input gate/up GEMV, the down projection, the activation
        (
            vec![mlp.clone(), qffn(4124), quant.clone()],
            Part::FfnGateUp,
        ),
        (vec![mlp.clone(), qffn(4128), quant.clone()], Part::FfnDown),
        (
            vec![mlp, qffn(4127), at("ops.rs", "mul_and_act", 3953)],
            Part::FfnAct,
        ),
        // layers::Mlp's merged gate/up and its down projection (off CUDA)
        (
            vec![at("layers.rs", "forward", 3507), quant.clone()],
            Part::FfnGateUp,
        ),
        (
            vec![at("layers.rs", "forward", 3511), quant.clone()],
            Part::FfnDown,
        ),
        // RoPE through mistralrs-quant's rotary kernels; RMSNorm
        (
            vec![at("models/llama.rs", "forward", 101), rotary],
            Part::Rope,
        ),
        (vec![at("layers.rs", "forward", 378)], Part::Rmsnorm),
        // the LM head under `Llama::forward`'s call of forward_embeds (line 479); the embedding
        (
            vec![
                fwd.clone(),
                at("models/llama.rs", "forward_embeds", 517),
                quant,
            ],
            Part::LmHead,
        ),
        (vec![at("models/llama.rs", "forward", 482)], Part::Embedding),
        (vec![fwd], Part::ModelOther),
        // the CPU attention kernel's folder
        (
            vec![at("attention/backends/cpu/full.rs", "run", 100)],
            Part::Attention,
        ),
    ];
    for (frames, want) in cases {
        let stack: Vec<Frame> = std::iter::once(engine.clone()).chain(frames).collect();
        let c = part(stack.clone());
        assert_eq!(c.part, want, "{stack:?}");
        assert!(c.engine);
    }
    // a 0.8.1 frame is not 0.9.2's
    let old = Frame {
        func: "forward".into(),
        file: Some("/registry/src/index/mistralrs-core-0.8.1/src/layers.rs".into()),
        line: Some(2903),
    };
    assert_eq!(r.classify(&[old]).part, Part::Unassigned);
}

/// `insitu --trace F --kernels N` reads one window launch by launch: the rows are the window's
/// activities in order, with the parts the split sums (a flash-attention prefill layer as
/// mistral.rs 0.8.1 launches it on an H100: every projection's output copied by `ucopy_bf16`).
#[test]
fn the_timeline_of_a_window_lists_its_launches_with_the_split_s_parts() {
    let seq = [
        "rmsnorm_bf16",
        "nvjet_sm90_tst_128x128_64x6_2x1_v_bz_TNT",
        "ucopy_bf16",
        "rope_bf16",
        "_Z16flash_fwd_kernelI23Flash_fwd_kernel_traitsILi128ELi128ELi64ELi4ELb0E",
        "nvjet_sm90_tst_128x128_64x6_2x1_v_bz_TNT",
        "ucopy_bf16",
        "badd_bf16",
        "rmsnorm_bf16",
        "nvjet_sm90_tst_256x128_64x4_1x2_h_bz_coopA_TNT",
        "ucopy_bf16",
        "_Z21fused_glu_kernel_vec4I13__nv_bfloat16mEvPKT0_S3_PS1_ji",
        "nvjet_sm90_tst_128x128_64x6_2x1_v_bz_TNT",
    ];
    let t = gpu_trace_of(&seq);
    let rows = insitu::gpu::timeline(t.gpu.as_ref().unwrap(), &rules(), &t.windows[0]);
    assert_eq!(rows.len(), seq.len());
    for (r, n) in rows.iter().zip(seq) {
        assert_eq!(r.name, n);
        assert!((r.us - 10.0).abs() < 1e-9);
    }
    let parts: Vec<Part> = rows.iter().map(|r| r.part).collect();
    assert_eq!(parts[1], Part::QkvoProj);
    assert_eq!(parts[4], Part::Attention);
    assert_eq!(
        parts[5],
        Part::QkvoProj,
        "the O projection after the attention"
    );
    assert_eq!(parts[9], Part::FfnGateUp);
    assert_eq!(parts[12], Part::FfnDown);
    // a strided copy is the rest of the forward pass: no name says whose output it holds
    assert_eq!(parts[10], Part::ModelOther);
    // the rows sum to what the split gives each part
    let b = attribute(&t, Some("decode"), &rules(), "token", 1).unwrap();
    for p in [
        Part::QkvoProj,
        Part::FfnGateUp,
        Part::FfnDown,
        Part::ModelOther,
    ] {
        let rows_us: f64 = rows.iter().filter(|r| r.part == p).map(|r| r.us).sum();
        let split_us = b.part(p).unwrap().wall_s * 1e6;
        assert!(
            (rows_us - split_us).abs() < 1e-6,
            "{p}: {rows_us} vs {split_us}"
        );
    }
}
