//! The policy guards itself: a tenant's zones are reconciled under the
//! configuration in force (its Tenant, TenantPolicy and
//! ProviderConnections), and a change to any of these is a configuration
//! change request, judged by the policy in force before it. This module says
//! what changed and computes the digest approvers sign. Pure.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::digest::PlanDigest;
use crate::plan::ChangeOp;

/// The kinds that make up a tenant's configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ConfigKind {
    Tenant,
    TenantPolicy,
    ProviderConnection,
}

impl ConfigKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ConfigKind::Tenant => "Tenant",
            ConfigKind::TenantPolicy => "TenantPolicy",
            ConfigKind::ProviderConnection => "ProviderConnection",
        }
    }

    pub fn parse(s: &str) -> Option<ConfigKind> {
        [
            ConfigKind::Tenant,
            ConfigKind::TenantPolicy,
            ConfigKind::ProviderConnection,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// One object of a configuration: its kind, place and spec (as JSON).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigObject {
    pub kind: ConfigKind,
    /// Empty for the cluster-scoped Tenant.
    pub namespace: String,
    pub name: String,
    pub spec: serde_json::Value,
}

impl ConfigObject {
    fn key(&self) -> (ConfigKind, &str, &str) {
        (self.kind, &self.namespace, &self.name)
    }

    /// `sha256:...` of the spec's canonical JSON.
    pub fn spec_digest(&self) -> String {
        format!(
            "sha256:{}",
            data_encoding::HEXLOWER.encode(&Sha256::digest(canonical_json(&self.spec)))
        )
    }
}

/// One changed object, with its spec before and after.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfigChange {
    pub kind: ConfigKind,
    pub namespace: String,
    pub name: String,
    pub op: ChangeOp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<serde_json::Value>,
}

/// A configuration change request's plan, as stored and shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredConfigPlan {
    pub tenant: String,
    /// The namespace approvals of the request are made in (and bind).
    pub namespace: String,
    pub config: Vec<ConfigChange>,
}

/// What changes from the configuration in force to the declared one, in
/// (kind, namespace, name) order.
pub fn diff(in_force: &[ConfigObject], declared: &[ConfigObject]) -> Vec<ConfigChange> {
    let before: BTreeMap<_, _> = in_force.iter().map(|o| (o.key(), o)).collect();
    let after: BTreeMap<_, _> = declared.iter().map(|o| (o.key(), o)).collect();
    let mut keys: Vec<(ConfigKind, &str, &str)> =
        before.keys().chain(after.keys()).copied().collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter_map(|key| {
            let b = before.get(&key);
            let a = after.get(&key);
            let op = match (b, a) {
                (None, Some(_)) => ChangeOp::Create,
                (Some(_), None) => ChangeOp::Delete,
                (Some(b), Some(a)) if canonical_json(&b.spec) != canonical_json(&a.spec) => {
                    ChangeOp::Update
                }
                _ => return None,
            };
            Some(ConfigChange {
                kind: key.0,
                namespace: key.1.to_owned(),
                name: key.2.to_owned(),
                op,
                before: b.map(|o| o.spec.clone()),
                after: a.map(|o| o.spec.clone()),
            })
        })
        .collect()
}

/// The digest approvers sign for a configuration change: SHA-256 over
/// `"zentralink-config-digest-v1" 0x00 str(tenant) u32(n)` then per change
/// `str(kind) str(namespace) str(name) u8(op: 1 create, 2 update, 3 delete)
/// str(before) str(after)`, each
/// spec as canonical JSON (object keys sorted, no spaces; empty when absent),
/// every `str` a big-endian u32 length and the bytes.
pub fn config_digest(tenant: &str, changes: &[ConfigChange]) -> PlanDigest {
    fn put(buf: &mut Vec<u8>, b: &[u8]) {
        buf.extend_from_slice(&u32::try_from(b.len()).unwrap_or(u32::MAX).to_be_bytes());
        buf.extend_from_slice(b);
    }
    let mut buf = b"zentralink-config-digest-v1\0".to_vec();
    put(&mut buf, tenant.as_bytes());
    buf.extend_from_slice(
        &u32::try_from(changes.len())
            .unwrap_or(u32::MAX)
            .to_be_bytes(),
    );
    for c in changes {
        put(&mut buf, c.kind.as_str().as_bytes());
        put(&mut buf, c.namespace.as_bytes());
        put(&mut buf, c.name.as_bytes());
        buf.push(match c.op {
            ChangeOp::Create => 1,
            ChangeOp::Update => 2,
            ChangeOp::Delete => 3,
        });
        put(
            &mut buf,
            &c.before.as_ref().map(canonical_json).unwrap_or_default(),
        );
        put(
            &mut buf,
            &c.after.as_ref().map(canonical_json).unwrap_or_default(),
        );
    }
    PlanDigest(Sha256::digest(&buf).into())
}

/// JSON with every object's keys sorted and no insignificant white space,
/// whatever order the value's maps keep.
pub fn canonical_json(value: &serde_json::Value) -> Vec<u8> {
    fn write(v: &serde_json::Value, out: &mut Vec<u8>) {
        match v {
            serde_json::Value::Object(map) => {
                let sorted: BTreeMap<&String, &serde_json::Value> = map.iter().collect();
                out.push(b'{');
                for (i, (k, v)) in sorted.into_iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    out.extend(serde_json::to_vec(k).unwrap_or_default());
                    out.push(b':');
                    write(v, out);
                }
                out.push(b'}');
            }
            serde_json::Value::Array(items) => {
                out.push(b'[');
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    write(v, out);
                }
                out.push(b']');
            }
            other => out.extend(serde_json::to_vec(other).unwrap_or_default()),
        }
    }
    let mut out = Vec::new();
    write(value, &mut out);
    out
}

// ---------------------------------------------------------------- edits made by people

/// The revision recorded on a configuration change request proposed in the
/// web service rather than read from a source. Such a request is put in
/// force when the source declares the same change (the same digest, so its
/// approvals carry over); until then, or until it expires, the operator
/// neither executes nor supersedes it.
pub const WEB_REVISION: &str = "web";

/// A TenantPolicy edited by a person (in the web service), as the
/// configuration change request it becomes: judged, like a commit, by the
/// policy in force before it.
#[derive(Debug, Clone)]
pub struct PolicyEdit {
    /// What changes, against the configuration in force (empty: nothing).
    pub changes: Vec<ConfigChange>,
    /// The digest approvers sign.
    pub digest: PlanDigest,
    /// The request's plan, as stored.
    pub plan: StoredConfigPlan,
    /// The policy in force, which judges the request.
    pub policy_in_force: crate::catalog::Policy,
}

/// Reads an edited TenantPolicy document (`file`, one YAML document) for
/// `tenant` against the configuration in force, validates it as a source's
/// documents are validated (errors name the line and the field path), and
/// says what would change. The namespace approvals are made in is that of
/// the policy in force, else the tenant's first namespace.
pub fn propose_policy_edit(
    tenant: &str,
    in_force: &[ConfigObject],
    file: &std::sync::Arc<crate::documents::SourceFile>,
) -> Result<PolicyEdit, crate::diagnostics::Diagnostics> {
    use crate::catalog::Catalog;
    use crate::diagnostics::{Diagnostic, Diagnostics};
    use crate::documents::{Resource, parse_documents};
    let one = |d: Diagnostic| Diagnostics(vec![d]);
    let file_name = file.name.to_string();
    let (mut objects, errors) = parse_documents(file);
    if !errors.is_empty() {
        return Err(errors);
    }
    if objects.len() != 1 {
        return Err(one(Diagnostic::file(
            file_name,
            format!(
                "expected exactly one TenantPolicy document, found {}",
                objects.len()
            ),
        )));
    }
    let edited = objects.remove(0);
    let Resource::TenantPolicy(policy) = &edited.resource else {
        return Err(one(edited.origin.diagnostic(
            "kind",
            format!(
                "this page edits the TenantPolicy; found a {}",
                edited.resource.kind().as_str()
            ),
        )));
    };
    let in_force_error =
        |e: String| one(Diagnostic::file("(configuration in force)", e.to_string()));
    let (current, errors) = Catalog::build(loaded_objects(in_force).map_err(in_force_error)?);
    if !errors.is_empty() {
        return Err(errors);
    }
    let Some(tenant_entry) = current.tenants.get(tenant) else {
        return Err(in_force_error(format!(
            "tenant {tenant:?} has no configuration in force yet; the operator puts the first one in force from the source"
        )));
    };
    let namespace = edited.resource.namespace().unwrap_or_default().to_owned();
    if !tenant_entry.namespaces.contains(&namespace) {
        return Err(one(edited.origin.diagnostic(
            "metadata.namespace",
            format!(
                "namespace {namespace:?} is not one of tenant {tenant:?}'s namespaces in force ({}); use one of them",
                tenant_entry.namespaces.join(", ")
            ),
        )));
    }
    let current_policy = current.policies.get(tenant);
    let request_namespace = current_policy
        .map(|p| p.namespace.clone())
        .or_else(|| tenant_entry.namespaces.first().cloned())
        .unwrap_or_default();
    let policy_in_force = current.policy_for(tenant);
    let name = edited.resource.name().to_owned();
    // The spec as in force when it means the same (so resubmitting the
    // policy in force changes nothing), else as the edit declares it.
    let same_in_force = in_force.iter().find(|o| {
        o.kind == ConfigKind::TenantPolicy
            && o.namespace == namespace
            && o.name == name
            && serde_json::from_value::<crate::resources::TenantPolicySpec>(o.spec.clone())
                .is_ok_and(|s| s == policy.spec)
    });
    let spec = match same_in_force {
        Some(o) => o.spec.clone(),
        None => serde_json::to_value(&policy.spec).map_err(|e| {
            one(edited
                .origin
                .diagnostic("spec", format!("the spec does not serialize: {e}")))
        })?,
    };
    let mut declared: Vec<ConfigObject> = in_force
        .iter()
        .filter(|o| o.kind != ConfigKind::TenantPolicy)
        .cloned()
        .collect();
    let mut candidate = loaded_objects(&declared).map_err(in_force_error)?;
    candidate.push(edited);
    let (_, errors) = Catalog::build(candidate);
    if !errors.is_empty() {
        return Err(errors);
    }
    declared.push(ConfigObject {
        kind: ConfigKind::TenantPolicy,
        namespace,
        name,
        spec,
    });
    let changes = diff(in_force, &declared);
    let digest = config_digest(tenant, &changes);
    Ok(PolicyEdit {
        plan: StoredConfigPlan {
            tenant: tenant.to_owned(),
            namespace: request_namespace,
            config: changes.clone(),
        },
        changes,
        digest,
        policy_in_force,
    })
}

/// The configuration objects as loaded objects, for validation into
/// catalog entries (each named `(in force) KIND NAMESPACE/NAME`).
pub fn loaded_objects(
    objects: &[ConfigObject],
) -> Result<Vec<crate::documents::LoadedObject>, String> {
    use crate::documents::{LoadedObject, Origin, Resource, SourceFile};
    use crate::resources::{
        ProviderConnection, ProviderConnectionSpec, Tenant, TenantPolicy, TenantPolicySpec,
        TenantSpec,
    };
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    let meta = |name: &str, namespace: Option<&str>| ObjectMeta {
        name: Some(name.to_owned()),
        namespace: namespace.map(str::to_owned),
        ..Default::default()
    };
    let mut out = Vec::new();
    for o in objects {
        let what = format!("{} {}/{}", o.kind.as_str(), o.namespace, o.name);
        let bad = |e: serde_json::Error| format!("{what} in force does not read: {e}");
        let resource = match o.kind {
            ConfigKind::Tenant => Resource::Tenant(Tenant {
                metadata: meta(&o.name, None),
                spec: serde_json::from_value::<TenantSpec>(o.spec.clone()).map_err(bad)?,
                status: None,
            }),
            ConfigKind::TenantPolicy => Resource::TenantPolicy(TenantPolicy {
                metadata: meta(&o.name, Some(&o.namespace)),
                spec: serde_json::from_value::<TenantPolicySpec>(o.spec.clone()).map_err(bad)?,
                status: None,
            }),
            ConfigKind::ProviderConnection => Resource::ProviderConnection(ProviderConnection {
                metadata: meta(&o.name, Some(&o.namespace)),
                spec: serde_json::from_value::<ProviderConnectionSpec>(o.spec.clone())
                    .map_err(bad)?,
                status: None,
            }),
        };
        out.push(LoadedObject {
            resource,
            origin: Origin {
                file: SourceFile::new(format!("(in force) {what}"), ""),
                document: 0,
            },
        });
    }
    Ok(out)
}

/// The policy of a configuration in force (validated; the secure default
/// when it has no TenantPolicy), and the TenantPolicy's namespace.
pub fn in_force_policy(
    objects: &[ConfigObject],
) -> Result<(crate::catalog::Policy, Option<String>), String> {
    let (catalog, errors) = crate::catalog::Catalog::build(loaded_objects(objects)?);
    if !errors.is_empty() {
        return Err(format!(
            "the configuration in force does not validate: {errors}"
        ));
    }
    let entry = catalog.policies.values().next();
    Ok((
        entry.map(|p| p.policy.clone()).unwrap_or_default(),
        entry.map(|p| p.namespace.clone()),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(kind: ConfigKind, name: &str, spec: serde_json::Value) -> ConfigObject {
        ConfigObject {
            kind,
            namespace: if kind == ConfigKind::Tenant {
                String::new()
            } else {
                "acme".into()
            },
            name: name.into(),
            spec,
        }
    }

    #[test]
    fn the_diff_names_created_updated_and_deleted_objects() {
        let old = [
            obj(
                ConfigKind::TenantPolicy,
                "policy",
                serde_json::json!({"approvals": {"minApprovals": 2}}),
            ),
            obj(
                ConfigKind::ProviderConnection,
                "old",
                serde_json::json!({"type": "zonefile"}),
            ),
        ];
        let new = [
            obj(
                ConfigKind::TenantPolicy,
                "policy",
                serde_json::json!({"approvals": {"minApprovals": 1}}),
            ),
            obj(
                ConfigKind::ProviderConnection,
                "new",
                serde_json::json!({"type": "zonefile"}),
            ),
        ];
        let changes = diff(&old, &new);
        let ops: Vec<(&str, ChangeOp)> = changes.iter().map(|c| (c.name.as_str(), c.op)).collect();
        assert_eq!(
            ops,
            vec![
                ("policy", ChangeOp::Update),
                ("new", ChangeOp::Create),
                ("old", ChangeOp::Delete)
            ]
        );
        assert!(diff(&old, &old).is_empty());
    }

    #[test]
    fn the_digest_binds_every_change_and_ignores_key_order() {
        let a = serde_json::json!({"a": 1, "b": {"c": [1, 2], "d": null}});
        let b: serde_json::Value =
            serde_json::from_str(r#"{"b": {"d": null, "c": [1, 2]}, "a": 1}"#).unwrap_or_default();
        assert_eq!(canonical_json(&a), canonical_json(&b));
        assert_eq!(
            canonical_json(&a),
            br#"{"a":1,"b":{"c":[1,2],"d":null}}"#.to_vec()
        );
        let change = |min: u32| ConfigChange {
            kind: ConfigKind::TenantPolicy,
            namespace: "acme".into(),
            name: "policy".into(),
            op: ChangeOp::Update,
            before: Some(serde_json::json!({"minApprovals": 2})),
            after: Some(serde_json::json!({"minApprovals": min})),
        };
        assert_eq!(
            config_digest("acme", &[change(1)]),
            config_digest("acme", &[change(1)])
        );
        assert_ne!(
            config_digest("acme", &[change(1)]),
            config_digest("acme", &[change(0)])
        );
        assert_ne!(
            config_digest("acme", &[change(1)]),
            config_digest("globex", &[change(1)])
        );
    }
}
