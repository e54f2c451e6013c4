//! One module per Criterion group; each only names its part's case generator
//! (cases, set-up, cost live in `src/parts/`).
pub mod attention;
pub mod ffn;
pub mod generation;
pub mod kv_cache;
pub mod peers;
pub mod quant_matmul;
pub mod small_ops;
