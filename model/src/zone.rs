//! A zone's content: an ordered map of record sets keyed by owner name and
//! type, and the rules a zone's content must follow. Pure.

use std::collections::BTreeMap;

use hickory_proto::rr::RecordType;

use crate::name::ZoneName;
use crate::record::{RecordSet, RrKey, type_name};

/// The full content of one zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneContent {
    pub origin: ZoneName,
    pub sets: BTreeMap<RrKey, RecordSet>,
}

/// A rule of DNS the content breaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneViolation {
    pub key: RrKey,
    pub message: String,
}

impl ZoneContent {
    pub fn new(origin: ZoneName) -> Self {
        Self {
            origin,
            sets: BTreeMap::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.sets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sets.is_empty()
    }

    pub fn get(&self, key: &RrKey) -> Option<&RecordSet> {
        self.sets.get(key)
    }

    /// Number of individual records (values) in the zone.
    pub fn record_count(&self) -> usize {
        self.sets.values().map(|s| s.values().len()).sum()
    }

    /// The zone's apex SOA set, if any.
    pub fn soa(&self) -> Option<&RecordSet> {
        self.sets
            .get(&RrKey::new(self.origin.as_name().clone(), RecordType::SOA))
    }

    /// Checks the rules that hold for any zone: no CNAME at the apex, a CNAME
    /// alone at its name with exactly one value, SOA only at the apex with one
    /// value, one ALIAS value per name.
    pub fn violations(&self) -> Vec<ZoneViolation> {
        let mut out = Vec::new();
        let apex = RrKey::new(self.origin.as_name().clone(), RecordType::SOA);
        // Keys are in name order, so the types of one name are adjacent.
        let keys: Vec<&RrKey> = self.sets.keys().collect();
        let types_at = |i: usize| -> Vec<RecordType> {
            let key = keys[i];
            let start = keys[..i]
                .iter()
                .rposition(|k| !k.same_name(key))
                .map_or(0, |p| p + 1);
            keys[start..]
                .iter()
                .take_while(|k| k.same_name(key))
                .map(|k| k.rtype)
                .collect()
        };
        for (i, (key, set)) in self.sets.iter().enumerate() {
            let at_apex = key.same_name(&apex);
            match key.rtype {
                RecordType::CNAME => {
                    if at_apex {
                        out.push(violation(
                            key,
                            format!(
                                "a CNAME cannot be at the zone apex {} (RFC 1912 2.4); use ALIAS where the provider supports it",
                                self.origin
                            ),
                        ));
                    }
                    if set.values().len() != 1 {
                        out.push(violation(
                            key,
                            "a CNAME record set must have exactly one value".into(),
                        ));
                    }
                    let others: Vec<String> = types_at(i)
                        .iter()
                        .filter(|t| {
                            !matches!(t, RecordType::CNAME | RecordType::RRSIG | RecordType::NSEC)
                        })
                        .map(|t| type_name(*t))
                        .collect();
                    if !others.is_empty() {
                        out.push(violation(
                            key,
                            format!(
                                "a CNAME cannot stand beside other data at {} (found {})",
                                key.name().to_ascii(),
                                others.join(", ")
                            ),
                        ));
                    }
                }
                RecordType::SOA => {
                    if !at_apex {
                        out.push(violation(
                            key,
                            "an SOA record is only allowed at the zone apex".into(),
                        ));
                    }
                    if set.values().len() != 1 {
                        out.push(violation(key, "a zone has exactly one SOA record".into()));
                    }
                }
                RecordType::ANAME if set.values().len() != 1 => {
                    out.push(violation(
                        key,
                        "an ALIAS record set must have exactly one value".into(),
                    ));
                }
                _ => {}
            }
        }
        out
    }
}

fn violation(key: &RrKey, message: String) -> ZoneViolation {
    ZoneViolation {
        key: key.clone(),
        message,
    }
}

/// A record set as stored in snapshots and history: absolute name, type name,
/// TTL and canonical presentation values.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StoredRecordSet {
    pub name: String,
    #[serde(rename = "type")]
    pub record_type: String,
    pub ttl: u32,
    pub values: Vec<String>,
}

impl ZoneContent {
    /// The content as a list of stored record sets, in canonical order.
    pub fn to_stored(&self) -> Vec<StoredRecordSet> {
        self.sets
            .iter()
            .map(|(k, s)| StoredRecordSet {
                name: k.name().to_ascii(),
                record_type: type_name(k.rtype),
                ttl: s.ttl,
                values: s.texts(),
            })
            .collect()
    }

    /// Rebuilds content from stored record sets, parsing every value again
    /// (as data a provider held: what is stored is what was read).
    pub fn from_stored(origin: ZoneName, stored: &[StoredRecordSet]) -> Result<Self, String> {
        let mut content = ZoneContent::new(origin);
        for (i, s) in stored.iter().enumerate() {
            let name = content
                .origin
                .owner(&s.name)
                .map_err(|e| format!("record set {i}: {e}"))?;
            let rtype = crate::record::parse_record_type(&s.record_type)
                .map_err(|e| format!("record set {i}: {e}"))?;
            let values = s
                .values
                .iter()
                .map(|v| crate::record::RecordValue::parse_existing(rtype, v, &content.origin))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("record set {i}: {e}"))?;
            content
                .sets
                .insert(RrKey::new(name, rtype), RecordSet::new(s.ttl, values));
        }
        Ok(content)
    }
}
