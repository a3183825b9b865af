//! ZentraLink's operating side: sources of desired state (directories, git,
//! the Kubernetes API), the reconcile loop, the Kubernetes controller with its
//! admission webhook and leases; the DNS providers live in
//! `zentralink-providers`. Does I/O.

pub mod approvals;
pub mod cluster;
pub mod daemon;
pub mod guard;
pub mod metrics;
pub mod planner;
pub mod prefetch;
pub mod reconcile;
pub mod server;
pub mod source;
pub mod webhook;
