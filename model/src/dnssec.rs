//! The DNSSEC guard of a delegation: which record types carry a zone's chain
//! of trust, and whether the DS record set a parent zone is about to publish
//! (or remove) for a delegated child still points at the child's keys, so a
//! plan cannot make the child bogus. Digests and key tags are computed by
//! hickory-proto from the child's DNSKEY data as observed. Pure.

use hickory_proto::dnssec::rdata::{DNSKEY, DNSSECRData, DS};
use hickory_proto::dnssec::{DigestType, PublicKey};
use hickory_proto::rr::{RData, RecordType};

use crate::name::ZoneName;
use crate::record::{RecordSet, RecordValue};

/// The record types that decide whether a zone validates: changes to them
/// always need approval, whatever the tenant's policy says.
pub const TRUST_ANCHOR_TYPES: [RecordType; 4] = [
    RecordType::DS,
    RecordType::DNSKEY,
    RecordType::CDS,
    RecordType::CDNSKEY,
];

/// True for DS, DNSKEY, CDS and CDNSKEY.
pub fn is_trust_anchor_type(rtype: RecordType) -> bool {
    TRUST_ANCHOR_TYPES.contains(&rtype)
}

/// One DNSKEY of the child, decoded, with its key tag.
struct ChildKey {
    tag: u16,
    key: DNSKEY,
}

impl ChildKey {
    fn describe(&self) -> String {
        format!(
            "key tag {} (algorithm {}, flags {})",
            self.tag,
            u8::from(self.key.public_key().algorithm()),
            self.key.flags()
        )
    }
}

/// The child's DNSKEYs that decode (a value that does not is no key a DS can point at).
fn child_keys(dnskeys: Option<&RecordSet>) -> Vec<ChildKey> {
    dnskeys
        .map(RecordSet::values)
        .unwrap_or_default()
        .iter()
        .filter_map(|v| match v.to_rdata(RecordType::DNSKEY) {
            Ok(RData::DNSSEC(DNSSECRData::DNSKEY(key))) => Some(key),
            _ => None,
        })
        .filter_map(|key| {
            key.calculate_key_tag()
                .ok()
                .map(|tag| ChildKey { tag, key })
        })
        .collect()
}

fn list_keys(keys: &[ChildKey]) -> String {
    if keys.is_empty() {
        "no DNSKEY records".into()
    } else {
        keys.iter()
            .map(ChildKey::describe)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Checks a change of the DS record set that a parent zone holds for the
/// delegated `child`, against the child's current DNSKEY set
/// (`child_dnskeys`, `None` when the child serves none). `new_ds` is the DS
/// set after the change, `None` for its removal.
///
/// - A removal is refused while the child still has a DNSKEY with the SEP
///   flag (a key-signing key): removing the DS would turn off validation of
///   a signed zone. Unsign the child first.
/// - A new or changed DS set is refused unless every DS record matches a
///   current DNSKEY of the child: same key tag and algorithm, and the digest
///   recomputed from that DNSKEY with the DS's digest type. Otherwise
///   validating resolvers would find the child bogus and refuse its answers.
pub fn check_ds_change(
    child: &ZoneName,
    child_dnskeys: Option<&RecordSet>,
    new_ds: Option<&RecordSet>,
) -> Result<(), String> {
    let keys = child_keys(child_dnskeys);
    let new_ds = new_ds.filter(|set| !set.values().is_empty());
    let Some(new_ds) = new_ds else {
        let signing: Vec<&ChildKey> = keys.iter().filter(|k| k.key.secure_entry_point()).collect();
        if signing.is_empty() {
            return Ok(());
        }
        return Err(format!(
            "the DS records of {child} cannot be removed while {child} is signed (its DNSKEY set holds the key-signing key {}): without them validating resolvers stop checking {child}'s signatures; unsign {child} first (remove its key-signing keys), or keep its DS records",
            signing
                .iter()
                .map(|k| k.describe())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    };
    let problems: Vec<String> = new_ds
        .values()
        .iter()
        .filter_map(|value| ds_problem(child, &keys, value))
        .collect();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "the new DS records of {child} do not match its current keys, so validating resolvers would find {child} bogus and refuse its answers: {}; publish the DS records of {child}'s current key-signing key (as its signer prints them, for example `pdnsutil export-zone-ds {child}` or `dnssec-dsfromkey`)",
            problems.join("; ")
        ))
    }
}

/// Why one DS record matches no DNSKEY of the child, or `None` when it matches one.
fn ds_problem(child: &ZoneName, keys: &[ChildKey], value: &RecordValue) -> Option<String> {
    let ds: DS = match value.to_rdata(RecordType::DS) {
        Ok(RData::DNSSEC(DNSSECRData::DS(ds))) => ds,
        Ok(_) => return Some(format!("DS {value} is not DS data")),
        Err(e) => return Some(format!("DS {value} does not decode: {e}")),
    };
    let digest_type = ds.digest_type();
    if !digest_type.is_supported() {
        return Some(format!(
            "DS {value} uses digest type {}, which ZentraLink cannot recompute to check it (it checks SHA-1 (1), SHA-256 (2) and SHA-384 (4)); publish the DS with digest type 2 (SHA-256)",
            u8::from(digest_type)
        ));
    }
    let named: Vec<&ChildKey> = keys
        .iter()
        .filter(|k| k.tag == ds.key_tag() && k.key.public_key().algorithm() == ds.algorithm())
        .collect();
    if named.is_empty() {
        return Some(format!(
            "DS {value} names key tag {} with algorithm {}, and {child} has no such key ({child} has {})",
            ds.key_tag(),
            u8::from(ds.algorithm()),
            list_keys(keys)
        ));
    }
    let covered = named
        .iter()
        .any(|k| ds.covers(child.as_name(), &k.key).unwrap_or(false));
    if covered {
        return None;
    }
    Some(format!(
        "DS {value} names {child}'s key tag {}, but its digest is not the {} digest of that key{}: it was computed for another key or copied wrong",
        ds.key_tag(),
        digest_name(digest_type),
        if named.iter().all(|k| !k.key.zone_key()) {
            " (which is not a zone key either)"
        } else {
            ""
        }
    ))
}

fn digest_name(digest_type: DigestType) -> String {
    match digest_type {
        DigestType::SHA1 => "SHA-1".into(),
        DigestType::SHA256 => "SHA-256".into(),
        DigestType::SHA384 => "SHA-384".into(),
        other => format!("type {}", u8::from(other)),
    }
}

#[cfg(test)]
mod tests {
    use hickory_proto::dnssec::{Algorithm, PublicKeyBuf};
    use hickory_proto::serialize::binary::BinEncodable;

    use super::*;
    use crate::record::generic;

    fn child() -> ZoneName {
        ZoneName::parse("shop.acme.example.").unwrap_or_else(|e| panic!("{e}"))
    }

    /// A DNSKEY of algorithm 13 with a 64-byte key made from `seed`.
    fn dnskey(flags: u16, seed: u8) -> DNSKEY {
        let bytes = (0u8..64)
            .map(|b| b.wrapping_mul(seed).wrapping_add(seed))
            .collect();
        DNSKEY::with_flags(flags, PublicKeyBuf::new(bytes, Algorithm::ECDSAP256SHA256))
    }

    fn dnskey_set(keys: &[&DNSKEY]) -> RecordSet {
        let values = keys
            .iter()
            .map(|k| {
                let wire = k.to_bytes().unwrap_or_else(|e| panic!("{e}"));
                RecordValue::parse_existing(RecordType::DNSKEY, &generic(&wire), &child())
                    .unwrap_or_else(|e| panic!("{e}"))
            })
            .collect();
        RecordSet::new(3600, values)
    }

    /// The DS of `key` under the child's name, computed by hickory-proto.
    fn ds_of(key: &DNSKEY, digest_type: DigestType) -> DS {
        let digest = key
            .to_digest(child().as_name(), digest_type)
            .unwrap_or_else(|e| panic!("{e}"));
        DS::new(
            key.calculate_key_tag().unwrap_or_else(|e| panic!("{e}")),
            key.public_key().algorithm(),
            digest_type,
            digest.as_ref().to_vec(),
        )
    }

    fn ds_set(records: &[DS]) -> RecordSet {
        let values = records
            .iter()
            .map(|ds| {
                RecordValue::from_rdata(&RData::DNSSEC(DNSSECRData::DS(ds.clone())))
                    .unwrap_or_else(|e| panic!("{e}"))
            })
            .collect();
        RecordSet::new(3600, values)
    }

    #[test]
    fn a_ds_of_the_childs_key_is_accepted_with_every_digest_type() {
        let ksk = dnskey(257, 7);
        let zsk = dnskey(256, 9);
        let keys = dnskey_set(&[&ksk, &zsk]);
        for digest in [DigestType::SHA1, DigestType::SHA256, DigestType::SHA384] {
            let ds = ds_set(&[ds_of(&ksk, digest)]);
            assert_eq!(
                check_ds_change(&child(), Some(&keys), Some(&ds)),
                Ok(()),
                "{digest:?}"
            );
        }
        // both keys of a rollover, each matched
        let both = ds_set(&[
            ds_of(&ksk, DigestType::SHA256),
            ds_of(&zsk, DigestType::SHA256),
        ]);
        assert_eq!(check_ds_change(&child(), Some(&keys), Some(&both)), Ok(()));
    }

    #[test]
    fn the_example_of_rfc_4034_matches() {
        // RFC 4034 section 5.4: the DNSKEY of dskey.example.com. (key tag
        // 60485, RSA/SHA-1) and its SHA-1 DS.
        let zone = ZoneName::parse("dskey.example.com.").unwrap_or_else(|e| panic!("{e}"));
        let key = data_encoding::BASE64
            .decode(
                b"AQOeiiR0GOMYkDshWoSKz9XzfwJr1AYtsmx3TGkJaNXVbfi/2pHm822aJ5iI9BMzNXxeYCmZDRD99WYwYqUSdjMmmAphXdvxegXd/M5+X7OrzKBaMbCVdFLUUh6DhweJBjEVv5f2wwjM9XzcnOf+EPbtG9DMBmADjFDc2w/rljwvFw==",
            )
            .unwrap_or_else(|e| panic!("{e}"));
        let dnskey = DNSKEY::with_flags(256, PublicKeyBuf::new(key, Algorithm::from_u8(5)));
        let keys = dnskey_set(&[&dnskey]);
        let ds = |text: &str| {
            let value =
                RecordValue::parse(RecordType::DS, text, &zone).unwrap_or_else(|e| panic!("{e}"));
            RecordSet::new(86400, vec![value])
        };
        let right = ds("60485 5 1 2BB183AF5F22588179A53B0A98631FAD1A292118");
        assert_eq!(check_ds_change(&zone, Some(&keys), Some(&right)), Ok(()));
        let wrong = ds("60485 5 1 2BB183AF5F22588179A53B0A98631FAD1A292119");
        assert!(check_ds_change(&zone, Some(&keys), Some(&wrong)).is_err());
        // The same DS under another owner name is another digest.
        assert!(check_ds_change(&child(), Some(&keys), Some(&right)).is_err());
    }

    #[test]
    fn a_ds_with_a_wrong_digest_is_refused() {
        let ksk = dnskey(257, 7);
        let keys = dnskey_set(&[&ksk]);
        let right = ds_of(&ksk, DigestType::SHA256);
        let mut digest = right.digest().to_vec();
        digest[0] ^= 0xff;
        let wrong = DS::new(
            right.key_tag(),
            right.algorithm(),
            right.digest_type(),
            digest,
        );
        let err = check_ds_change(&child(), Some(&keys), Some(&ds_set(&[wrong])))
            .expect_err("a wrong digest");
        assert!(err.contains("bogus"), "{err}");
        assert!(err.contains("SHA-256 digest of that key"), "{err}");
        assert!(err.contains("pdnsutil export-zone-ds"), "{err}");
    }

    #[test]
    fn a_ds_naming_another_key_is_refused() {
        let ksk = dnskey(257, 7);
        let keys = dnskey_set(&[&ksk]);
        let other = ds_of(&dnskey(257, 11), DigestType::SHA256);
        let err = check_ds_change(
            &child(),
            Some(&keys),
            Some(&ds_set(std::slice::from_ref(&other))),
        )
        .expect_err("another key");
        assert!(
            err.contains(&format!(
                "names key tag {} with algorithm 13",
                other.key_tag()
            )),
            "{err}"
        );
        let tag = ksk.calculate_key_tag().unwrap_or_else(|e| panic!("{e}"));
        assert!(
            err.contains(&format!("key tag {tag} (algorithm 13, flags 257)")),
            "{err}"
        );
        // one right and one wrong record: the wrong one refuses the set
        let mixed = ds_set(&[ds_of(&ksk, DigestType::SHA256), other]);
        assert!(check_ds_change(&child(), Some(&keys), Some(&mixed)).is_err());
    }

    #[test]
    fn a_ds_of_the_right_tag_with_another_algorithm_is_refused() {
        let ksk = dnskey(257, 7);
        let keys = dnskey_set(&[&ksk]);
        let right = ds_of(&ksk, DigestType::SHA256);
        let other_algorithm = DS::new(
            right.key_tag(),
            Algorithm::ED25519,
            right.digest_type(),
            right.digest().to_vec(),
        );
        let err = check_ds_change(&child(), Some(&keys), Some(&ds_set(&[other_algorithm])))
            .expect_err("another algorithm");
        assert!(err.contains("with algorithm 15"), "{err}");
    }

    #[test]
    fn a_ds_for_a_child_without_keys_is_refused() {
        let ds = ds_set(&[ds_of(&dnskey(257, 7), DigestType::SHA256)]);
        for keys in [None, Some(RecordSet::new(3600, Vec::new()))] {
            let err = check_ds_change(&child(), keys.as_ref(), Some(&ds)).expect_err("no keys");
            assert!(err.contains("has no DNSKEY records"), "{err}");
        }
    }

    #[test]
    fn a_digest_type_that_cannot_be_recomputed_is_refused() {
        let ksk = dnskey(257, 7);
        let keys = dnskey_set(&[&ksk]);
        let right = ds_of(&ksk, DigestType::SHA256);
        let gost = DS::new(
            right.key_tag(),
            right.algorithm(),
            DigestType::from(3),
            right.digest().to_vec(),
        );
        let err = check_ds_change(&child(), Some(&keys), Some(&ds_set(&[gost]))).expect_err("GOST");
        assert!(err.contains("digest type 3"), "{err}");
    }

    #[test]
    fn removing_the_ds_is_refused_while_the_child_has_a_key_signing_key() {
        let keys = dnskey_set(&[&dnskey(257, 7), &dnskey(256, 9)]);
        let err = check_ds_change(&child(), Some(&keys), None).expect_err("signed child");
        assert!(
            err.contains("cannot be removed while shop.acme.example. is signed"),
            "{err}"
        );
        assert!(err.contains("flags 257"), "{err}");
        assert!(
            !err.contains("flags 256"),
            "only key-signing keys are named: {err}"
        );
    }

    #[test]
    fn removing_the_ds_is_allowed_once_no_key_signing_key_is_left() {
        assert_eq!(check_ds_change(&child(), None, None), Ok(()));
        let zsk_only = dnskey_set(&[&dnskey(256, 9)]);
        assert_eq!(check_ds_change(&child(), Some(&zsk_only), None), Ok(()));
        let empty = RecordSet::new(3600, Vec::new());
        assert_eq!(
            check_ds_change(&child(), Some(&dnskey_set(&[])), Some(&empty)),
            Ok(()),
            "an empty DS set is a removal"
        );
    }

    #[test]
    fn the_trust_anchor_types_are_exactly_ds_dnskey_cds_and_cdnskey() {
        for t in [
            RecordType::DS,
            RecordType::DNSKEY,
            RecordType::CDS,
            RecordType::CDNSKEY,
        ] {
            assert!(is_trust_anchor_type(t), "{t}");
        }
        for t in [
            RecordType::A,
            RecordType::NS,
            RecordType::TXT,
            RecordType::RRSIG,
        ] {
            assert!(!is_trust_anchor_type(t), "{t}");
        }
    }
}
