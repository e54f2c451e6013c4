//! Layer 3, cases: what a bench case is, independent of any one part.
//!
//! - [`id`]: the typed case id ([`CaseId`]) and the closed sets it is made of (group, phase,
//!   attention path, cache policy, sampling, peer engine, ...); the only id parser.
//! - [`cost`]: FLOPs and bytes of one iteration.
//! - [`spec`]: a case before set-up ([`Spec`]) and after ([`Runner`]), and the context a
//!   part's case generator receives ([`Ctx`]).
//! - [`set`]: the case sets a run measures (quick, default, full).
//! - [`status`]: how a case ended.
//!
//! Depends on [`crate::util`] only (and candle's types).

pub mod cost;
pub mod id;
pub mod set;
pub mod spec;
pub mod status;

pub use cost::{elem_bytes, Cost};
pub use id::{
    AttnPath, CachePolicy, Case, CaseId, Group, ModelName, PeerCase, PeerEngine, Phase, Proj,
    SamplingMethod, SmallOp, Subject, WeightClass, WeightFormat, Workload,
};
pub use set::CaseSet;
pub use spec::{Build, Ctx, Runner, Spec};
pub use status::Status;
