//! Typed ids: a tenant id cannot be passed where a zone id is expected.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! uuid_id {
    ($($(#[$doc:meta])* $name:ident),* $(,)?) => {$(
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, sqlx::Type)]
        #[sqlx(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            pub fn new() -> Self {
                Self(Uuid::new_v4())
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }

        impl std::str::FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }
    )*};
}

uuid_id!(
    /// A tenant.
    TenantId,
    /// A user of the web service.
    UserId,
    /// A provider connection.
    ConnectionId,
    /// A managed zone.
    ZoneId,
    /// A zone snapshot.
    SnapshotId,
    /// A DNS change request.
    ChangeRequestId,
    /// An approval.
    ApprovalId,
    /// One provider batch of the reconciler.
    ExecutionId,
);
