//! The fast path of `parse_documents`: one pass over each document's
//! events, `spec` deserialized straight into its type by the `kind` read
//! before it. Gives up (`None`) on anything not plainly valid, and the
//! careful path reads the file again. Pure.

use std::fmt;
use std::sync::Arc;

use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_yaml::Value;

use super::events::Events;
use super::{
    API_VERSION, Approval, DnsChangeRequest, DnsSnapshot, DnsZone, Kind, LoadedObject, METADATA,
    Origin, ProviderConnection, Resource, SourceFile, Tenant, TenantPolicy,
};
use crate::resources::{
    ApprovalSpec, DnsChangeRequestSpec, DnsSnapshotSpec, DnsZoneSpec, ProviderConnectionSpec,
    TenantPolicySpec, TenantSpec,
};

enum Spec {
    Tenant(TenantSpec),
    TenantPolicy(TenantPolicySpec),
    ProviderConnection(ProviderConnectionSpec),
    DnsZone(DnsZoneSpec),
    DnsChangeRequest(DnsChangeRequestSpec),
    Approval(ApprovalSpec),
    DnsSnapshot(DnsSnapshotSpec),
}

// One per document, moved straight into a Resource: boxing would only add an allocation.
#[allow(clippy::large_enum_variant)]
enum Doc {
    Empty,
    Object {
        kind: Kind,
        metadata: Value,
        spec: Spec,
    },
}

struct SpecSeed(Kind);

impl<'de> de::DeserializeSeed<'de> for SpecSeed {
    type Value = Spec;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Spec, D::Error> {
        Ok(match self.0 {
            Kind::Tenant => Spec::Tenant(TenantSpec::deserialize(d)?),
            Kind::TenantPolicy => Spec::TenantPolicy(TenantPolicySpec::deserialize(d)?),
            Kind::ProviderConnection => {
                Spec::ProviderConnection(ProviderConnectionSpec::deserialize(d)?)
            }
            Kind::DnsZone => Spec::DnsZone(DnsZoneSpec::deserialize(d)?),
            Kind::DnsChangeRequest => Spec::DnsChangeRequest(DnsChangeRequestSpec::deserialize(d)?),
            Kind::Approval => Spec::Approval(ApprovalSpec::deserialize(d)?),
            Kind::DnsSnapshot => Spec::DnsSnapshot(DnsSnapshotSpec::deserialize(d)?),
        })
    }
}

struct DocVisitor;

impl<'de> Visitor<'de> for DocVisitor {
    type Value = Doc;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a ZentraLink resource")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Doc, E> {
        Ok(Doc::Empty)
    }

    fn visit_none<E: de::Error>(self) -> Result<Doc, E> {
        Ok(Doc::Empty)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Doc, A::Error> {
        let mut api_version = false;
        let mut kind = None;
        let mut metadata = None;
        let mut spec = None;
        let mut seen: Vec<String> = Vec::with_capacity(4);
        while let Some(key) = map.next_key::<String>()? {
            // a duplicate key is refused by the careful path, with its line
            if seen.contains(&key) {
                return Err(de::Error::custom("duplicate key"));
            }
            seen.push(key.clone());
            match key.as_str() {
                "apiVersion" => api_version = map.next_value::<String>()? == API_VERSION,
                "kind" => kind = Kind::parse(&map.next_value::<String>()?),
                "metadata" => metadata = Some(map.next_value::<Value>()?),
                "spec" => match kind {
                    Some(k) => spec = Some(map.next_value_seed(SpecSeed(k))?),
                    // kind after spec: leave it to the careful path
                    None => return Err(de::Error::custom("kind after spec")),
                },
                _ => {
                    map.next_value::<IgnoredAny>()?;
                    return Err(de::Error::custom("unknown field"));
                }
            }
        }
        match (api_version, kind, metadata, spec) {
            (true, Some(kind), Some(metadata), Some(spec)) => Ok(Doc::Object {
                kind,
                metadata,
                spec,
            }),
            _ => Err(de::Error::custom("incomplete document")),
        }
    }
}

impl<'de> Deserialize<'de> for Doc {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Doc, D::Error> {
        d.deserialize_any(DocVisitor)
    }
}

/// False for text that yaml-rust2 may read where libyaml (the careful
/// path's parser) refuses it or reads it otherwise: tabs; a colon right
/// before a flow collection (`values:[a]`); a line that starts with a colon
/// (a flow key whose colon is on the next line); a document end marker
/// (`...`); the Unicode line breaks of YAML 1.1. Such files take the careful path, whose verdict stands.
fn parsers_agree_on(text: &str) -> bool {
    let bytes = text.as_bytes();
    let mut line_start = true;
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'\t' => return false,
            // NEL, LINE SEPARATOR, PARAGRAPH SEPARATOR and a byte-order
            // mark inside the text: line breaks or ignored for libyaml (YAML
            // 1.1), ordinary characters for yaml-rust2 (YAML 1.2).
            0xc2 if bytes.get(i + 1) == Some(&0x85) => return false,
            0xe2 if bytes.get(i + 1) == Some(&0x80)
                && matches!(bytes.get(i + 2), Some(0xa8 | 0xa9)) =>
            {
                return false;
            }
            0xef if bytes.get(i + 1..i + 3) == Some(&[0xbb, 0xbf]) => return false,
            b':' if line_start || matches!(bytes.get(i + 1), Some(b'[' | b'{')) => return false,
            // A document end marker, after which yaml-rust2 takes a bare document.
            b'.' if line_start && bytes[i..].starts_with(b"...") => return false,
            b'\n' | b'\r' => line_start = true,
            b' ' => {}
            _ => line_start = false,
        }
    }
    true
}

/// `None` when any document is not plainly valid.
pub(super) fn parse(file: &Arc<SourceFile>) -> Option<Vec<LoadedObject>> {
    if !parsers_agree_on(file.text()) {
        return None;
    }
    let mut events = Events::new(file.text());
    let mut objects = Vec::new();
    let mut document = 0;
    while events.next_document().ok()? {
        let doc = Doc::deserialize(&mut events).ok()?;
        events.end_document().ok()?;
        document += 1;
        let Doc::Object {
            kind,
            metadata,
            spec,
        } = doc
        else {
            continue;
        };
        let origin = Origin {
            file: Arc::clone(file),
            document: document - 1,
        };
        let Value::Mapping(m) = &metadata else {
            return None;
        };
        if m.keys()
            .any(|k| !k.as_str().is_some_and(|k| METADATA.contains(&k)))
        {
            return None;
        }
        super::check_metadata(Some(&metadata), kind, &origin).ok()?;
        let meta = serde_yaml::from_value(metadata).ok()?;
        let resource = match spec {
            Spec::Tenant(spec) => Resource::Tenant(Tenant {
                metadata: meta,
                spec,
                status: None,
            }),
            Spec::TenantPolicy(spec) => Resource::TenantPolicy(TenantPolicy {
                metadata: meta,
                spec,
                status: None,
            }),
            Spec::ProviderConnection(spec) => Resource::ProviderConnection(ProviderConnection {
                metadata: meta,
                spec,
                status: None,
            }),
            Spec::DnsZone(spec) => Resource::DnsZone(DnsZone {
                metadata: meta,
                spec,
                status: None,
            }),
            Spec::DnsChangeRequest(spec) => Resource::DnsChangeRequest(DnsChangeRequest {
                metadata: meta,
                spec,
                status: None,
            }),
            Spec::Approval(spec) => Resource::Approval(Approval {
                metadata: meta,
                spec,
                status: None,
            }),
            Spec::DnsSnapshot(spec) => Resource::DnsSnapshot(DnsSnapshot {
                metadata: meta,
                spec,
                status: None,
            }),
        };
        objects.push(LoadedObject { resource, origin });
    }
    Some(objects)
}
