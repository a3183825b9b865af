//! ZentraLink's domain model: resource types, DNS record validation, the plan
//! engine, the plan digest and policy gating. Pure: this crate does no I/O.

pub mod adopt;
pub mod approval;
pub mod catalog;
pub mod config;
pub mod diagnostics;
pub mod digest;
pub mod dnssec;
pub mod documents;
pub mod liveness;
pub mod name;
pub mod plan;
pub mod policy;
pub mod reconcile;
pub mod record;
pub mod report;
pub mod resources;
pub mod secrets;
pub mod text;
pub mod zone;

pub use diagnostics::{Diagnostic, Diagnostics, FieldError};
pub use digest::{PlanDigest, plan_digest};
pub use name::ZoneName;
pub use plan::{Change, ChangeOp, Plan, PlanScope, apply_plan, plan_zone};
pub use record::{RecordSet, RecordValue, RrKey};
pub use zone::ZoneContent;
