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
