//! Layer 8, reports: documents made from results for people.
//!
//! - [`peers`]: mistral.rs beside candle and PyTorch (Markdown, JSON, SVG).
//! - [`plot`]: grouped bar charts (plotters).
//! - [`flame`]: differential flamegraphs from two `profile.folded` files.
//! - [`insitu`]: the in-situ breakdowns as a stacked-bar SVG.
//!
//! A new report or plot goes here; tables use [`crate::util::table::Table`], so each has its
//! Markdown, CSV and JSON forms. Depends on [`crate::results`] and everything below it.

pub mod flame;
pub mod insitu;
pub mod peers;
pub mod plot;
