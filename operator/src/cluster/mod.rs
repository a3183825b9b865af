//! The Kubernetes side of the operator: the custom resources as a source of
//! desired state (a controller per DnsZone, reconciled through the same
//! observe -> decide -> execute code as a git revision), status by
//! server-side apply, Events, change requests mirrored as DnsChangeRequest
//! objects, the admission webhook, and leases for leader election and
//! sharding. Does I/O (the Kubernetes API).

pub mod admission;
pub mod controller;
pub mod lease;
pub mod mirror;
pub mod objects;
pub mod rbac;
pub mod run;
pub mod secrets;
pub mod status;

/// The field manager of every server-side apply the operator makes.
pub const FIELD_MANAGER: &str = "zentralink-operator";

/// The finalizer on DnsZones: a deleted zone's records are removed through a
/// plan like any other (gated by the policy) before the object goes.
pub const FINALIZER: &str = "dns.zentralink.net/finalizer";

/// Who last changed a DnsZone's spec: stamped by the admission webhook from
/// the request's authenticated user; nobody else may set it.
pub const REQUESTER_ANNOTATION: &str = "dns.zentralink.net/requested-by";

/// The label on objects the operator made (mirrored change requests).
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";

/// The value of [`MANAGED_BY_LABEL`] on them.
pub const MANAGED_BY: &str = "zentralink";

/// Secrets credentials may come from carry this label (with value `true`):
/// the operator watches only those, and only in the tenant's own namespaces.
pub const CREDENTIALS_LABEL: &str = "dns.zentralink.net/credentials";
