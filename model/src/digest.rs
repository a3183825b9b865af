//! The plan digest and the zone (snapshot) digest: SHA-256 over a canonical,
//! documented byte encoding (see docs/plan-digest.md). Pure.
//!
//! Plan digest encoding, every integer big-endian:
//!
//! ```text
//! "zentralink-plan-digest-v1" 0x00
//! str(tenant) str(zone) u32(number of changes)
//! for each change, in plan order:
//!     u8(op: 1 create, 2 update, 3 delete) str(owner name) u16(type code)
//!     set(before) set(after)
//! str(s)   = u32(byte length) bytes          -- names are absolute, lower-case ASCII
//! set(none)= 0x00
//! set(some)= 0x01 u32(ttl) u32(number of values) { u32(length) canonical-wire-bytes }...
//! ```
//!
//! Values are in canonical order (sorted by their canonical wire bytes), so the
//! digest does not depend on the order values were written in.

use std::fmt;
use std::str::FromStr;

use sha2::{Digest, Sha256};

use crate::plan::{ChangeOp, Plan};
use crate::record::RecordSet;
use crate::zone::ZoneContent;

/// A SHA-256 digest, shown as `sha256:<64 hex digits>`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PlanDigest(pub [u8; 32]);

impl PlanDigest {
    pub fn hex(&self) -> String {
        data_encoding::HEXLOWER.encode(&self.0)
    }

    /// The first `n` hex digits, used in change request names.
    pub fn short(&self, n: usize) -> String {
        let hex = self.hex();
        hex.get(..n.min(hex.len())).unwrap_or(&hex).to_owned()
    }
}

impl fmt::Display for PlanDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex())
    }
}

impl fmt::Debug for PlanDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PlanDigest({self})")
    }
}

impl FromStr for PlanDigest {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let hex = s
            .strip_prefix("sha256:")
            .ok_or_else(|| format!("{s:?} is not a digest (expected sha256:<64 hex digits>)"))?;
        let bytes = data_encoding::HEXLOWER_PERMISSIVE
            .decode(hex.as_bytes())
            .map_err(|_| format!("{s:?} is not a digest (expected sha256:<64 hex digits>)"))?;
        let arr: [u8; 32] = bytes
            .try_into()
            .map_err(|_| format!("{s:?} is not a digest (expected 64 hex digits)"))?;
        Ok(Self(arr))
    }
}

struct Encoder(Sha256);

impl Encoder {
    fn new(domain: &str) -> Self {
        let mut h = Sha256::new();
        h.update(domain.as_bytes());
        h.update([0u8]);
        Self(h)
    }
    fn u8(&mut self, v: u8) {
        self.0.update([v]);
    }
    fn u16(&mut self, v: u16) {
        self.0.update(v.to_be_bytes());
    }
    fn u32(&mut self, v: u32) {
        self.0.update(v.to_be_bytes());
    }
    fn len(&mut self, n: usize) {
        self.u32(u32::try_from(n).unwrap_or(u32::MAX));
    }
    fn bytes(&mut self, b: &[u8]) {
        self.len(b.len());
        self.0.update(b);
    }
    fn set(&mut self, set: Option<&RecordSet>) {
        match set {
            None => self.u8(0),
            Some(s) => {
                self.u8(1);
                self.u32(s.ttl);
                self.len(s.values().len());
                for v in s.values() {
                    self.bytes(v.wire());
                }
            }
        }
    }
    fn finish(self) -> PlanDigest {
        PlanDigest(self.0.finalize().into())
    }
}

/// The digest an approval signs: binds the tenant, the zone and every
/// operation with its before- and after-values.
pub fn plan_digest(tenant: &str, plan: &Plan) -> PlanDigest {
    let mut e = Encoder::new("zentralink-plan-digest-v1");
    e.bytes(tenant.as_bytes());
    e.bytes(plan.zone.to_string().as_bytes());
    e.len(plan.changes.len());
    let mut name = String::new();
    for c in &plan.changes {
        e.u8(match c.op {
            ChangeOp::Create => 1,
            ChangeOp::Update => 2,
            ChangeOp::Delete => 3,
        });
        name.clear();
        c.key.write_ascii(&mut name);
        e.bytes(name.as_bytes());
        e.u16(u16::from(c.key.rtype));
        e.set(c.before.as_ref());
        e.set(c.after.as_ref());
    }
    e.finish()
}

/// The digest of a zone's full content, as recorded with a snapshot.
pub fn zone_digest(zone: &ZoneContent) -> PlanDigest {
    let mut e = Encoder::new("zentralink-zone-digest-v1");
    e.bytes(zone.origin.to_string().as_bytes());
    e.len(zone.sets.len());
    let mut name = String::new();
    for (key, set) in &zone.sets {
        name.clear();
        key.write_ascii(&mut name);
        e.bytes(name.as_bytes());
        e.u16(u16::from(key.rtype));
        e.set(Some(set));
    }
    e.finish()
}

/// Deterministic name of the change request for a plan: `<object>-<12 hex digits>`.
pub fn change_request_name(zone_object: &str, digest: &PlanDigest) -> String {
    format!("{zone_object}-{}", digest.short(12))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::name::ZoneName;

    #[test]
    fn digest_text_round_trips() {
        let d = PlanDigest([7u8; 32]);
        let text = d.to_string();
        assert!(text.starts_with("sha256:0707"));
        assert_eq!(text.parse::<PlanDigest>(), Ok(d));
        assert!("sha1:00".parse::<PlanDigest>().is_err());
        assert!("sha256:zz".parse::<PlanDigest>().is_err());
    }

    #[test]
    fn tenant_and_zone_are_bound() {
        let zone = ZoneName::parse("a.example.").unwrap_or_else(|e| panic!("{e}"));
        let other = ZoneName::parse("b.example.").unwrap_or_else(|e| panic!("{e}"));
        let p = Plan {
            zone: zone.clone(),
            changes: vec![],
        };
        let q = Plan {
            zone: other,
            changes: vec![],
        };
        assert_ne!(plan_digest("acme", &p), plan_digest("globex", &p));
        assert_ne!(plan_digest("acme", &p), plan_digest("acme", &q));
        assert_eq!(plan_digest("acme", &p), plan_digest("acme", &p));
    }
}
