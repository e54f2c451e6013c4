//! How a case ended in a run.

use serde::{Deserialize, Serialize};
use strum::{Display, EnumString};

/// `ok` (measured), `skipped` (not run here, with a reason), `failed` (set-up or run error).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Display, EnumString)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum Status {
    Ok,
    Skipped,
    Failed,
}
