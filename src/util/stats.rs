//! Sample statistics (statrs does the work): the median used everywhere, and the summary
//! (mean, spread, percentiles) of the JSON binary and the end-to-end cases.

use serde::Serialize;
use statrs::statistics::{Data, Distribution, Max, Min, OrderStatistics};

/// Median of a sample.
pub fn median(v: &[f64]) -> f64 {
    Data::new(v.to_vec()).median()
}

/// Mean, spread and percentiles of a sample.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct Summary {
    pub n: usize,
    pub mean: f64,
    pub stddev: f64,
    /// Coefficient of variation, stddev / mean.
    pub cv: f64,
    pub min: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

impl Summary {
    /// Statistics of `v` (empty → all NaN, n = 0).
    pub fn of(v: &[f64]) -> Summary {
        if v.is_empty() {
            return Summary {
                n: 0,
                mean: f64::NAN,
                stddev: f64::NAN,
                cv: f64::NAN,
                min: f64::NAN,
                p50: f64::NAN,
                p90: f64::NAN,
                p99: f64::NAN,
                max: f64::NAN,
            };
        }
        let mut d = Data::new(v.to_vec());
        let mean = d.mean().unwrap_or(f64::NAN);
        let stddev = if v.len() > 1 {
            d.std_dev().unwrap_or(0.0)
        } else {
            0.0
        };
        Summary {
            n: v.len(),
            mean,
            stddev,
            cv: if mean != 0.0 { stddev / mean } else { f64::NAN },
            min: d.min(),
            p50: d.quantile(0.5),
            p90: d.quantile(0.9),
            p99: d.quantile(0.99),
            max: d.max(),
        }
    }
}

/// The distribution-free confidence interval of the median at `level` (e.g. 0.95): the
/// order statistics `x(k)` and `x(n+1-k)` for the largest `k` with
/// `P(Binomial(n, 1/2) < k) <= (1 - level) / 2`. With fewer than 6 values no such interval
/// reaches 95 %: the whole range is returned.
pub fn median_ci(v: &[f64], level: f64) -> (f64, f64) {
    use statrs::distribution::{Binomial, DiscreteCDF};
    let mut s: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    if s.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    s.sort_by(f64::total_cmp);
    let n = s.len();
    let b = Binomial::new(0.5, n as u64).expect("a valid binomial");
    let tail = (1.0 - level) / 2.0;
    // k (1-based): P(B <= k-1) <= tail
    let mut k = 0usize;
    while k < n / 2 && b.cdf(k as u64) <= tail {
        k += 1;
    }
    let k = k.max(1);
    (s[k - 1], s[n - k])
}

/// Half-width of the median's 95 % interval, as a fraction of the median.
pub fn median_precision(v: &[f64]) -> f64 {
    let (lo, hi) = median_ci(v, 0.95);
    let m = median(v);
    if m.abs() > 0.0 {
        ((hi - lo) / 2.0 / m.abs()).abs()
    } else {
        f64::INFINITY
    }
}

/// The two-sided exact sign test of "the median is zero" (zeros dropped).
pub fn sign_test_p(v: &[f64]) -> f64 {
    use statrs::distribution::{Binomial, DiscreteCDF};
    let pos = v.iter().filter(|&&x| x > 0.0).count() as u64;
    let neg = v.iter().filter(|&&x| x < 0.0).count() as u64;
    let n = pos + neg;
    if n == 0 {
        return 1.0;
    }
    let b = Binomial::new(0.5, n).expect("a valid binomial");
    (2.0 * b.cdf(pos.min(neg))).min(1.0)
}

/// The Clopper–Pearson interval of a rate: `k` events in `n` trials, at `level`.
pub fn clopper_pearson(k: u64, n: u64, level: f64) -> (f64, f64) {
    use statrs::distribution::{Beta, ContinuousCDF};
    if n == 0 {
        return (0.0, 1.0);
    }
    let a = (1.0 - level) / 2.0;
    let lo = if k == 0 {
        0.0
    } else {
        Beta::new(k as f64, (n - k + 1) as f64)
            .expect("valid beta")
            .inverse_cdf(a)
    };
    let hi = if k == n {
        1.0
    } else {
        Beta::new((k + 1) as f64, (n - k) as f64)
            .expect("valid beta")
            .inverse_cdf(1.0 - a)
    };
    (lo, hi)
}

/// The Student-t interval of the mean of `v` at `level` (fewer than 2 values: NaN).
pub fn mean_t_ci(v: &[f64], level: f64) -> (f64, f64) {
    use statrs::distribution::{ContinuousCDF, StudentsT};
    let n = v.len();
    if n < 2 {
        return (f64::NAN, f64::NAN);
    }
    let d = Data::new(v.to_vec());
    let (m, sd) = (
        d.mean().unwrap_or(f64::NAN),
        d.std_dev().unwrap_or(f64::NAN),
    );
    let t = StudentsT::new(0.0, 1.0, (n - 1) as f64)
        .expect("a valid t distribution")
        .inverse_cdf(1.0 - (1.0 - level) / 2.0);
    let h = t * sd / (n as f64).sqrt();
    (m - h, m + h)
}

/// Clusters from which [`clustered_ratio_ci`] takes the distribution-free interval of their
/// medians instead of the t-interval of their mean: with 16, the 95 % interval of a median
/// is the 5th to the 12th of the sorted values, so up to four stray clusters on one side
/// move it by no more than a rank. Below that the order statistics reach 95 % only near the
/// extremes (8 clusters: the smallest and the largest), so the t-interval is the narrower.
pub const ROBUST_CLUSTERS: usize = 16;

/// The 95 % interval of a ratio measured in clusters (rounds, each its own set-up): the
/// order-statistic interval of the median over all ratios, widened to hold the interval of
/// the clusters' median ratios when there are at least 3 clusters. Pairs of one cluster
/// share its set-up, so they are not independent: a cluster effect (one allocation's
/// placement) is noise the pair interval alone would take for a change. The clusters'
/// interval is the t-interval of their log medians' mean below [`ROBUST_CLUSTERS`], the
/// distribution-free interval of their median from there on: set-up effects are
/// heavy-tailed (on the 2-core VM, 7 of 32 RoPE set-ups were 27-40 % off the rest; on an
/// H100, 7 of 80 FFN bf16 set-ups 18-27 %), and a mean follows its stray clusters.
/// Returns `(lo, hi)` as ratios.
pub fn clustered_ratio_ci(ratios: &[f64], sizes: &[usize]) -> (f64, f64) {
    let (mut lo, mut hi) = median_ci(ratios, 0.95);
    if sizes.len() >= 3 && sizes.iter().sum::<usize>() == ratios.len() {
        let mut k = 0;
        let meds: Vec<f64> = sizes
            .iter()
            .map(|&n| {
                let m = median(&ratios[k..k + n]);
                k += n;
                m
            })
            .collect();
        let (l, h) = if meds.len() >= ROBUST_CLUSTERS {
            median_ci(&meds, 0.95)
        } else {
            let logs: Vec<f64> = meds.iter().map(|m| m.ln()).collect();
            let (l, h) = mean_t_ci(&logs, 0.95);
            (l.exp(), h.exp())
        };
        lo = lo.min(l);
        hi = hi.max(h);
    }
    (lo, hi)
}

/// Half-width of [`clustered_ratio_ci`] as a fraction of the median ratio.
pub fn clustered_precision(ratios: &[f64], sizes: &[usize]) -> f64 {
    let (lo, hi) = clustered_ratio_ci(ratios, sizes);
    ((hi - lo) / 2.0 / median(ratios)).abs()
}

/// How a clustered sample's scatter splits, on log ratios (fractions): `between` is the sd
/// of the clusters' log medians; `sampling` the part of it that each cluster's own sampling
/// explains (the root mean square of the clusters' median standard errors, 1.2533 σ/√n,
/// σ from the median absolute deviation so that a few stray pairs do not inflate it).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClusterScatter {
    pub between: f64,
    pub sampling: f64,
}

impl ClusterScatter {
    /// The clusters' own effect, √(between² − sampling²) (0 when sampling explains it all):
    /// more clusters narrow an interval it dominates, more samples per cluster do not.
    pub fn setup(&self) -> f64 {
        (self.between.powi(2) - self.sampling.powi(2))
            .max(0.0)
            .sqrt()
    }

    /// The set-up part is the larger of the two.
    pub fn setup_bound(&self) -> bool {
        self.setup() > self.sampling
    }
}

/// The split of [`ClusterScatter`] for `ratios` in clusters of `sizes`; None with fewer
/// than 3 clusters of at least 2 ratios, or when the sizes do not cover the ratios.
pub fn cluster_scatter(ratios: &[f64], sizes: &[usize]) -> Option<ClusterScatter> {
    if sizes.iter().sum::<usize>() != ratios.len() {
        return None;
    }
    let mut k = 0;
    let (mut meds, mut se2) = (Vec::new(), Vec::new());
    for &n in sizes {
        let logs: Vec<f64> = ratios[k..k + n].iter().map(|r| r.ln()).collect();
        k += n;
        if n < 2 {
            continue;
        }
        let m = median(&logs);
        let dev: Vec<f64> = logs.iter().map(|x| (x - m).abs()).collect();
        let sigma = 1.4826 * median(&dev);
        meds.push(m);
        se2.push((1.2533 * sigma).powi(2) / n as f64);
    }
    if meds.len() < 3 {
        return None;
    }
    let between = Data::new(meds).std_dev()?;
    let sampling = (se2.iter().sum::<f64>() / se2.len() as f64).sqrt();
    Some(ClusterScatter { between, sampling })
}

/// Samples whose median's 95 % interval is expected to reach `precision` (a fraction) when
/// one sample's coefficient of variation is `cv`: the median's standard error is about
/// 1.2533 σ/√n for normal noise.
pub fn samples_for_precision(cv: f64, precision: f64) -> usize {
    if !(cv.is_finite() && precision > 0.0) {
        return usize::MAX;
    }
    ((1.96 * 1.2533 * cv / precision).powi(2)).ceil() as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clustered_interval_widens_for_cluster_effects() {
        // Four rounds of 20 identical-within-round ratios: the pair interval is narrow
        // inside one round, the rounds disagree by ±4 %.
        let shifts = [1.04, 0.96, 1.03, 0.97];
        let mut r = Vec::new();
        for (i, s) in shifts.iter().enumerate() {
            for j in 0..20 {
                r.push(s * (1.0 + (j as f64 - 9.5) * 1e-4 * (i + 1) as f64));
            }
        }
        let sizes = [20; 4];
        let (plo, phi) = median_ci(&r, 0.95);
        let (clo, chi) = clustered_ratio_ci(&r, &sizes);
        assert!(clo < plo && chi > phi, "{clo} {chi} vs {plo} {phi}");
        // The t interval over 4 clusters (sd ≈ 3.7 %, t(3) = 3.18): about ±5.9 %.
        assert!(clo < 0.95 && chi > 1.05, "{clo} {chi}");
        // Rounds that agree: the clustered interval is the pair interval.
        let same: Vec<f64> = (0..80)
            .map(|j| 1.0 + ((j * 37) % 11) as f64 * 1e-3)
            .collect();
        assert_eq!(
            clustered_ratio_ci(&same, &sizes).0,
            median_ci(&same, 0.95).0
        );
        // Fewer than 3 rounds: the pair interval only.
        assert_eq!(clustered_ratio_ci(&r, &[40, 40]), median_ci(&r, 0.95));
    }

    #[test]
    fn many_clusters_take_the_median_so_stray_set_ups_do_not_widen_it() {
        // 32 clusters of 6 ratios: 25 near +5 % (±1 %), 7 stray set-ups at ±35 % (as the
        // 2-core VM gave RoPE, 2026-12-08).
        let mut r = Vec::new();
        for i in 0..32 {
            let shift = match i {
                0..=3 => 0.65,
                4..=6 => 1.35,
                _ => 1.05 + ((i * 5) % 7) as f64 * 0.003 - 0.009,
            };
            r.extend((0..6).map(|j| shift * (1.0 + (j as f64 - 2.5) * 0.002)));
        }
        let sizes = [6; 32];
        let (lo, hi) = clustered_ratio_ci(&r, &sizes);
        // The rounds' median interval sits in the +5 % cluster, clear of zero.
        assert!(lo > 1.02 && hi < 1.08, "{lo} {hi}");
        // The t-interval of the same 32 means spans zero: the strays' ±35 % move a mean.
        let logs: Vec<f64> = (0..32).map(|i| median(&r[i * 6..i * 6 + 6]).ln()).collect();
        let (tl, th) = mean_t_ci(&logs, 0.95);
        assert!(tl < 0.0 && th > 0.0, "{tl} {th}");
        // Below ROBUST_CLUSTERS the t-interval still decides: the first 8 clusters (4 strays
        // at −35 %, 3 at +35 %) give an interval far wider than ±10 %.
        let (lo8, hi8) = clustered_ratio_ci(&r[..48], &sizes[..8]);
        assert!(lo8 < 0.9 && hi8 > 1.1, "{lo8} {hi8}");
    }

    #[test]
    fn cluster_scatter_splits_setup_from_sampling() {
        // Eight clusters of 30 ratios with ±1 % pair noise (a fixed spread, no randomness).
        let noise = |j: usize| 1.0 + ((j * 7) % 30) as f64 / 29.0 * 0.02 - 0.01;
        let build = |shift: &dyn Fn(usize) -> f64| -> Vec<f64> {
            (0..8)
                .flat_map(|i| (0..30).map(move |j| (i, j)))
                .map(|(i, j)| shift(i) * noise(j))
                .collect()
        };
        let sizes = [30; 8];
        // Every cluster the same: what scatter there is, sampling explains.
        let same = cluster_scatter(&build(&|_| 1.0), &sizes).unwrap();
        assert!(same.setup() <= same.sampling, "{same:?}");
        // Clusters shifted by ±5 %: the set-up part is about that, sampling far below it.
        let shifted =
            cluster_scatter(&build(&|i| if i % 2 == 0 { 1.05 } else { 0.95 }), &sizes).unwrap();
        assert!(
            (0.045..0.06).contains(&shifted.setup()) && shifted.sampling < 0.01,
            "{shifted:?}"
        );
        // Too few clusters, or sizes that do not cover the ratios: no split.
        assert!(cluster_scatter(&build(&|_| 1.0)[..60], &[30, 30]).is_none());
        assert!(cluster_scatter(&build(&|_| 1.0), &[30; 7]).is_none());
    }

    #[test]
    fn mean_t_interval() {
        let (lo, hi) = mean_t_ci(&[1.0, 2.0, 3.0, 4.0], 0.95);
        // mean 2.5, sd 1.291, t(3) 3.182: ±2.054
        assert!(
            (lo - 0.446).abs() < 1e-3 && (hi - 4.554).abs() < 1e-3,
            "{lo} {hi}"
        );
        assert!(mean_t_ci(&[1.0], 0.95).0.is_nan());
    }

    #[test]
    fn median_interval_is_order_statistics() {
        // n = 20: the 95 % interval is x(6)..x(15) (P(B <= 5) = 0.0207).
        let v: Vec<f64> = (1..=20).map(f64::from).collect();
        assert_eq!(median_ci(&v, 0.95), (6.0, 15.0));
        // too few values for 95 %: the range
        assert_eq!(median_ci(&[3.0, 1.0, 2.0], 0.95), (1.0, 3.0));
    }

    #[test]
    fn sign_test_matches_binomial() {
        // 9 of 10 positive: p = 2 * 11/1024
        let v = [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, -1.0];
        assert!((sign_test_p(&v) - 22.0 / 1024.0).abs() < 1e-12);
        assert_eq!(sign_test_p(&[0.0, 0.0]), 1.0);
    }

    #[test]
    fn clopper_pearson_known_values() {
        // 0 of 2000: upper bound 1 - 0.025^(1/2000) = 0.001843
        let (lo, hi) = clopper_pearson(0, 2000, 0.95);
        assert_eq!(lo, 0.0);
        assert!((hi - 0.001843).abs() < 2e-6, "{hi}");
        // 5 of 10: 0.1871 .. 0.8129
        let (lo, hi) = clopper_pearson(5, 10, 0.95);
        assert!((lo - 0.1871).abs() < 1e-3 && (hi - 0.8129).abs() < 1e-3);
    }

    #[test]
    fn precision_needs_more_samples_for_more_noise() {
        assert!(samples_for_precision(0.02, 0.01) > samples_for_precision(0.01, 0.01));
        assert_eq!(samples_for_precision(0.01, 0.01), 7);
    }
}
