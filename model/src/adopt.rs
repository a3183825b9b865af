//! Adoption: a `DnsZone` manifest written from a zone's live content, so an
//! existing zone comes under management without a diff. Pure.

use hickory_proto::rr::RecordType;

use crate::catalog::DEFAULT_TTL;
use crate::record::type_name;
use crate::resources::{DnsZone, DnsZoneSpec, Ownership, ProviderRef, RecordSetSpec};
use crate::zone::ZoneContent;

/// What to put in the manifest.
#[derive(Debug, Clone)]
pub struct AdoptOptions {
    pub object_name: String,
    pub namespace: String,
    pub connection: String,
    /// Declare the apex NS set too (otherwise the provider keeps managing it).
    pub include_apex_ns: bool,
}

/// The manifest of a zone as it is. The apex SOA is never declared (its
/// serial is the provider's); the apex NS only on request. The most common
/// TTL becomes `defaultTtl` and is left out of the record sets that have it.
pub fn zone_manifest(content: &ZoneContent, opts: &AdoptOptions) -> DnsZone {
    let apex = content.origin.as_name();
    let sets: Vec<_> = content
        .sets
        .iter()
        .filter(|(k, _)| {
            !(k.has_name(apex)
                && (k.rtype == RecordType::SOA
                    || (k.rtype == RecordType::NS && !opts.include_apex_ns)))
        })
        .collect();
    let mut ttl_counts = std::collections::BTreeMap::<u32, usize>::new();
    for (_, s) in &sets {
        *ttl_counts.entry(s.ttl).or_default() += 1;
    }
    let default_ttl = ttl_counts
        .iter()
        .max_by_key(|(ttl, n)| (**n, std::cmp::Reverse(**ttl)))
        .map(|(ttl, _)| *ttl)
        .unwrap_or(DEFAULT_TTL);
    let record_sets = sets
        .into_iter()
        .map(|(k, s)| RecordSetSpec {
            name: content.origin.relative(&k.name()),
            record_type: type_name(k.rtype),
            ttl: (s.ttl != default_ttl).then_some(s.ttl),
            values: s.texts(),
        })
        .collect();
    let mut zone = DnsZone::new(
        &opts.object_name,
        DnsZoneSpec {
            zone: content.origin.to_string(),
            provider_ref: ProviderRef {
                name: opts.connection.clone(),
            },
            ownership: Some(Ownership::Full),
            drift: None,
            default_ttl: Some(default_ttl),
            record_sets,
        },
    );
    zone.metadata.namespace = Some(opts.namespace.clone());
    zone
}

/// The manifest as YAML, with `apiVersion` and `kind` first, ready to commit.
pub fn zone_manifest_yaml(zone: &DnsZone) -> Result<String, serde_yaml::Error> {
    let mut value = serde_yaml::to_value(zone)?;
    if let serde_yaml::Value::Mapping(m) = &mut value {
        m.remove("status");
    }
    serde_yaml::to_string(&value)
}
