//! The cluster's objects as the revision one DnsZone is reconciled in: its
//! tenant's Tenant, TenantPolicy and ProviderConnections (all of them, so
//! the policy's guard sees the tenant's whole configuration), the zone
//! itself, and the Approvals, rollback DnsChangeRequests and DnsSnapshots of
//! its namespace, validated by the same catalog code as a git revision.
//! Requesters come from what the admission webhook stamped. Pure.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::ResourceExt;
use zentralink_model::catalog::Catalog;
use zentralink_model::documents::{LoadedObject, Origin, Resource, SourceFile};
use zentralink_model::resources::{
    Approval, DnsChangeRequest, DnsSnapshot, DnsZone, ProviderConnection, Tenant, TenantPolicy,
};

use super::{MANAGED_BY, MANAGED_BY_LABEL, REQUESTER_ANNOTATION};
use crate::source::{FileChange, KUBERNETES_REVISION_PREFIX, Revision};

/// Who asked, when the webhook stamped no one (objects made before it ran).
pub const UNKNOWN_REQUESTER: &str = "unknown (kubernetes)";

/// What the reflectors hold, for the kinds a zone's revision draws on.
#[derive(Debug, Clone, Default)]
pub struct ClusterObjects {
    pub tenants: Vec<Arc<Tenant>>,
    pub policies: Vec<Arc<TenantPolicy>>,
    pub connections: Vec<Arc<ProviderConnection>>,
    pub change_requests: Vec<Arc<DnsChangeRequest>>,
    pub approvals: Vec<Arc<Approval>>,
    pub snapshots: Vec<Arc<DnsSnapshot>>,
}

/// Why a zone cannot be reconciled from the cluster's objects: a user
/// error, shown in the zone's conditions, not retried until something changes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScopeError {
    #[error("namespace {namespace} belongs to no Tenant: list it in a Tenant's spec.namespaces")]
    NoTenant { namespace: String },
    #[error("the tenant's objects do not validate: {0}")]
    Invalid(String),
}

impl ScopeError {
    /// The condition reason.
    pub fn reason(&self) -> &'static str {
        match self {
            ScopeError::NoTenant { .. } => "NoTenant",
            ScopeError::Invalid(_) => "Invalid",
        }
    }
}

/// The revision `zone` is reconciled in. A zone being deleted declares no
/// record sets: its records go through a plan like any other (gated as the
/// policy says) before its finalizer is removed. Relative zone-file
/// directories resolve under `zonefile_root`.
pub fn zone_revision(
    objects: &ClusterObjects,
    zone: &DnsZone,
    zonefile_root: &Path,
) -> Result<Revision, ScopeError> {
    let namespace = zone.namespace().unwrap_or_default();
    let name = zone.name_any();
    let tenants: Vec<&Arc<Tenant>> = objects
        .tenants
        .iter()
        .filter(|t| t.spec.namespaces.iter().any(|n| n == &namespace))
        .collect();
    if tenants.is_empty() {
        return Err(ScopeError::NoTenant { namespace });
    }
    let in_tenant = |ns: Option<String>| {
        ns.is_some_and(|ns| {
            tenants
                .iter()
                .any(|t| t.spec.namespaces.iter().any(|n| n == &ns))
        })
    };
    let mut loaded = Vec::new();
    let mut changes = BTreeMap::new();
    let mut add = |resource: Resource, meta: &ObjectMeta, requester: Option<&str>| {
        let origin = origin_name(&resource);
        let requester = requester
            .map(str::to_owned)
            .or_else(|| stamped(meta))
            .unwrap_or_else(|| UNKNOWN_REQUESTER.to_owned());
        changes.insert(
            origin.clone(),
            FileChange {
                author: requester,
                commit: String::new(),
                signature: None,
            },
        );
        loaded.push(LoadedObject {
            resource,
            origin: Origin {
                file: SourceFile::new(origin, ""),
                document: 0,
            },
        });
    };
    for t in &tenants {
        add(Resource::Tenant(clean(t.as_ref())), &t.metadata, None);
    }
    for p in objects.policies.iter().filter(|p| in_tenant(p.namespace())) {
        add(Resource::TenantPolicy(clean(p.as_ref())), &p.metadata, None);
    }
    for c in objects
        .connections
        .iter()
        .filter(|c| in_tenant(c.namespace()))
    {
        let mut c = clean(c.as_ref());
        if let Some(z) = c.spec.zonefile.as_mut()
            && Path::new(&z.directory).is_relative()
        {
            z.directory = zonefile_root.join(&z.directory).display().to_string();
        }
        let meta = c.metadata.clone();
        add(Resource::ProviderConnection(c), &meta, None);
    }
    let mut declared = clean(zone);
    if zone.metadata.deletion_timestamp.is_some() {
        declared.spec.record_sets.clear();
    }
    let requester = stamped(&zone.metadata).unwrap_or_else(|| UNKNOWN_REQUESTER.to_owned());
    add(
        Resource::DnsZone(declared),
        &zone.metadata,
        Some(&requester),
    );
    let here = |ns: Option<String>| ns.as_deref() == Some(namespace.as_str());
    for a in objects.approvals.iter().filter(|a| here(a.namespace())) {
        add(Resource::Approval(clean(a.as_ref())), &a.metadata, None);
    }
    for c in objects.change_requests.iter().filter(|c| {
        here(c.namespace())
            && c.spec.zone_ref == name
            && c.spec.rollback_to.is_some()
            && !made_by_operator(&c.metadata)
    }) {
        let asked_by = c.spec.requester.clone();
        add(
            Resource::DnsChangeRequest(clean(c.as_ref())),
            &c.metadata,
            asked_by.as_deref(),
        );
    }
    for s in objects
        .snapshots
        .iter()
        .filter(|s| here(s.namespace()) && s.spec.zone_ref == name)
    {
        add(Resource::DnsSnapshot(clean(s.as_ref())), &s.metadata, None);
    }
    let (catalog, diagnostics) = Catalog::build(loaded);
    if !diagnostics.is_empty() {
        return Err(ScopeError::Invalid(diagnostics.to_string()));
    }
    let mut requesters = BTreeMap::new();
    requesters.insert((namespace.clone(), name.clone()), requester);
    Ok(Revision {
        id: revision_id(zone),
        catalog: Arc::new(catalog),
        requesters,
        default_requester: UNKNOWN_REQUESTER.to_owned(),
        files_root: None,
        changes,
    })
}

/// `kubernetes:<namespace>/<name>@<generation>`: what history and status
/// name as the revision a change came from.
pub fn revision_id(zone: &DnsZone) -> String {
    format!(
        "{KUBERNETES_REVISION_PREFIX}{}/{}@{}",
        zone.namespace().unwrap_or_default(),
        zone.name_any(),
        zone.metadata.generation.unwrap_or(0)
    )
}

/// Whether the operator made the object (a mirrored change request).
pub fn made_by_operator(meta: &ObjectMeta) -> bool {
    meta.labels
        .as_ref()
        .and_then(|l| l.get(MANAGED_BY_LABEL))
        .is_some_and(|v| v == MANAGED_BY)
}

/// The requester the admission webhook stamped.
pub fn stamped(meta: &ObjectMeta) -> Option<String> {
    meta.annotations
        .as_ref()
        .and_then(|a| a.get(REQUESTER_ANNOTATION))
        .filter(|v| !v.trim().is_empty())
        .cloned()
}

/// How an object is named in messages: `DnsZone acme/acme-example`.
fn origin_name(resource: &Resource) -> String {
    match resource.namespace() {
        Some(ns) => format!("{} {ns}/{}", resource.kind(), resource.name()),
        None => format!("{} {}", resource.kind(), resource.name()),
    }
}

/// The object as declared: without status and server-managed metadata,
/// which validation refuses in manifests.
fn clean<K>(object: &K) -> K
where
    K: kube::Resource + Clone + StatusLess,
{
    let mut k = object.clone();
    let meta = k.meta_mut();
    meta.managed_fields = None;
    meta.resource_version = None;
    meta.uid = None;
    meta.creation_timestamp = None;
    meta.deletion_timestamp = None;
    meta.deletion_grace_period_seconds = None;
    meta.generation = None;
    meta.owner_references = None;
    meta.finalizers = None;
    k.drop_status();
    k
}

/// Kinds whose status the catalog must not see.
pub trait StatusLess {
    fn drop_status(&mut self);
}

macro_rules! status_less {
    ($($kind:ty),*) => {
        $(impl StatusLess for $kind {
            fn drop_status(&mut self) {
                self.status = None;
            }
        })*
    };
}

status_less!(
    Tenant,
    TenantPolicy,
    ProviderConnection,
    DnsZone,
    DnsChangeRequest,
    Approval,
    DnsSnapshot
);

#[cfg(test)]
mod tests;
