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
