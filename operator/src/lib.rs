//! ZentraLink's reconciler side: sources of desired state (directories; git and
//! Kubernetes later) and DNS providers behind one trait. Does I/O.

pub mod fsread;
pub mod liveness;
pub mod planner;
pub mod provider;
pub mod source;
