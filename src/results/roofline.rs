//! Roofline figures: achieved bandwidth and rate of a case, and their share of the device's
//! measured ceilings. A share above 100 % (outside the last-level cache) is a bug in a
//! case's cost or its timing.

use crate::device::ceilings::Ceilings;

/// Achieved figures of one case.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Roofline {
    /// GB/s (10⁹ B/s).
    pub gbps: f64,
    pub gflops: f64,
    /// `gbps` as % of the copy ceiling.
    pub pct_bw: Option<f64>,
    /// `gflops` as % of the matmul ceiling.
    pub pct_flop: Option<f64>,
}

/// Roofline figures for a median time.
pub fn roofline(flops: u64, bytes: u64, median_ns: f64, ceil: Option<&Ceilings>) -> Roofline {
    let secs = median_ns * 1e-9;
    let gbps = bytes as f64 / secs / 1e9;
    let gflops = flops as f64 / secs / 1e9;
    Roofline {
        gbps,
        gflops,
        pct_bw: ceil.map(|c| 100.0 * gbps / c.copy_gbps),
        pct_flop: ceil.map(|c| 100.0 * gflops / c.matmul_gflops),
    }
}
