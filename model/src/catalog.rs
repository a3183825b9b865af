//! Validation across objects: tenants own namespaces, zones reference
//! connections of their tenant, zones lie under allowed domains, no zone is
//! managed twice. Turns loaded documents into typed, validated entries. Pure.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::diagnostics::Diagnostic;
use crate::diagnostics::Diagnostics;
use crate::documents::{Kind, LoadedObject, Location, Origin, Resource, Spot};
use crate::name::ZoneName;
use crate::plan::Ownership;
use crate::policy::{GatePolicy, Role, parse_duration};
use crate::record::{
    MAX_TTL, MIN_TTL, RecordSet, RecordValue, RrKey, parse_record_type, type_name,
};
use crate::resources::{
    ApprovalSpec, DnsChangeRequestSpec, DnsSnapshotSpec, DnsZoneSpec, DriftMode,
    ProviderConnectionSpec, ProviderType, TenantPolicySpec, TenantSpec,
};
use crate::zone::ZoneContent;

/// Default TTL of record sets when neither the set nor the zone sets one.
pub const DEFAULT_TTL: u32 = 3600;
/// Default time a change request waits for approval.
pub const DEFAULT_EXPIRY_SECS: u64 = 72 * 3600;

/// A validated tenant.
#[derive(Debug, Clone)]
pub struct TenantEntry {
    pub name: String,
    pub display_name: String,
    pub namespaces: Vec<String>,
    pub allowed_domains: Vec<ZoneName>,
    /// The spec as declared (what the configuration in force keeps).
    pub spec: TenantSpec,
    pub origin: Location,
}

/// An approver with a validated role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApproverEntry {
    pub name: String,
    pub email: Option<String>,
    pub role: Role,
    pub public_keys: Vec<String>,
}

/// A validated tenant policy (or the secure default for a tenant without one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub gate: GatePolicy,
    pub min_approvals: u32,
    pub approver_roles: BTreeSet<Role>,
    pub expires_after_secs: u64,
    pub approvers: Vec<ApproverEntry>,
    pub require_signed_commits: bool,
    pub default_ownership: Ownership,
    pub default_drift: DriftMode,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            gate: GatePolicy::default(),
            min_approvals: 1,
            approver_roles: [Role::Owner, Role::Admin].into_iter().collect(),
            expires_after_secs: DEFAULT_EXPIRY_SECS,
            approvers: Vec::new(),
            require_signed_commits: false,
            default_ownership: Ownership::Full,
            default_drift: DriftMode::Report,
        }
    }
}

/// A validated tenant policy and where it came from.
#[derive(Debug, Clone)]
pub struct PolicyEntry {
    pub tenant: String,
    pub namespace: String,
    pub name: String,
    pub policy: Policy,
    /// The spec as declared (what the configuration in force keeps).
    pub spec: TenantPolicySpec,
    pub origin: Location,
}

/// A validated provider connection.
#[derive(Debug, Clone)]
pub struct ConnectionEntry {
    pub tenant: String,
    pub namespace: String,
    pub name: String,
    pub spec: ProviderConnectionSpec,
    pub origin: Location,
}

impl ConnectionEntry {
    /// True when the spec asks for live writes and acknowledges them. The
    /// connection test and write probe are further conditions the operator checks.
    pub fn live_requested(&self) -> bool {
        self.spec.mode == crate::resources::ConnectionMode::Live
            && self.spec.acknowledge_live_writes
    }
}

/// A validated zone with its desired content.
#[derive(Debug, Clone)]
pub struct ZoneEntry {
    pub tenant: String,
    pub namespace: String,
    /// The DnsZone object's name.
    pub name: String,
    pub zone: ZoneName,
    /// The ProviderConnection's name (same namespace).
    pub connection: String,
    pub ownership: Ownership,
    pub drift: DriftMode,
    pub desired: ZoneContent,
    pub origin: Location,
}

/// An object that references a zone (change request, snapshot) or a change request (approval).
#[derive(Debug, Clone)]
pub struct Referencing<T> {
    pub tenant: String,
    pub namespace: String,
    pub name: String,
    pub spec: T,
    pub origin: Location,
}

/// Everything read from a source, validated.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    pub tenants: BTreeMap<String, TenantEntry>,
    /// By tenant name.
    pub policies: BTreeMap<String, PolicyEntry>,
    /// By (namespace, name).
    pub connections: BTreeMap<(String, String), ConnectionEntry>,
    /// In zone-name order.
    pub zones: Vec<ZoneEntry>,
    pub change_requests: Vec<Referencing<DnsChangeRequestSpec>>,
    pub approvals: Vec<Referencing<ApprovalSpec>>,
    pub snapshots: Vec<Referencing<DnsSnapshotSpec>>,
}

impl Catalog {
    /// The policy in force for a tenant: its TenantPolicy, or the secure default.
    pub fn policy_for(&self, tenant: &str) -> Policy {
        self.policies
            .get(tenant)
            .map(|p| p.policy.clone())
            .unwrap_or_default()
    }

    pub fn connection(&self, namespace: &str, name: &str) -> Option<&ConnectionEntry> {
        self.connections
            .get(&(namespace.to_owned(), name.to_owned()))
    }

    /// Validates loaded objects. Objects with errors are left out; every error is returned.
    pub fn build(objects: Vec<LoadedObject>) -> (Catalog, Diagnostics) {
        let mut builder = CatalogBuilder::new();
        for object in objects {
            builder.add(object);
        }
        builder.finish()
    }
}

/// [`Catalog::build`] fed one object at a time, as the files are read: each
/// DnsZone is checked on its own and turned into its compact desired
/// content (a [`ZoneContent`]) when it is added, so that its declaration,
/// and the text of its file, need not wait for the other files; what needs
/// other objects (the namespace's tenant, allowed domains, the connection,
/// the policy's defaults, duplicates, one object per zone, references) is
/// checked by [`CatalogBuilder::finish`]. The errors, and their order, are
/// those of [`Catalog::build`] over the same objects in the same order.
#[derive(Debug, Default)]
pub struct CatalogBuilder {
    /// (kind, namespace, name) of every object kept, and where it was declared.
    seen: BTreeMap<(Kind, String, String), Location>,
    duplicates: Diagnostics,
    tenants: Vec<(String, TenantSpec, Origin)>,
    /// The other objects, in input order.
    rest: Vec<Pending>,
    added: usize,
}

/// An object added to a [`CatalogBuilder`], waiting for the checks across objects.
#[derive(Debug)]
enum Pending {
    Zone(Box<PreparedZone>),
    Object(Box<LoadedObject>),
}

/// A DnsZone checked on its own: its desired content and the errors found,
/// without its declaration or its file's text.
#[derive(Debug)]
struct PreparedZone {
    namespace: String,
    name: String,
    /// The zone and its content; the error when `spec.zone` is no zone
    /// name (then nothing else is checked, as before).
    content: Result<ZoneContent, Diagnostic>,
    connection: String,
    ownership: Option<Ownership>,
    drift: Option<DriftMode>,
    /// The errors found on its own, after those of `spec.zone`.
    errors: Diagnostics,
    spot: Spot,
}

impl CatalogBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    /// How many objects were added (duplicates included).
    pub fn len(&self) -> usize {
        self.added
    }

    pub fn is_empty(&self) -> bool {
        self.added == 0
    }

    /// Adds one object. A DnsZone is checked and converted now, and its
    /// declaration dropped.
    pub fn add(&mut self, object: LoadedObject) {
        self.added += 1;
        let LoadedObject { resource, origin } = object;
        let key = (
            resource.kind(),
            resource.namespace().unwrap_or_default().to_owned(),
            resource.name().to_owned(),
        );
        if let Some(first) = self.seen.get(&key) {
            self.duplicates.push(origin.diagnostic(
                "metadata.name",
                format!(
                    "duplicate {} {}{}: already declared at {}:{}",
                    key.0,
                    if key.1.is_empty() {
                        String::new()
                    } else {
                        format!("{}/", key.1)
                    },
                    key.2,
                    first.file,
                    first.line.unwrap_or(1)
                ),
            ));
            return;
        }
        let location = origin.location();
        let (_, namespace, name) = key.clone();
        self.seen.insert(key, location);
        match resource {
            Resource::Tenant(t) => {
                self.tenants
                    .push((t.metadata.name.unwrap_or_default(), t.spec, origin));
            }
            Resource::DnsZone(z) => {
                let zone = prepare_zone(namespace, name, z.spec, &origin);
                self.rest.push(Pending::Zone(Box::new(zone)));
            }
            resource => self
                .rest
                .push(Pending::Object(Box::new(LoadedObject { resource, origin }))),
        }
    }

    /// The checks across objects: the catalog of every valid object, and
    /// every error.
    pub fn finish(self) -> (Catalog, Diagnostics) {
        let CatalogBuilder {
            duplicates,
            tenants,
            rest,
            ..
        } = self;
        let mut b = Builder {
            errors: duplicates,
            ..Builder::default()
        };
        for (name, spec, origin) in tenants {
            b.tenant(name, spec, &origin);
        }
        let mut zones = Vec::new();
        let mut referencing = Vec::new();
        for pending in rest {
            let namespace = match &pending {
                Pending::Zone(z) => z.namespace.clone(),
                Pending::Object(o) => o.resource.namespace().unwrap_or_default().to_owned(),
            };
            let Some(tenant) = b.namespace_owner.get(&namespace).cloned() else {
                let message = format!(
                    "namespace {namespace:?} belongs to no Tenant; add it to a Tenant's spec.namespaces"
                );
                b.errors.push(match &pending {
                    Pending::Zone(z) => z.spot.diagnostic("metadata.namespace", message),
                    Pending::Object(o) => o.origin.diagnostic("metadata.namespace", message),
                });
                continue;
            };
            let obj = match pending {
                Pending::Zone(zone) => {
                    zones.push((tenant, zone));
                    continue;
                }
                Pending::Object(obj) => *obj,
            };
            let name = obj.resource.name().to_owned();
            match obj.resource {
                Resource::TenantPolicy(p) => b.policy(tenant, namespace, name, p.spec, obj.origin),
                Resource::ProviderConnection(c) => {
                    b.connection(tenant, namespace, name, c.spec, obj.origin)
                }
                other => referencing.push((tenant, namespace, name, other, obj.origin)),
            }
        }
        for (tenant, zone) in zones {
            b.zone(tenant, *zone);
        }
        b.check_zone_uniqueness();
        for (tenant, namespace, name, resource, origin) in referencing {
            b.referencing(tenant, namespace, name, resource, origin);
        }
        b.catalog
            .zones
            .sort_by(|a, z| a.zone.cmp(&z.zone).then_with(|| a.name.cmp(&z.name)));
        (b.catalog, b.errors)
    }
}

/// Validates one object on its own, as the admission webhook sees it: the
/// checks of [`Catalog::build`] that need no other object (names, record
/// sets and values, zone rules, policy fields, connection settings, the
/// shape of credentials, digests and signatures), with the same messages.
/// What needs other objects (the namespace's tenant, references, allowed
/// domains, duplicates, one policy per tenant, one object per zone) is left
/// to [`Catalog::build`], which the controller runs.
pub fn check_object(object: LoadedObject) -> Diagnostics {
    let mut b = Builder {
        scope: Scope::Object,
        ..Builder::default()
    };
    let LoadedObject { resource, origin } = object;
    let name = resource.name().to_owned();
    let namespace = resource.namespace().unwrap_or_default().to_owned();
    // The tenant is found through other objects: a builder that knows no
    // tenant has no allowed domains, policy or namespace owners to compare with.
    let tenant = String::new();
    match resource {
        Resource::Tenant(t) => b.tenant(name, t.spec, &origin),
        Resource::TenantPolicy(p) => b.policy(tenant, namespace, name, p.spec, origin),
        Resource::ProviderConnection(c) => b.connection(tenant, namespace, name, c.spec, origin),
        Resource::DnsZone(z) => b.zone(tenant, prepare_zone(namespace, name, z.spec, &origin)),
        other => b.referencing(tenant, namespace, name, other, origin),
    }
    b.errors
}

#[derive(Default)]
struct Builder {
    catalog: Catalog,
    errors: Diagnostics,
    namespace_owner: BTreeMap<String, String>,
    scope: Scope,
    /// Where each zone in `catalog.zones` was declared, by index, until the
    /// zones are checked for uniqueness (its messages name the line of `spec.zone`).
    zone_spots: Vec<Spot>,
}

/// What one validation run sees.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Scope {
    /// Every object of a source: references to other objects are checked.
    #[default]
    Source,
    /// One object alone (admission): references cannot be checked, since the
    /// objects they name may come later; the controller reports them.
    Object,
}

impl Builder {
    fn tenant(&mut self, name: String, spec: TenantSpec, origin: &Origin) {
        let mut ok = true;
        if spec.display_name.trim().is_empty() {
            self.errors
                .push(origin.diagnostic("spec.displayName", "a display name is required"));
            ok = false;
        }
        let mut domains = Vec::new();
        for (i, d) in spec.allowed_domains.iter().enumerate() {
            match ZoneName::parse(d) {
                Ok(z) => domains.push(z),
                Err(e) => {
                    self.errors
                        .push(origin.diagnostic(format!("spec.allowedDomains[{i}]"), e));
                    ok = false;
                }
            }
        }
        if spec.allowed_domains.is_empty() {
            self.errors.push(origin.diagnostic(
                "spec.allowedDomains",
                "at least one allowed domain is required; a tenant without one can manage no zone",
            ));
            ok = false;
        }
        for (i, ns) in spec.namespaces.iter().enumerate() {
            let path = format!("spec.namespaces[{i}]");
            if let Err(e) = crate::documents::check_namespace_name(ns) {
                self.errors.push(origin.diagnostic(path, e));
                ok = false;
            } else if let Some(other) = self.namespace_owner.get(ns) {
                self.errors.push(origin.diagnostic(
                    path,
                    format!("namespace {ns:?} already belongs to tenant {other:?}; a namespace belongs to one tenant"),
                ));
                ok = false;
            }
        }
        if !ok {
            return;
        }
        for ns in &spec.namespaces {
            self.namespace_owner.insert(ns.clone(), name.clone());
        }
        self.catalog.tenants.insert(
            name.clone(),
            TenantEntry {
                name,
                display_name: spec.display_name.clone(),
                namespaces: spec.namespaces.clone(),
                allowed_domains: domains,
                spec,
                origin: origin.location(),
            },
        );
    }

    fn policy(
        &mut self,
        tenant: String,
        namespace: String,
        name: String,
        spec: TenantPolicySpec,
        origin: Origin,
    ) {
        if let Some(first) = self.catalog.policies.get(&tenant) {
            self.errors.push(origin.diagnostic(
                "metadata.name",
                format!(
                    "tenant {tenant:?} already has a TenantPolicy ({}/{} at {}:{}); a tenant has one policy",
                    first.namespace,
                    first.name,
                    first.origin.file,
                    first.origin.line.unwrap_or(1)
                ),
            ));
            return;
        }
        let before = self.errors.len();
        let mut policy = Policy::default();
        let rules = &spec.approvals;
        let req = &rules.required_for;
        if let Some(types) = &req.record_types {
            policy.gate.record_types.clear();
            for (i, t) in types.iter().enumerate() {
                match parse_record_type(t) {
                    Ok(rt) => {
                        policy.gate.record_types.insert(u16::from(rt));
                    }
                    Err(e) => self.errors.push(
                        origin
                            .diagnostic(format!("spec.approvals.requiredFor.recordTypes[{i}]"), e),
                    ),
                }
            }
        }
        if let Some(d) = req.deletions {
            policy.gate.deletions = d;
        }
        if let Some(t) = req.bulk_change_threshold {
            policy.gate.bulk_change_threshold = Some(t);
        }
        if let Some(r) = req.rollbacks {
            policy.gate.rollbacks = r;
        }
        if let Some(m) = rules.min_approvals {
            if m == 0 {
                self.errors.push(origin.diagnostic(
                    "spec.approvals.minApprovals",
                    "minApprovals must be at least 1; to stop gating a change, remove it from requiredFor",
                ));
            }
            policy.min_approvals = m;
        }
        if let Some(roles) = &rules.approver_roles {
            policy.approver_roles.clear();
            for (i, r) in roles.iter().enumerate() {
                match Role::parse(r) {
                    Ok(role) => {
                        policy.approver_roles.insert(role);
                    }
                    Err(e) => self
                        .errors
                        .push(origin.diagnostic(format!("spec.approvals.approverRoles[{i}]"), e)),
                }
            }
        }
        if let Some(exp) = &rules.expires_after {
            match parse_duration(exp) {
                Ok(secs) => policy.expires_after_secs = secs,
                Err(e) => self
                    .errors
                    .push(origin.diagnostic("spec.approvals.expiresAfter", e)),
            }
        }
        let mut names = BTreeSet::new();
        for (i, a) in rules.approvers.iter().enumerate() {
            let base = format!("spec.approvals.approvers[{i}]");
            if a.name.trim().is_empty() {
                self.errors.push(
                    origin.diagnostic(format!("{base}.name"), "an approver name is required"),
                );
            } else if !names.insert(a.name.clone()) {
                self.errors.push(origin.diagnostic(
                    format!("{base}.name"),
                    format!("approver {:?} is listed twice", a.name),
                ));
            }
            let role = match Role::parse(&a.role) {
                Ok(r) => r,
                Err(e) => {
                    self.errors
                        .push(origin.diagnostic(format!("{base}.role"), e));
                    continue;
                }
            };
            if a.public_keys.is_empty() {
                self.errors.push(origin.diagnostic(
                    format!("{base}.publicKeys"),
                    "an approver needs at least one SSH public key to sign with",
                ));
            }
            for (j, key) in a.public_keys.iter().enumerate() {
                if let Err(e) = check_ssh_public_key(key) {
                    self.errors
                        .push(origin.diagnostic(format!("{base}.publicKeys[{j}]"), e));
                }
            }
            policy.approvers.push(ApproverEntry {
                name: a.name.clone(),
                email: a.email.clone(),
                role,
                public_keys: a.public_keys.clone(),
            });
        }
        let eligible = policy
            .approvers
            .iter()
            .filter(|a| policy.approver_roles.contains(&a.role))
            .count();
        if !policy.approvers.is_empty()
            && u32::try_from(eligible).unwrap_or(u32::MAX) < policy.min_approvals
        {
            self.errors.push(origin.diagnostic(
                "spec.approvals.minApprovals",
                format!(
                    "minApprovals is {} but only {eligible} approver(s) have a role in approverRoles; gated changes could never be approved",
                    policy.min_approvals
                ),
            ));
        }
        policy.require_signed_commits = spec.require_signed_commits;
        policy.default_ownership = spec.default_ownership.unwrap_or_default();
        policy.default_drift = spec.default_drift.unwrap_or_default();
        if self.errors.len() > before {
            return;
        }
        self.catalog.policies.insert(
            tenant.clone(),
            PolicyEntry {
                tenant,
                namespace,
                name,
                policy,
                spec,
                origin: origin.location(),
            },
        );
    }

    fn connection(
        &mut self,
        tenant: String,
        namespace: String,
        name: String,
        spec: ProviderConnectionSpec,
        origin: Origin,
    ) {
        let before = self.errors.len();
        let blocks = [
            (ProviderType::Powerdns, spec.powerdns.is_some()),
            (ProviderType::Rfc2136, spec.rfc2136.is_some()),
            (ProviderType::Hetzner, spec.hetzner.is_some()),
            (ProviderType::Cloudflare, spec.cloudflare.is_some()),
            (ProviderType::Zonefile, spec.zonefile.is_some()),
        ];
        for (t, present) in blocks {
            if t == spec.provider_type
                && !present
                && t != ProviderType::Hetzner
                && t != ProviderType::Cloudflare
            {
                self.errors.push(origin.diagnostic(
                    format!("spec.{}", t.as_str()),
                    format!("type is {} but spec.{} is missing", t.as_str(), t.as_str()),
                ));
            }
            if t != spec.provider_type && present {
                self.errors.push(origin.diagnostic(
                    format!("spec.{}", t.as_str()),
                    format!(
                        "spec.{} does not belong to a connection of type {}",
                        t.as_str(),
                        spec.provider_type.as_str()
                    ),
                ));
            }
        }
        if let Some(p) = &spec.powerdns
            && let Err(e) = check_url(&p.url)
        {
            self.errors.push(origin.diagnostic("spec.powerdns.url", e));
        }
        for (block, settings) in [("hetzner", &spec.hetzner), ("cloudflare", &spec.cloudflare)] {
            if let Some(url) = settings.as_ref().and_then(|s| s.url.as_ref())
                && let Err(e) = check_url(url)
            {
                self.errors
                    .push(origin.diagnostic(format!("spec.{block}.url"), e));
            }
        }
        if let Some(r) = &spec.rfc2136 {
            if r.server.parse::<std::net::SocketAddr>().is_err() {
                self.errors.push(origin.diagnostic(
                    "spec.rfc2136.server",
                    format!(
                        "{:?} is not an address with a port, such as 127.0.0.1:53",
                        r.server
                    ),
                ));
            }
            if let Err(e) = crate::name::parse_dns_name(&r.tsig_key_name) {
                self.errors
                    .push(origin.diagnostic("spec.rfc2136.tsigKeyName", e));
            }
            if let Some(alg) = &r.tsig_algorithm
                && !matches!(alg.as_str(), "hmac-sha256" | "hmac-sha512")
            {
                self.errors.push(origin.diagnostic(
                    "spec.rfc2136.tsigAlgorithm",
                    format!("{alg:?} is not supported; use hmac-sha256 or hmac-sha512"),
                ));
            }
        }
        if let Some(z) = &spec.zonefile
            && z.directory.trim().is_empty()
        {
            self.errors
                .push(origin.diagnostic("spec.zonefile.directory", "a directory is required"));
        }
        match (&spec.credentials, spec.provider_type) {
            (Some(_), ProviderType::Zonefile) => self.errors.push(origin.diagnostic(
                "spec.credentials",
                "a zonefile connection takes no credentials",
            )),
            (None, ProviderType::Zonefile) => {}
            (None, t) => self.errors.push(origin.diagnostic(
                "spec.credentials",
                format!(
                    "a {} connection needs credentials: one of secretRef, env, value",
                    t.as_str()
                ),
            )),
            (Some(c), _) => {
                let set = [c.secret_ref.is_some(), c.env.is_some(), c.value.is_some()]
                    .into_iter()
                    .filter(|b| *b)
                    .count();
                if set != 1 {
                    self.errors.push(origin.diagnostic(
                        "spec.credentials",
                        "set exactly one of secretRef, env, value",
                    ));
                }
                if let Some(var) = &c.env
                    && let Err(e) = crate::secrets::check_credential_env_name(var)
                {
                    self.errors
                        .push(origin.diagnostic("spec.credentials.env", e));
                }
                if let Some(v) = &c.value
                    && !v.starts_with("enc:v1:")
                {
                    self.errors.push(origin.diagnostic(
                            "spec.credentials.value",
                            "credentials in a manifest must be encrypted (enc:v1:...); make one with `zentralink secrets encrypt`. Never commit a plain secret",
                        ));
                }
            }
        }
        if let Some(l) = &spec.limits {
            for (field, v) in [
                ("timeoutSeconds", l.timeout_seconds),
                ("requestsPerSecond", l.requests_per_second),
                ("maxConcurrency", l.max_concurrency),
            ] {
                if v == Some(0) {
                    self.errors.push(
                        origin.diagnostic(format!("spec.limits.{field}"), "must be at least 1"),
                    );
                }
            }
        }
        if self.errors.len() > before {
            return;
        }
        self.catalog.connections.insert(
            (namespace.clone(), name.clone()),
            ConnectionEntry {
                tenant,
                namespace,
                name,
                spec,
                origin: origin.location(),
            },
        );
    }

    /// The checks of a prepared zone that need other objects (its tenant's
    /// allowed domains, its connection, its policy's defaults); then its own
    /// errors, in the order a zone's checks always gave them.
    fn zone(&mut self, tenant: String, prepared: PreparedZone) {
        let PreparedZone {
            namespace,
            name,
            content,
            connection,
            ownership,
            drift,
            errors,
            spot,
        } = prepared;
        let before = self.errors.len();
        let content = match content {
            Ok(c) => c,
            Err(e) => {
                self.errors.push(e);
                return;
            }
        };
        let zone = content.origin.clone();
        if let Some(t) = self.catalog.tenants.get(&tenant)
            && !t.allowed_domains.iter().any(|d| zone.is_within(d))
        {
            let allowed: Vec<String> = t.allowed_domains.iter().map(ToString::to_string).collect();
            self.errors.push(spot.diagnostic(
                "spec.zone",
                format!(
                    "{zone} is not under tenant {tenant:?}'s allowedDomains ({})",
                    allowed.join(", ")
                ),
            ));
        }
        if self.scope == Scope::Source && self.catalog.connection(&namespace, &connection).is_none()
        {
            self.errors.push(spot.diagnostic(
                "spec.providerRef.name",
                format!("no valid ProviderConnection {connection:?} in namespace {namespace:?}"),
            ));
        }
        self.errors.extend(errors);
        if self.errors.len() > before {
            return;
        }
        let (default_ownership, default_drift) = self
            .catalog
            .policies
            .get(&tenant)
            .map(|p| (p.policy.default_ownership, p.policy.default_drift))
            .unwrap_or_else(|| {
                let p = Policy::default();
                (p.default_ownership, p.default_drift)
            });
        self.catalog.zones.push(ZoneEntry {
            tenant,
            namespace,
            name,
            zone,
            connection,
            ownership: ownership.unwrap_or(default_ownership),
            drift: drift.unwrap_or(default_drift),
            desired: content,
            origin: spot.location(),
        });
        self.zone_spots.push(spot);
    }

    /// Two objects can never manage the same zone, within a tenant or across tenants.
    fn check_zone_uniqueness(&mut self) {
        let mut by_zone: BTreeMap<ZoneName, usize> = BTreeMap::new();
        let mut keep: Vec<ZoneEntry> = Vec::with_capacity(self.catalog.zones.len());
        let mut kept_spots: Vec<Spot> = Vec::with_capacity(keep.capacity());
        let zones = std::mem::take(&mut self.catalog.zones);
        let spots = std::mem::take(&mut self.zone_spots);
        for (z, spot) in zones.into_iter().zip(spots) {
            if let Some(&i) = by_zone.get(&z.zone) {
                let first = &keep[i];
                self.errors.push(spot.diagnostic(
                    "spec.zone",
                    format!(
                        "zone {} is already managed by DnsZone {}/{} of tenant {:?} ({}:{}); two objects can never manage the same zone",
                        z.zone,
                        first.namespace,
                        first.name,
                        first.tenant,
                        first.origin.file,
                        kept_spots[i].line_of("spec.zone").unwrap_or(1)
                    ),
                ));
                continue;
            }
            by_zone.insert(z.zone.clone(), keep.len());
            keep.push(z);
            kept_spots.push(spot);
        }
        self.catalog.zones = keep;
    }

    fn referencing(
        &mut self,
        tenant: String,
        namespace: String,
        name: String,
        resource: Resource,
        origin: Origin,
    ) {
        let scope = self.scope;
        let zone_exists = |zone_ref: &str, cat: &Catalog| {
            scope == Scope::Object
                || cat
                    .zones
                    .iter()
                    .any(|z| z.namespace == namespace && z.name == zone_ref)
        };
        match resource {
            Resource::DnsChangeRequest(cr) => {
                let before = self.errors.len();
                if !zone_exists(&cr.spec.zone_ref, &self.catalog) {
                    self.errors.push(origin.diagnostic(
                        "spec.zoneRef",
                        format!(
                            "no valid DnsZone {:?} in namespace {namespace:?}",
                            cr.spec.zone_ref
                        ),
                    ));
                }
                if let Some(d) = &cr.spec.plan_digest
                    && let Err(e) = d.parse::<crate::digest::PlanDigest>()
                {
                    self.errors.push(origin.diagnostic("spec.planDigest", e));
                }
                if let Some(snapshot) = &cr.spec.rollback_to
                    && uuid::Uuid::try_parse(snapshot).is_err()
                {
                    self.errors.push(origin.diagnostic(
                        "spec.rollbackTo",
                        format!(
                            "{snapshot:?} is not a snapshot id (a UUID, as `zentralink snapshot list ZONE` prints it)"
                        ),
                    ));
                }
                for (i, c) in cr.spec.changes.iter().enumerate() {
                    if !matches!(c.op.as_str(), "create" | "update" | "delete") {
                        self.errors.push(origin.diagnostic(
                            format!("spec.changes[{i}].op"),
                            format!(
                                "{:?} is not an operation; expected create, update or delete",
                                c.op
                            ),
                        ));
                    }
                    if let Err(e) = parse_record_type(&c.record_type) {
                        self.errors
                            .push(origin.diagnostic(format!("spec.changes[{i}].type"), e));
                    }
                }
                if self.errors.len() == before {
                    self.catalog.change_requests.push(Referencing {
                        tenant,
                        namespace,
                        name,
                        spec: cr.spec,
                        origin: origin.location(),
                    });
                }
            }
            Resource::DnsSnapshot(s) => {
                if !zone_exists(&s.spec.zone_ref, &self.catalog) {
                    self.errors.push(origin.diagnostic(
                        "spec.zoneRef",
                        format!(
                            "no valid DnsZone {:?} in namespace {namespace:?}",
                            s.spec.zone_ref
                        ),
                    ));
                    return;
                }
                self.catalog.snapshots.push(Referencing {
                    tenant,
                    namespace,
                    name,
                    spec: s.spec,
                    origin: origin.location(),
                });
            }
            Resource::Approval(a) => {
                let before = self.errors.len();
                if let Err(e) = a.spec.plan_digest.parse::<crate::digest::PlanDigest>() {
                    self.errors.push(origin.diagnostic("spec.planDigest", e));
                }
                if a.spec.approver.trim().is_empty() {
                    self.errors.push(
                        origin.diagnostic("spec.approver", "the approver's name is required"),
                    );
                }
                if !a
                    .spec
                    .signature
                    .trim_start()
                    .starts_with("-----BEGIN SSH SIGNATURE-----")
                {
                    self.errors.push(origin.diagnostic(
                        "spec.signature",
                        "an SSH signature (-----BEGIN SSH SIGNATURE-----) is required; make one with `zentralink approve`",
                    ));
                }
                if let Err(e) = crate::approval::parse_message_time(&a.spec.created_at) {
                    self.errors.push(origin.diagnostic("spec.createdAt", e));
                }
                if self.errors.len() == before {
                    self.catalog.approvals.push(Referencing {
                        tenant,
                        namespace,
                        name,
                        spec: a.spec,
                        origin: origin.location(),
                    });
                }
            }
            // Tenants, policies, connections and zones are handled before.
            Resource::Tenant(_)
            | Resource::TenantPolicy(_)
            | Resource::ProviderConnection(_)
            | Resource::DnsZone(_) => {}
        }
    }
}

/// The checks of a DnsZone that need no other object, and its desired
/// content: what [`CatalogBuilder::add`] does as the zone is read, dropping
/// the declaration as each record set is converted.
fn prepare_zone(
    namespace: String,
    name: String,
    mut spec: DnsZoneSpec,
    origin: &Origin,
) -> PreparedZone {
    let spot = origin.spot();
    let connection = std::mem::take(&mut spec.provider_ref.name);
    let mut errors = Diagnostics::default();
    let zone = match ZoneName::parse(&spec.zone) {
        Ok(z) => z,
        Err(e) => {
            return PreparedZone {
                namespace,
                name,
                content: Err(origin.diagnostic("spec.zone", e)),
                connection,
                ownership: spec.ownership,
                drift: spec.drift,
                errors,
                spot,
            };
        }
    };
    let default_ttl = spec.default_ttl.unwrap_or(DEFAULT_TTL);
    if let Some(t) = spec.default_ttl
        && let Err(e) = check_ttl(t)
    {
        errors.push(origin.diagnostic("spec.defaultTtl", e));
    }
    let mut content = ZoneContent::new(zone.clone());
    let record_sets = std::mem::take(&mut spec.record_sets);
    let mut first_index: HashMap<RrKey, usize> = HashMap::with_capacity(record_sets.len());
    // Collected, then built into the map at once: a map filled in one
    // go has full nodes, one filled a set at a time half-empty ones.
    let mut sets = Vec::with_capacity(record_sets.len());
    // Each declared set is dropped once converted, so the declaration
    // and the content are not both whole at once.
    for (i, rs) in record_sets.into_iter().enumerate() {
        let base = format!("spec.recordSets[{i}]");
        let owner = zone
            .owner(&rs.name)
            .map_err(|e| origin.diagnostic(format!("{base}.name"), e));
        let rtype = parse_record_type(&rs.record_type)
            .map_err(|e| origin.diagnostic(format!("{base}.type"), e));
        let ttl = rs.ttl.unwrap_or(default_ttl);
        if let Some(t) = rs.ttl
            && let Err(e) = check_ttl(t)
        {
            errors.push(origin.diagnostic(format!("{base}.ttl"), e));
        }
        let (owner, rtype) = match (owner, rtype) {
            (Ok(o), Ok(t)) => (o, t),
            (o, t) => {
                if let Err(e) = o {
                    errors.push(e);
                }
                if let Err(e) = t {
                    errors.push(e);
                }
                continue;
            }
        };
        if rs.values.is_empty() {
            errors.push(origin.diagnostic(
                format!("{base}.values"),
                "a record set needs at least one value; remove the record set to delete it",
            ));
            continue;
        }
        let mut values = Vec::with_capacity(rs.values.len());
        let mut seen: std::collections::HashSet<RecordValue> =
            std::collections::HashSet::with_capacity(rs.values.len());
        for (j, v) in rs.values.iter().enumerate() {
            match RecordValue::parse(rtype, v, &zone) {
                Ok(val) => {
                    if !seen.insert(val.clone()) {
                        errors.push(origin.diagnostic(
                            format!("{base}.values[{j}]"),
                            format!(
                                "value {:?} is listed twice",
                                crate::secrets::shorten(val.text(), 80)
                            ),
                        ));
                    }
                    values.push(val);
                }
                Err(e) => errors.push(origin.diagnostic(format!("{base}.values[{j}]"), e)),
            }
        }
        let key = RrKey::new(owner, rtype);
        if let Some(first) = first_index.get(&key) {
            errors.push(origin.diagnostic(
                base,
                format!(
                    "duplicate record set {} {}: already declared at spec.recordSets[{first}] (line {}); put all values of a name and type in one record set",
                    zone.relative(&key.name()),
                    type_name(rtype),
                    origin.line_of(&format!("spec.recordSets[{first}]")).unwrap_or(0)
                ),
            ));
            continue;
        }
        first_index.insert(key.clone(), i);
        sets.push((key, RecordSet::new(ttl, values)));
    }
    content.sets = sets.into_iter().collect();
    for v in content.violations() {
        let path = first_index
            .get(&v.key)
            .map(|i| format!("spec.recordSets[{i}]"))
            .unwrap_or_else(|| "spec.recordSets".into());
        errors.push(origin.diagnostic(path, v.message));
    }
    PreparedZone {
        namespace,
        name,
        content: Ok(content),
        connection,
        ownership: spec.ownership,
        drift: spec.drift,
        errors,
        spot,
    }
}

fn check_ttl(ttl: u32) -> Result<(), String> {
    if (MIN_TTL..=MAX_TTL).contains(&ttl) {
        Ok(())
    } else {
        Err(format!(
            "TTL {ttl} is out of bounds ({MIN_TTL} to {MAX_TTL} seconds)"
        ))
    }
}

/// Parses a provider URL once, as the provider will: http(s), a host, no
/// user or password (credentials come from `spec.credentials`), no query or fragment.
pub fn parse_provider_url(url: &str) -> Result<url::Url, String> {
    let shown = crate::secrets::shorten(url, 120);
    let parsed =
        url::Url::parse(url.trim()).map_err(|e| format!("{shown:?} is not a valid URL: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!("{shown:?} is not an http:// or https:// URL"));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(format!("{shown:?} has no host"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(format!(
            "{:?} carries a user name or password; put credentials in spec.credentials, never in the URL",
            format!(
                "{}://...@{}",
                parsed.scheme(),
                parsed.host_str().unwrap_or("")
            )
        ));
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(format!(
            "{shown:?} must not have a query (?...) or fragment (#...)"
        ));
    }
    Ok(parsed)
}

fn check_url(url: &str) -> Result<(), String> {
    parse_provider_url(url).map(|_| ())
}

/// Key types approvers may sign with.
const SSH_KEY_TYPES: [&str; 7] = [
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
];

/// Parses an OpenSSH public key line (`ssh-ed25519 AAAA... comment`) fully,
/// with the `ssh-key` crate: a truncated or altered key is refused here, not
/// when the first signature fails to verify.
pub fn parse_ssh_public_key(line: &str) -> Result<ssh_key::PublicKey, String> {
    let line = line.trim();
    let kind = line.split_whitespace().next().unwrap_or("");
    if line.is_empty() {
        return Err("an SSH public key is required (`ssh-ed25519 AAAA... comment`)".into());
    }
    if !SSH_KEY_TYPES.contains(&kind) {
        return Err(format!(
            "{:?} is not a supported SSH key type; use one of {}",
            crate::secrets::shorten(kind, 40),
            SSH_KEY_TYPES.join(", ")
        ));
    }
    let key = ssh_key::PublicKey::from_openssh(line).map_err(|e| {
        format!("not a valid OpenSSH {kind} public key ({e}); copy the whole line of the .pub file")
    })?;
    if key.algorithm().as_str() != kind {
        return Err(format!(
            "the line says {kind} but the key is {}",
            key.algorithm().as_str()
        ));
    }
    if let ssh_key::public::KeyData::Rsa(rsa) = key.key_data() {
        let bits = rsa.n.as_positive_bytes().map_or(0, |b| b.len() * 8);
        if bits < 2048 {
            return Err(format!(
                "an RSA key of {bits} bits is too weak to approve changes; use at least 2048 bits, or Ed25519"
            ));
        }
    }
    Ok(key)
}

/// Checks an approver key line (see [`parse_ssh_public_key`]).
pub fn check_ssh_public_key(line: &str) -> Result<(), String> {
    parse_ssh_public_key(line).map(|_| ())
}
