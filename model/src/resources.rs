//! The custom resources of `dns.zentralink.net/v1alpha1`. Fields stay strings
//! and plain numbers as users write them; `catalog` validates them into typed
//! values. Doc comments here are what `kubectl explain` shows. Pure.

// Several `printcolumn(type_ = "string", ...)` attributes per kind are not
// duplicates; clippy's lint misreads kube-derive's attribute syntax.
#![allow(clippy::duplicated_attributes)]

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The API group of every ZentraLink resource.
pub const GROUP: &str = "dns.zentralink.net";
/// The API version of every ZentraLink resource.
pub const VERSION: &str = "v1alpha1";
/// `apiVersion` as written in manifests.
pub const API_VERSION: &str = "dns.zentralink.net/v1alpha1";

// ---------------------------------------------------------------- Tenant

/// A customer or team: the namespaces it owns and the DNS names it may manage.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "dns.zentralink.net",
    version = "v1alpha1",
    kind = "Tenant",
    status = "TenantStatus",
    shortname = "zlt",
    category = "zentralink",
    derive = "PartialEq",
    printcolumn(
        name = "Display Name",
        type_ = "string",
        json_path = ".spec.displayName"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TenantSpec {
    /// Human-readable name of the tenant, shown in the web service and notifications.
    pub display_name: String,
    /// Namespaces whose ZentraLink objects belong to this tenant. A namespace belongs to one tenant only.
    pub namespaces: Vec<String>,
    /// Zone suffixes this tenant may manage, for example `acme.example.`. A zone must be one of them or below one.
    pub allowed_domains: Vec<String>,
}

/// Observed state of a Tenant.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TenantStatus {
    /// Standard conditions (`Ready`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The generation of the spec this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

// ---------------------------------------------------------------- TenantPolicy

/// Approval rules, approvers and defaults of one tenant. One per tenant; a
/// change to it is itself judged by the policy in force before it.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "dns.zentralink.net",
    version = "v1alpha1",
    kind = "TenantPolicy",
    namespaced,
    status = "TenantPolicyStatus",
    shortname = "zlpol",
    category = "zentralink",
    derive = "PartialEq",
    printcolumn(
        name = "Min Approvals",
        type_ = "integer",
        json_path = ".spec.approvals.minApprovals"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TenantPolicySpec {
    /// When changes need approval, how many, and from whom.
    #[serde(default)]
    pub approvals: ApprovalRules,
    /// Git source: commits that change this tenant's objects must carry an SSH
    /// signature by a registered approver key; the key's owner is the requester.
    #[serde(default)]
    pub require_signed_commits: bool,
    /// Ownership of zones that do not set `spec.ownership` (`Full` when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_ownership: Option<Ownership>,
    /// Drift handling of zones that do not set `spec.drift` (`Report` when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_drift: Option<DriftMode>,
}

/// Approval rules of a tenant.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApprovalRules {
    /// Which changes need approval. Unset fields take the secure defaults
    /// (MX, NS, TXT, CAA, SOA; deletions; more than 20 record sets; rollbacks).
    #[serde(default)]
    pub required_for: RequiredFor,
    /// How many distinct approvers must approve (M of the approvers). Default 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_approvals: Option<u32>,
    /// Roles whose approvers may approve: OWNER, ADMIN, MANAGER, MEMBER, VIEWER. Default OWNER and ADMIN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approver_roles: Option<Vec<String>>,
    /// How long a change request waits for approval, for example `72h`, `3d`, `90m`. Default 72h.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_after: Option<String>,
    /// The people who may approve, with the SSH public keys they sign with.
    #[serde(default)]
    pub approvers: Vec<Approver>,
}

/// Which changes need approval.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RequiredFor {
    /// Record types whose changes need approval, for example `[MX, NS, TXT, CAA, SOA]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record_types: Option<Vec<String>>,
    /// Whether deleting a record set needs approval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletions: Option<bool>,
    /// A plan touching more record sets than this needs approval as a whole.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bulk_change_threshold: Option<u32>,
    /// Whether a rollback to a snapshot needs approval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollbacks: Option<bool>,
}

/// A person who may approve change requests.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Approver {
    /// The approver's name, as written in `Approval.spec.approver`.
    pub name: String,
    /// Where notifications about change requests go.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// The approver's role in the tenant: OWNER, ADMIN, MANAGER, MEMBER or VIEWER.
    pub role: String,
    /// OpenSSH public keys (`ssh-ed25519 AAAA... comment`) whose signatures count as this approver's.
    pub public_keys: Vec<String>,
}

/// Observed state of a TenantPolicy.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TenantPolicyStatus {
    /// Standard conditions (`Ready`, `AwaitingApproval` while a change to the policy waits).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The generation of the spec this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

// ---------------------------------------------------------------- ProviderConnection

/// The DNS provider behind a connection.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum ProviderType {
    /// PowerDNS Authoritative through its HTTP API.
    Powerdns,
    /// RFC 2136 dynamic updates with TSIG, read by AXFR (BIND, Knot, PowerDNS).
    Rfc2136,
    /// Hetzner DNS API.
    Hetzner,
    /// Cloudflare API.
    Cloudflare,
    /// RFC 1035 master files in a directory (the built-in provider).
    Zonefile,
}

impl ProviderType {
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderType::Powerdns => "powerdns",
            ProviderType::Rfc2136 => "rfc2136",
            ProviderType::Hetzner => "hetzner",
            ProviderType::Cloudflare => "cloudflare",
            ProviderType::Zonefile => "zonefile",
        }
    }
}

/// Whether ZentraLink may write through a connection.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum ConnectionMode {
    /// Plans are computed and shown, never executed. Every connection starts here.
    #[default]
    ReadOnly,
    /// Writes are allowed once `acknowledgeLiveWrites` is true and the connection test and write probe pass.
    Live,
}

/// How to reach a DNS provider, with which credentials, and whether writes are allowed.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "dns.zentralink.net",
    version = "v1alpha1",
    kind = "ProviderConnection",
    namespaced,
    status = "ProviderConnectionStatus",
    shortname = "zlpc",
    category = "zentralink",
    derive = "PartialEq",
    printcolumn(name = "Type", type_ = "string", json_path = ".spec.type"),
    printcolumn(name = "Mode", type_ = "string", json_path = ".spec.mode"),
    printcolumn(
        name = "Live",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"LiveWriteEnabled\")].status"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProviderConnectionSpec {
    /// The provider: powerdns, rfc2136, hetzner, cloudflare or zonefile. The block of the same name configures it.
    #[serde(rename = "type")]
    pub provider_type: ProviderType,
    /// PowerDNS settings (for `type: powerdns`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub powerdns: Option<PowerDnsSettings>,
    /// RFC 2136 settings (for `type: rfc2136`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rfc2136: Option<Rfc2136Settings>,
    /// Hetzner DNS settings (for `type: hetzner`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hetzner: Option<HttpApiSettings>,
    /// Cloudflare settings (for `type: cloudflare`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cloudflare: Option<HttpApiSettings>,
    /// Zone-file settings (for `type: zonefile`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zonefile: Option<ZoneFileSettings>,
    /// Where the credentials come from: exactly one of `secretRef`, `env`, `value`. Not needed for zonefile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<Credentials>,
    /// `ReadOnly` (the default) or `Live`.
    #[serde(default)]
    pub mode: ConnectionMode,
    /// Must be true, together with `mode: Live`, before anything is written through this connection.
    #[serde(default)]
    pub acknowledge_live_writes: bool,
    /// Timeouts, rate and concurrency limits for calls to the provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<ConnectionLimits>,
}

/// PowerDNS Authoritative HTTP API settings.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PowerDnsSettings {
    /// Base URL of the API, for example `http://127.0.0.1:8081`.
    pub url: String,
    /// PowerDNS server id. Default `localhost`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_id: Option<String>,
    /// Create zones that do not exist yet (on a Live connection).
    #[serde(default)]
    pub create_zones: bool,
}

/// RFC 2136 (dynamic update) settings.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Rfc2136Settings {
    /// The primary server as `host:port`, for example `127.0.0.1:53`.
    pub server: String,
    /// The TSIG key name.
    pub tsig_key_name: String,
    /// The TSIG algorithm: `hmac-sha256` (default) or `hmac-sha512`. The secret comes from `credentials`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tsig_algorithm: Option<String>,
}

/// Settings of an HTTP API provider (Hetzner, Cloudflare).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpApiSettings {
    /// Base URL of the API. Defaults to the provider's public API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

/// Zone-file provider settings.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ZoneFileSettings {
    /// Directory holding one RFC 1035 master file per zone, named `<zone>.zone`
    /// (for example `acme.example.zone`). A relative path is resolved against
    /// the directory of the manifest that declares the connection.
    pub directory: String,
}

/// Where a connection's credentials come from. Exactly one field is set.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Credentials {
    /// A key of a Kubernetes Secret in the connection's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<SecretKeyRef>,
    /// The name of an environment variable of the operator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<String>,
    /// An `enc:v1:` value made by `zentralink secrets encrypt` (decrypted with PLATFORM_ENCRYPTION_KEY).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// A key of a Kubernetes Secret.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecretKeyRef {
    /// The Secret's name.
    pub name: String,
    /// The key inside the Secret.
    pub key: String,
}

/// Limits for calls to a provider.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConnectionLimits {
    /// Timeout of one call in seconds. Default 10.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<u32>,
    /// Most requests per second. Default: no limit beyond the provider's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests_per_second: Option<u32>,
    /// Most calls in flight at once. Default 4.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrency: Option<u32>,
}

/// Observed state of a ProviderConnection.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProviderConnectionStatus {
    /// Standard conditions (`ProviderReady`, `LiveWriteEnabled`) with reasons and times.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The generation of the spec this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

// ---------------------------------------------------------------- DnsZone

/// Who owns the records of a zone.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum Ownership {
    /// The declaration is the whole zone: record sets it does not declare are deleted.
    #[default]
    Full,
    /// Only declared record sets are managed; others are left alone.
    Owned,
}

/// What to do when the provider's zone differs from the last applied state.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum DriftMode {
    /// Report drift (condition, event, audit) and change nothing.
    #[default]
    Report,
    /// Plan the zone back to its declared state, through the same gating.
    Revert,
}

/// A DNS zone: its provider and the record sets it should hold.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "dns.zentralink.net",
    version = "v1alpha1",
    kind = "DnsZone",
    namespaced,
    status = "DnsZoneStatus",
    shortname = "zlz",
    category = "zentralink",
    derive = "PartialEq",
    printcolumn(name = "Zone", type_ = "string", json_path = ".spec.zone"),
    printcolumn(
        name = "Provider",
        type_ = "string",
        json_path = ".spec.providerRef.name"
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Reason",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].reason"
    ),
    printcolumn(
        name = "Awaiting",
        type_ = "string",
        json_path = ".status.pendingChangeRequest"
    ),
    printcolumn(
        name = "Changes",
        type_ = "integer",
        json_path = ".status.plannedChanges",
        priority = 1
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DnsZoneSpec {
    /// The zone name, for example `acme.example.` (IDN names are converted to punycode).
    pub zone: String,
    /// The ProviderConnection (in this namespace) that serves the zone.
    pub provider_ref: ProviderRef,
    /// `Full` (undeclared record sets are deleted) or `Owned`. Default from the TenantPolicy, else Full.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ownership: Option<Ownership>,
    /// `Report` or `Revert`. Default from the TenantPolicy, else Report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drift: Option<DriftMode>,
    /// TTL of record sets that do not set one. Default 3600.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_ttl: Option<u32>,
    /// The record sets of the zone. One entry per owner name and type.
    #[serde(default)]
    pub record_sets: Vec<RecordSetSpec>,
}

/// A reference to a ProviderConnection in the same namespace.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProviderRef {
    /// The ProviderConnection's name.
    pub name: String,
}

/// One record set: all records of one owner name and type.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RecordSetSpec {
    /// Owner name: `@` for the apex, a name relative to the zone (`www`, `*.dev`), or an absolute name inside it.
    pub name: String,
    /// Record type: A, AAAA, CNAME, ALIAS, MX, NS, TXT, SRV, CAA, PTR, SOA, TLSA, SSHFP, DS, SVCB, HTTPS, or TYPE<n>.
    #[serde(rename = "type")]
    pub record_type: String,
    /// TTL in seconds. Default: the zone's `defaultTtl`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<u32>,
    /// The values in presentation format, as `dig` prints them: `10 mx1.acme.example.`, `"v=spf1 -all"`.
    pub values: Vec<String>,
}

/// Observed state of a DnsZone.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DnsZoneStatus {
    /// Standard conditions (`Ready`, `Planned`, `AwaitingApproval`, `Drifted`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The generation of the spec this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Digest of the last plan applied to the zone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_applied_digest: Option<String>,
    /// The change request the zone is waiting for, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_change_request: Option<String>,
    /// Id of the latest snapshot of the zone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_snapshot: Option<String>,
    /// Number of record sets the provider holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record_sets: Option<u32>,
    /// The revision whose plan was last applied (`kubernetes:<namespace>/<name>@<generation>`, or a git revision).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applied_revision: Option<String>,
    /// Operations in the last plan (0 when the zone holds what is declared).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub planned_changes: Option<u32>,
    /// Record sets whose provider content differs from what was last applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drifted_record_sets: Option<u32>,
}

// ---------------------------------------------------------------- DnsChangeRequest

/// A plan that needs approval before it executes. Created by the operator
/// when a plan is gated, or by a person with `rollbackTo` a snapshot.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "dns.zentralink.net",
    version = "v1alpha1",
    kind = "DnsChangeRequest",
    namespaced,
    status = "DnsChangeRequestStatus",
    shortname = "zlcr",
    category = "zentralink",
    derive = "PartialEq",
    printcolumn(name = "Zone", type_ = "string", json_path = ".spec.zoneRef"),
    printcolumn(name = "State", type_ = "string", json_path = ".status.state"),
    printcolumn(
        name = "Needs",
        type_ = "integer",
        json_path = ".status.approvalsNeeded"
    ),
    printcolumn(
        name = "Digest",
        type_ = "string",
        json_path = ".spec.planDigest",
        priority = 1
    ),
    printcolumn(name = "Requester", type_ = "string", json_path = ".spec.requester"),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DnsChangeRequestSpec {
    /// The DnsZone (in this namespace) the plan applies to.
    pub zone_ref: String,
    /// The plan digest (`sha256:...`) approvals must sign. Set by the operator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan_digest: Option<String>,
    /// The planned operations, as the operator computed them.
    #[serde(default)]
    pub changes: Vec<PlannedChange>,
    /// Who asked for the change: commit author or authenticated user, stamped by the operator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requester: Option<String>,
    /// Why the change is wanted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Roll the zone back to this snapshot id. The plan is the per-record diff from the current state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_to: Option<String>,
}

/// One planned record-set operation.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PlannedChange {
    /// `create`, `update` or `delete`.
    pub op: String,
    /// Absolute owner name.
    pub name: String,
    /// Record type.
    #[serde(rename = "type")]
    pub record_type: String,
    /// The record set before the change (absent for a create).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<RecordSetState>,
    /// The record set after the change (absent for a delete).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<RecordSetState>,
    /// Why this operation needs approval; empty when it does not.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<String>,
}

/// TTL and values of a record set.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RecordSetState {
    /// TTL in seconds.
    pub ttl: u32,
    /// Values in canonical presentation format.
    pub values: Vec<String>,
}

/// Observed state of a DnsChangeRequest.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DnsChangeRequestStatus {
    /// Pending, Approved, Rejected, Superseded, Expired, Applied or Failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// Approvers whose valid approvals were accepted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approved_by: Vec<String>,
    /// How many more distinct approvers must approve (0 once approved).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approvals_needed: Option<u32>,
    /// Who may still sign: the policy's approvers with an allowed role, never the requester.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub may_approve: Vec<String>,
    /// When the request expires if not approved (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    /// Standard conditions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The generation of the spec this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

// ---------------------------------------------------------------- Approval

/// Approve or reject.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum Decision {
    /// Count this approver towards `minApprovals`.
    Approve,
    /// Reject the change request; one valid rejection rejects it.
    Reject,
}

/// A signed decision on a change request.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "dns.zentralink.net",
    version = "v1alpha1",
    kind = "Approval",
    namespaced,
    status = "ApprovalStatus",
    shortname = "zla",
    category = "zentralink",
    derive = "PartialEq",
    printcolumn(
        name = "Change Request",
        type_ = "string",
        json_path = ".spec.changeRequest"
    ),
    printcolumn(name = "Approver", type_ = "string", json_path = ".spec.approver"),
    printcolumn(name = "Decision", type_ = "string", json_path = ".spec.decision"),
    printcolumn(
        name = "Accepted",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Accepted\")].status"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApprovalSpec {
    /// The DnsChangeRequest (in this namespace) decided on.
    pub change_request: String,
    /// The plan digest that was signed; must equal the change request's current digest.
    pub plan_digest: String,
    /// The approver's name as listed in the TenantPolicy.
    pub approver: String,
    /// `Approve` or `Reject`.
    pub decision: Decision,
    /// When the approver signed (RFC 3339 UTC); bound by the signature
    pub created_at: String,
    /// OpenSSH signature (`-----BEGIN SSH SIGNATURE-----`, namespace `zentralink-approval`) over the approval message.
    pub signature: String,
    /// An optional note from the approver (not signed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

/// Observed state of an Approval.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApprovalStatus {
    /// `Accepted` condition with the reason an approval was accepted or refused.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The generation of the spec this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

// ---------------------------------------------------------------- DnsSnapshot

/// A request for an on-demand snapshot of a zone.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "dns.zentralink.net",
    version = "v1alpha1",
    kind = "DnsSnapshot",
    namespaced,
    status = "DnsSnapshotStatus",
    shortname = "zls",
    category = "zentralink",
    derive = "PartialEq",
    printcolumn(name = "Zone", type_ = "string", json_path = ".spec.zoneRef"),
    printcolumn(name = "Snapshot", type_ = "string", json_path = ".status.snapshotId"),
    printcolumn(
        name = "Digest",
        type_ = "string",
        json_path = ".status.digest",
        priority = 1
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DnsSnapshotSpec {
    /// The DnsZone (in this namespace) to snapshot.
    pub zone_ref: String,
    /// Why the snapshot is taken.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Observed state of a DnsSnapshot.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DnsSnapshotStatus {
    /// Id of the stored snapshot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_id: Option<String>,
    /// Digest of the zone content (`sha256:...`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// Number of record sets captured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record_sets: Option<u32>,
    /// Standard conditions (`Ready`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The generation of the spec this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

/// Every CRD of the group, in a fixed order, as kube-rs generates them.
pub fn all_crds()
-> Vec<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition>
{
    use kube::CustomResourceExt;
    vec![
        Tenant::crd(),
        TenantPolicy::crd(),
        ProviderConnection::crd(),
        DnsZone::crd(),
        DnsChangeRequest::crd(),
        Approval::crd(),
        DnsSnapshot::crd(),
    ]
}

/// The CRDs as YAML files: `(file name, content)`. Kubernetes refuses
/// `additionalProperties: false` next to `properties`, which serde's
/// `deny_unknown_fields` produces; it is removed here (the API server prunes
/// unknown fields instead, and file loading still refuses them).
pub fn crd_files() -> Result<Vec<(String, String)>, serde_yaml::Error> {
    let mut out = Vec::new();
    for crd in all_crds() {
        let name = crd.metadata.name.clone().unwrap_or_default();
        let mut value =
            serde_json::to_value(&crd).map_err(<serde_yaml::Error as serde::ser::Error>::custom)?;
        strip_additional_properties_false(&mut value);
        let yaml = serde_yaml::to_string(&value)?;
        out.push((format!("{name}.yaml"), yaml));
    }
    Ok(out)
}

fn strip_additional_properties_false(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(map) => {
            if map.get("additionalProperties") == Some(&serde_json::Value::Bool(false)) {
                map.remove("additionalProperties");
            }
            for child in map.values_mut() {
                strip_additional_properties_false(child);
            }
        }
        serde_json::Value::Array(items) => {
            items.iter_mut().for_each(strip_additional_properties_false)
        }
        _ => {}
    }
}
