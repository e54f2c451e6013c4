//! Layer 0, utilities: nothing here knows about devices, cases or mistral.rs.
//!
//! - [`build`]: how this binary was built (rustflags, target features), recorded with results.
//! - [`paths`]: where the suite reads and writes (crate root, `target/`, Criterion's folder).
//! - [`json`]: the one way a JSON file is read (with the file named in every error) or written.
//! - [`fmt`]: units and timestamps.
//! - [`stats`]: medians, percentiles, spread (statrs does the work).
//! - [`table`]: one table type, printed as Markdown, CSV or JSON (llama-bench's "one record,
//!   many printers"). Add an output format here, once, for every table of the suite.

pub mod build;
pub mod fmt;
pub mod json;
pub mod paths;
pub mod stats;
pub mod table;
