//! What one iteration of a case costs: FLOPs and the minimum bytes it must move. Every case
//! declares it (as test-backend-ops cases do), so each result comes with achieved GB/s and
//! FLOP/s and their share of the device's measured ceilings.

use candle_core::DType;
use serde::Serialize;

/// Work done by one iteration of a case, the basis of Criterion's `Throughput` and of the
/// roofline figures (achieved GB/s and FLOP/s against the device's measured ceilings).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Cost {
    /// Floating-point operations (a multiply-add counts 2).
    pub flops: u64,
    /// Bytes that must cross the memory bus at least once: inputs read plus outputs written.
    pub bytes: u64,
}

impl Cost {
    pub const fn new(flops: u64, bytes: u64) -> Self {
        Self { flops, bytes }
    }

    /// `y[m,n] = x[m,k] · w[n,k]ᵀ`: `2mnk` FLOPs; reads x and w, writes y.
    /// `w_bytes` is the size of the (possibly quantized) weight.
    pub fn matmul(m: u64, n: u64, k: u64, act_elem: u64, w_bytes: u64) -> Self {
        Self {
            flops: 2 * m * n * k,
            bytes: (m * k + m * n) * act_elem + w_bytes,
        }
    }

    /// Arithmetic intensity in FLOP/byte.
    pub fn intensity(&self) -> f64 {
        if self.bytes == 0 {
            0.0
        } else {
            self.flops as f64 / self.bytes as f64
        }
    }
}

impl std::ops::Add for Cost {
    type Output = Cost;
    fn add(self, o: Cost) -> Cost {
        Cost {
            flops: self.flops + o.flops,
            bytes: self.bytes + o.bytes,
        }
    }
}

/// Size in bytes of one element of `dtype`.
pub fn elem_bytes(dtype: DType) -> u64 {
    dtype.size_in_bytes() as u64
}
