//! Sources of desired state. Does I/O.

pub mod directory;
