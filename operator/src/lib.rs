//! ZentraLink's operating side: sources of desired state (directories; git
//! and Kubernetes later) and the reconcile loop; the DNS providers live in
//! `zentralink-providers`. Does I/O.

pub mod approvals;
pub mod daemon;
pub mod guard;
pub mod metrics;
pub mod planner;
pub mod reconcile;
pub mod server;
pub mod source;
pub mod webhook;
