//! The policy guards itself. A tenant's zones are reconciled under the
//! configuration in force: its Tenant, TenantPolicy and ProviderConnections
//! as last accepted. A revision that changes any of them opens a
//! configuration change request, judged by the policy in force *before* it;
//! until it is approved the old policy, approvers, allowed domains and
//! connection modes stay in force. A tenant seen for the first time is
//! accepted as declared. With `requireSignedCommits`, the commits that last
//! changed a tenant's documents must be SSH-signed by a registered key,
//! whose owner is the requester. Does I/O (the store).

use std::collections::{BTreeMap, BTreeSet};

use zentralink_model::approval::{ApprovalInput, verify_signature};
use zentralink_model::catalog::{
    Catalog, ConnectionEntry, Policy, PolicyEntry, TenantEntry, parse_ssh_public_key,
};
use zentralink_model::config::{
    ConfigChange, ConfigKind, ConfigObject, StoredConfigPlan, WEB_REVISION, config_digest, diff,
};
use zentralink_model::digest::PlanDigest;
use zentralink_model::documents::LoadedObject;
use zentralink_model::reconcile::RequestState;
use zentralink_store::approvals::{ConfigRecord, NewConfig};
use zentralink_store::audit::{Actor, AuditEvent};
use zentralink_store::changes::{ChangeRequestRecord, NewChangeRequest, RequestKind};
use zentralink_store::{StoreError, TenantId};

use crate::approvals::{ApprovalSource, facts, settle};
use crate::reconcile::{Reconciler, stored_settings};
use crate::source::{FileChange, Revision};

/// What a pass reconciles zones under.
#[derive(Debug, Clone, Default)]
pub struct Effective {
    pub tenants: BTreeMap<String, TenantEntry>,
    pub policies: BTreeMap<String, PolicyEntry>,
    pub connections: BTreeMap<(String, String), ConnectionEntry>,
    /// Zones (namespace, DnsZone name) not reconciled now, and why.
    pub refused: BTreeMap<(String, String), String>,
    /// Requesters established by signed commits, by zone.
    pub requesters: BTreeMap<(String, String), String>,
}

impl Effective {
    /// The policy in force for a tenant.
    pub fn policy_for(&self, tenant: &str) -> Policy {
        self.policies
            .get(tenant)
            .map(|p| p.policy.clone())
            .unwrap_or_default()
    }
}

/// The owner of the key that signed a commit, when it is one of the policy's approvers.
pub fn signed_by(policy: &Policy, change: &FileChange) -> Result<String, String> {
    let Some((signature, signed)) = &change.signature else {
        return Err(format!(
            "commit {} by {} is not signed; sign commits with `git -c gpg.format=ssh commit -S`",
            short(&change.commit),
            change.author
        ));
    };
    if !signature.starts_with("-----BEGIN SSH SIGNATURE-----") {
        return Err(format!(
            "commit {} by {} carries an OpenPGP signature; only SSH signatures by registered keys count",
            short(&change.commit),
            change.author
        ));
    }
    let key = verify_signature("git", signed, signature).map_err(|e| {
        format!(
            "the signature of commit {} by {} does not verify: {e}",
            short(&change.commit),
            change.author
        )
    })?;
    for approver in &policy.approvers {
        for line in &approver.public_keys {
            if let Ok(listed) = parse_ssh_public_key(line)
                && listed.key_data() == key.key_data()
            {
                return Ok(approver.name.clone());
            }
        }
    }
    Err(format!(
        "commit {} by {} is signed by a key no approver of this tenant lists",
        short(&change.commit),
        change.author
    ))
}

fn short(commit: &str) -> &str {
    commit.get(..12).unwrap_or(commit)
}

/// The configuration objects as loaded objects, for validation into entries.
fn loaded(objects: &[ConfigObject]) -> Result<Vec<LoadedObject>, String> {
    zentralink_model::config::loaded_objects(objects)
}

/// The tenant's objects as the revision declares them (connections with
/// their zone-file directories made absolute, as the store keeps them).
fn declared(revision: &Revision, tenant: &TenantEntry) -> Result<Vec<ConfigObject>, String> {
    let to_json = |v: Result<serde_json::Value, serde_json::Error>| v.map_err(|e| e.to_string());
    let mut out = vec![ConfigObject {
        kind: ConfigKind::Tenant,
        namespace: String::new(),
        name: tenant.name.clone(),
        spec: to_json(serde_json::to_value(&tenant.spec))?,
    }];
    if let Some(p) = revision.catalog.policies.get(&tenant.name) {
        out.push(ConfigObject {
            kind: ConfigKind::TenantPolicy,
            namespace: p.namespace.clone(),
            name: p.name.clone(),
            spec: to_json(serde_json::to_value(&p.spec))?,
        });
    }
    for c in revision
        .catalog
        .connections
        .values()
        .filter(|c| c.tenant == tenant.name)
    {
        out.push(ConfigObject {
            kind: ConfigKind::ProviderConnection,
            namespace: c.namespace.clone(),
            name: c.name.clone(),
            spec: stored_settings(c, revision.files_root.as_deref())?,
        });
    }
    Ok(out)
}

/// The files the declared objects of `changes` were read from.
fn changed_files(revision: &Revision, tenant: &str, changes: &[ConfigChange]) -> BTreeSet<String> {
    let mut files = BTreeSet::new();
    for c in changes {
        let file = match c.kind {
            ConfigKind::Tenant => revision
                .catalog
                .tenants
                .get(tenant)
                .map(|t| t.origin.file.to_string()),
            ConfigKind::TenantPolicy => revision
                .catalog
                .policies
                .get(tenant)
                .map(|p| p.origin.file.to_string()),
            ConfigKind::ProviderConnection => revision
                .catalog
                .connection(&c.namespace, &c.name)
                .map(|e| e.origin.file.to_string()),
        };
        files.extend(file);
    }
    files
}

impl Reconciler {
    /// The configuration every tenant of the revision is reconciled under
    /// now, after settling configuration change requests.
    pub(crate) async fn configuration(&self, revision: &Revision) -> Effective {
        let mut effective = Effective::default();
        let mut objects = Vec::new();
        let mut refused_tenants: BTreeMap<String, String> = BTreeMap::new();
        for tenant in revision.catalog.tenants.values() {
            match self.tenant_configuration(revision, tenant).await {
                Ok(in_force) => match loaded(&in_force) {
                    Ok(l) => objects.extend(l),
                    Err(e) => {
                        refused_tenants.insert(tenant.name.clone(), e);
                    }
                },
                Err(e) => {
                    tracing::warn!(tenant = %tenant.name, "configuration: {e}");
                    refused_tenants.insert(tenant.name.clone(), format!("configuration: {e}"));
                }
            }
        }
        let (catalog, errors) = Catalog::build(objects);
        if !errors.is_empty() {
            tracing::error!("the configuration in force does not validate:\n{errors}");
        }
        effective.tenants = catalog.tenants;
        effective.policies = catalog.policies;
        effective.connections = catalog.connections;
        for zone in &revision.catalog.zones {
            let key = (zone.namespace.clone(), zone.name.clone());
            let why = self.zone_allowed(revision, &effective, &refused_tenants, zone);
            match why {
                Ok(Some(requester)) => {
                    effective.requesters.insert(key, requester);
                }
                Ok(None) => {}
                Err(reason) => {
                    effective.refused.insert(key, reason);
                }
            }
        }
        effective
    }

    /// Whether a declared zone may be reconciled under the configuration in
    /// force; `Some(requester)` when signed commits name its requester.
    fn zone_allowed(
        &self,
        revision: &Revision,
        effective: &Effective,
        refused_tenants: &BTreeMap<String, String>,
        zone: &zentralink_model::catalog::ZoneEntry,
    ) -> Result<Option<String>, String> {
        if let Some(e) = refused_tenants.get(&zone.tenant) {
            return Err(e.clone());
        }
        let Some(tenant) = effective.tenants.get(&zone.tenant) else {
            return Err(format!(
                "tenant {} has no configuration in force",
                zone.tenant
            ));
        };
        if !tenant.namespaces.contains(&zone.namespace) {
            return Err(format!(
                "namespace {} is not among tenant {}'s namespaces in force; the change that adds it waits for approval",
                zone.namespace, zone.tenant
            ));
        }
        if !tenant
            .allowed_domains
            .iter()
            .any(|d| zone.zone.is_within(d))
        {
            return Err(format!(
                "{} is not under tenant {}'s allowed domains in force; the change that allows it waits for approval",
                zone.zone, zone.tenant
            ));
        }
        if !effective
            .connections
            .contains_key(&(zone.namespace.clone(), zone.connection.clone()))
        {
            return Err(format!(
                "ProviderConnection {}/{} is not in force; the change that adds it waits for approval",
                zone.namespace, zone.connection
            ));
        }
        let policy = effective.policy_for(&zone.tenant);
        if !policy.require_signed_commits || revision.requesters_authenticated() {
            return Ok(None);
        }
        let Some(change) = revision.change_of(&zone.origin.file) else {
            return Err(
                "the policy requires signed commits, and this source has no commits (use a git source)"
                    .into(),
            );
        };
        signed_by(&policy, change).map(Some).map_err(|e| {
            format!("the policy requires signed commits: {e}; nothing of this zone changes")
        })
    }

    /// Settles one tenant's configuration: bootstrap, open, keep, supersede
    /// or apply its configuration change request. Returns the objects in force.
    async fn tenant_configuration(
        &self,
        revision: &Revision,
        tenant: &TenantEntry,
    ) -> Result<Vec<ConfigObject>, String> {
        let err = |e: StoreError| e.to_string();
        let tenant_id = self
            .store()
            .ensure_tenant(&tenant.name, &tenant.display_name)
            .await
            .map_err(err)?;
        let declared = declared(revision, tenant)?;
        let stored = self.store().tenant_configs(tenant_id).await.map_err(err)?;
        let in_force: Vec<ConfigObject> = ConfigRecord::objects(&stored);
        if in_force.is_empty() {
            if !self.options().execute {
                return Ok(declared);
            }
            self.put_in_force(
                tenant_id,
                &tenant.name,
                &declared,
                "bootstrap",
                &revision.id,
            )
            .await
            .map_err(err)?;
            return Ok(declared);
        }
        let changes = diff(&in_force, &declared);
        let open = self
            .store()
            .open_config_requests(tenant_id)
            .await
            .map_err(err)?;
        // A change proposed in the web service waits for the source to
        // declare it (then it is the same request, its approvals carry
        // over) or expires; the source declaring something else does not
        // supersede it.
        let from_source = |r: &&ChangeRequestRecord| r.revision.as_deref() != Some(WEB_REVISION);
        if changes.is_empty() {
            if self.options().execute {
                for r in open.iter().filter(from_source) {
                    self.supersede(
                        tenant_id,
                        r,
                        "the declared configuration is the one in force",
                    )
                    .await
                    .map_err(err)?;
                }
            }
            return Ok(in_force);
        }
        if !self.options().execute {
            return Ok(in_force);
        }
        let policy_in_force = in_force_policy(&in_force)?;
        let digest = config_digest(&tenant.name, &changes);
        for r in open
            .iter()
            .filter(from_source)
            .filter(|r| r.plan_digest != digest.to_string())
        {
            self.supersede(tenant_id, r, "the declared configuration changed again")
                .await
                .map_err(err)?;
        }
        let namespace = request_namespace(&policy_in_force.1, tenant);
        let current = open.iter().find(|r| r.plan_digest == digest.to_string());
        let request = match current {
            Some(r) => r.clone(),
            None => {
                let recent = self.store().config_requests(tenant_id).await.map_err(err)?;
                if let Some(decided) = recent.iter().find(|r| {
                    r.plan_digest == digest.to_string()
                        && matches!(r.state.as_str(), "Rejected" | "Expired")
                }) {
                    tracing::warn!(
                        tenant = %tenant.name,
                        "configuration change {} is {}; the configuration in force stays",
                        decided.name,
                        decided.state
                    );
                    return Ok(in_force);
                }
                match self
                    .open_config_request(
                        revision,
                        tenant,
                        tenant_id,
                        &policy_in_force.0,
                        &namespace,
                        &changes,
                        digest,
                        &recent,
                    )
                    .await?
                {
                    Some(r) => r,
                    None => return Ok(in_force),
                }
            }
        };
        // Approvals for it, judged by the policy in force.
        let mut state = request.state.clone();
        if state == "Pending" {
            let mut inputs: Vec<(ApprovalInput, ApprovalSource)> = revision
                .catalog
                .approvals
                .iter()
                .filter(|a| a.namespace == namespace && a.spec.change_request == request.name)
                .map(|a| {
                    (
                        ApprovalInput::from_spec(&tenant.name, &namespace, &a.spec),
                        ApprovalSource::Revision,
                    )
                })
                .collect();
            for s in self
                .store()
                .pending_submissions(tenant_id, request.id)
                .await
                .map_err(err)?
            {
                if let Ok(doc) = serde_json::from_value::<zentralink_model::resources::Approval>(
                    s.document.clone(),
                ) {
                    inputs.push((
                        ApprovalInput::from_spec(
                            &tenant.name,
                            doc.metadata.namespace.as_deref().unwrap_or_default(),
                            &doc.spec,
                        ),
                        ApprovalSource::Submitted(s.id),
                    ));
                }
            }
            if !inputs.is_empty() {
                let facts = facts(&tenant.name, &namespace, &request)?;
                let settled = settle(
                    self.store(),
                    &self.options().actor,
                    tenant_id,
                    &request,
                    &facts,
                    &policy_in_force.0,
                    &inputs,
                    self.clock_now(),
                )
                .await
                .map_err(err)?;
                if let Some(m) = self.metrics() {
                    for result in &settled.judged {
                        m.approval_judged(&tenant.name, result);
                    }
                }
                state = settled.state.as_str().to_owned();
            }
        }
        if state != "Approved" {
            return Ok(in_force);
        }
        // Approved: the declared configuration comes into force.
        let store = self.store();
        store
            .transition_change_request(
                tenant_id,
                request.id,
                RequestState::Approved,
                RequestState::Executing,
            )
            .await
            .map_err(err)?;
        self.put_in_force(
            tenant_id,
            &tenant.name,
            &declared,
            &request.name,
            &revision.id,
        )
        .await
        .map_err(err)?;
        store
            .transition_change_request(
                tenant_id,
                request.id,
                RequestState::Executing,
                RequestState::Applied,
            )
            .await
            .map_err(err)?;
        Ok(declared)
    }

    #[allow(clippy::too_many_arguments)]
    async fn open_config_request(
        &self,
        revision: &Revision,
        tenant: &TenantEntry,
        tenant_id: TenantId,
        policy: &Policy,
        namespace: &str,
        changes: &[ConfigChange],
        digest: PlanDigest,
        recent: &[ChangeRequestRecord],
    ) -> Result<Option<ChangeRequestRecord>, String> {
        let files = changed_files(revision, &tenant.name, changes);
        let mut requesters = BTreeSet::new();
        for file in &files {
            match revision.change_of(file) {
                Some(change)
                    if policy.require_signed_commits && !revision.requesters_authenticated() =>
                {
                    match signed_by(policy, change) {
                        Ok(owner) => {
                            requesters.insert(owner);
                        }
                        Err(e) => {
                            tracing::warn!(tenant = %tenant.name, "configuration change refused: {e}");
                            self.store()
                                .audit(
                                    AuditEvent::new(
                                        Some(tenant_id),
                                        Actor::Operator(self.options().actor.clone()),
                                        "config.refused",
                                    )
                                    .target("Tenant", &tenant.name)
                                    .meta(
                                        "reason",
                                        format!("the policy requires signed commits: {e}"),
                                    )
                                    .meta("revision", revision.id.clone()),
                                )
                                .await
                                .map_err(|e| e.to_string())?;
                            return Ok(None);
                        }
                    }
                }
                Some(change) => {
                    requesters.insert(change.author.clone());
                }
                None => {
                    requesters.insert(revision.default_requester.clone());
                }
            }
        }
        let requester = requesters.into_iter().collect::<Vec<_>>().join(&format!(
            "{} ",
            zentralink_model::approval::REQUESTER_SEPARATOR
        ));
        let base = format!("config-{}-{}", tenant.name, digest.short(12));
        let taken = |n: &str| recent.iter().any(|r| r.name == n);
        let name = if taken(&base) {
            (2u32..)
                .map(|i| format!("{base}-{i}"))
                .find(|n| !taken(n))
                .unwrap_or(base)
        } else {
            base
        };
        let plan = serde_json::to_value(StoredConfigPlan {
            tenant: tenant.name.clone(),
            namespace: namespace.to_owned(),
            config: changes.to_vec(),
        })
        .map_err(|e| e.to_string())?;
        let what: BTreeSet<String> = changes
            .iter()
            .map(|c| format!("{} {} {}", c.op, c.kind.as_str(), c.name))
            .collect();
        let reason = format!(
            "configuration change ({}), judged by the policy in force",
            what.into_iter().collect::<Vec<_>>().join(", ")
        );
        let expires = self.clock_now()
            + chrono::Duration::seconds(
                i64::try_from(policy.expires_after_secs).unwrap_or(259_200),
            );
        let id = self
            .store()
            .create_change_request(
                tenant_id,
                &NewChangeRequest {
                    zone: None,
                    name: &name,
                    plan,
                    plan_digest: &digest.to_string(),
                    requester: &requester,
                    reason: Some(&reason),
                    rollback_to: None,
                    expires_at: expires,
                    kind: RequestKind::Config,
                    revision: Some(&revision.id),
                },
            )
            .await
            .map_err(|e| e.to_string())?;
        self.store()
            .audit(
                AuditEvent::new(
                    Some(tenant_id),
                    Actor::Operator(self.options().actor.clone()),
                    "change_request.opened",
                )
                .target("DnsChangeRequest", format!("{namespace}/{name}"))
                .meta("kind", "config")
                .meta("digest", digest.to_string())
                .meta("reason", reason)
                .meta("requester", requester)
                .meta("revision", revision.id.clone()),
            )
            .await
            .map_err(|e| e.to_string())?;
        tracing::info!(tenant = %tenant.name, request = %name, "configuration change waits for approval");
        self.store()
            .change_request(tenant_id, id)
            .await
            .map(Some)
            .map_err(|e| e.to_string())
    }

    async fn supersede(
        &self,
        tenant: TenantId,
        r: &ChangeRequestRecord,
        why: &str,
    ) -> Result<(), StoreError> {
        let from = r.state()?;
        if !from.may_become(RequestState::Superseded) {
            return Ok(());
        }
        self.store()
            .transition_change_request_with(tenant, r.id, from, RequestState::Superseded, Some(why))
            .await?;
        self.store()
            .audit(
                AuditEvent::new(
                    Some(tenant),
                    Actor::Operator(self.options().actor.clone()),
                    "change_request.superseded",
                )
                .target("DnsChangeRequest", &r.name)
                .meta("kind", "config")
                .meta("reason", why),
            )
            .await?;
        Ok(())
    }

    async fn put_in_force(
        &self,
        tenant_id: TenantId,
        tenant: &str,
        objects: &[ConfigObject],
        by: &str,
        revision: &str,
    ) -> Result<(), StoreError> {
        let configs: Vec<NewConfig> = objects
            .iter()
            .map(|o| NewConfig {
                kind: o.kind.as_str().to_owned(),
                namespace: o.namespace.clone(),
                name: o.name.clone(),
                spec: o.spec.clone(),
                spec_digest: o.spec_digest(),
            })
            .collect();
        let action = if by == "bootstrap" {
            "config.bootstrapped"
        } else {
            "config.applied"
        };
        let audit = AuditEvent::new(
            Some(tenant_id),
            Actor::Operator(self.options().actor.clone()),
            action,
        )
        .target("Tenant", tenant)
        .meta("acceptedBy", by)
        .meta("revision", revision)
        .meta("objects", configs.len());
        self.store()
            .accept_configs(tenant_id, &configs, by, Some(revision), &audit)
            .await?;
        tracing::info!(%tenant, by, "configuration in force");
        Ok(())
    }
}

/// The policy in force for a tenant, as the store keeps it (what approvals
/// are judged by); `None` before the tenant's first pass.
pub async fn policy_in_force(
    store: &zentralink_store::Store,
    tenant: TenantId,
) -> Result<Option<Policy>, String> {
    let stored = store
        .tenant_configs(tenant)
        .await
        .map_err(|e| e.to_string())?;
    if stored.is_empty() {
        return Ok(None);
    }
    let objects: Vec<ConfigObject> = ConfigRecord::objects(&stored);
    in_force_policy(&objects).map(|(p, _)| Some(p))
}

/// The policy in force (validated), and the TenantPolicy's namespace.
fn in_force_policy(objects: &[ConfigObject]) -> Result<(Policy, Option<String>), String> {
    zentralink_model::config::in_force_policy(objects)
}

/// Where a configuration change request lives: the namespace of the policy
/// in force, else the tenant's first namespace.
fn request_namespace(policy_namespace: &Option<String>, tenant: &TenantEntry) -> String {
    policy_namespace
        .clone()
        .or_else(|| tenant.namespaces.first().cloned())
        .unwrap_or_default()
}
