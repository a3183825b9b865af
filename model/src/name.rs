//! DNS names: zone names, owner names relative to a zone, IDN conversion and
//! host-name checks. Built on hickory-proto's `Name`. Pure.

use std::fmt;
use std::str::FromStr;

use hickory_proto::rr::Name;

/// The name of a zone: absolute, lower case, ASCII (IDN labels in punycode).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ZoneName(Name);

impl ZoneName {
    /// Parses a zone name such as `acme.example.` or `bücher.example`.
    /// A missing trailing dot is accepted: zone names are always absolute.
    pub fn parse(input: &str) -> Result<Self, String> {
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return Err("a zone name is required".into());
        }
        if trimmed == "." {
            return Err("the root zone cannot be managed".into());
        }
        let mut name = parse_dns_name(trimmed)?;
        name.set_fqdn(true);
        check_owner_labels(&name, trimmed)?;
        if name.is_wildcard() {
            return Err(format!(
                "{trimmed:?} is not a zone name: it contains a wildcard"
            ));
        }
        Ok(Self(name))
    }

    pub fn as_name(&self) -> &Name {
        &self.0
    }

    /// True when `name` is this zone's apex or below it.
    pub fn contains(&self, name: &Name) -> bool {
        self.0.zone_of(name)
    }

    /// True when this zone is `domain` or a subdomain of it.
    pub fn is_within(&self, domain: &ZoneName) -> bool {
        domain.0.zone_of(&self.0)
    }

    /// The zone name without its trailing dot, as file names and APIs use it.
    pub fn without_dot(&self) -> String {
        let s = self.0.to_ascii();
        s.strip_suffix('.').map(str::to_owned).unwrap_or(s)
    }

    /// Parses an owner name written in a record set: `@`, a name relative to
    /// the zone, or an absolute name inside the zone. Case-insensitive; IDN
    /// labels become punycode; `*` is allowed as the leftmost label.
    pub fn owner(&self, input: &str) -> Result<Name, String> {
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return Err("a record name is required (use \"@\" for the zone apex)".into());
        }
        if trimmed == "@" {
            return Ok(self.0.clone());
        }
        let relative = parse_dns_name(trimmed)?;
        check_owner_labels(&relative, trimmed)?;
        let name = if relative.is_fqdn() {
            relative
        } else {
            relative
                .append_domain(&self.0)
                .map_err(|e| format!("{trimmed:?} is too long inside {}: {e}", self))?
        };
        if !self.contains(&name) {
            return Err(format!(
                "{} is outside the zone {}; write names relative to the zone or absolute names inside it",
                name.to_ascii(),
                self
            ));
        }
        Ok(name.to_lowercase())
    }

    /// The owner name relative to this zone, for display: `@` for the apex.
    pub fn relative(&self, name: &Name) -> String {
        if name == &self.0 {
            return "@".into();
        }
        let full = name.to_ascii();
        let suffix = format!(".{}", self.0.to_ascii());
        match full.strip_suffix(&suffix) {
            Some(rel) if self.contains(name) => rel.to_owned(),
            _ => full,
        }
    }
}

impl fmt::Display for ZoneName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.to_ascii())
    }
}

impl FromStr for ZoneName {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// Parses a DNS name, converting IDN labels to punycode, lower-cased.
pub fn parse_dns_name(input: &str) -> Result<Name, String> {
    let parsed = if input.is_ascii() {
        Name::from_ascii(input.to_ascii_lowercase())
    } else {
        Name::from_utf8(input.to_lowercase())
    };
    let name = parsed.map_err(|e| format!("{input:?} is not a valid DNS name: {e}"))?;
    Ok(name.to_lowercase())
}

/// Owner names may hold letters, digits, `-`, `_` and a leftmost `*`.
fn check_owner_labels(name: &Name, input: &str) -> Result<(), String> {
    for (i, label) in name.iter().enumerate() {
        if label == b"*" {
            if i == 0 {
                continue;
            }
            return Err(format!(
                "{input:?}: a wildcard `*` is only allowed as the leftmost label"
            ));
        }
        if label.is_empty() {
            return Err(format!("{input:?} has an empty label"));
        }
        if let Some(bad) = label
            .iter()
            .find(|b| !(b.is_ascii_alphanumeric() || **b == b'-' || **b == b'_'))
        {
            return Err(format!(
                "{input:?} contains {:?}, which is not allowed in a DNS name (letters, digits, '-', '_')",
                char::from(*bad)
            ));
        }
    }
    Ok(())
}

/// Which characters a target name (the name a record points to) may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetRule {
    /// A host name: letters, digits and `-` (MX exchange, NS, SRV target).
    HostName,
    /// Any DNS name without wildcards (CNAME, PTR, DNAME-like aliases may point at `_service` names).
    AnyName,
}

/// Checks a name a record points to. The root name `.` is accepted (null MX, SRV "no service").
pub fn check_target(name: &Name, rule: TargetRule) -> Result<(), String> {
    if name.is_root() {
        return Ok(());
    }
    let shown = name.to_ascii();
    if !name.is_fqdn() {
        return Err(format!("target {shown} must be absolute"));
    }
    let labels: Vec<&[u8]> = name.iter().collect();
    if labels.len() == 4 && labels.iter().all(|l| l.iter().all(u8::is_ascii_digit)) {
        return Err(format!(
            "target {shown} is an IP address; a target must be a host name"
        ));
    }
    for label in &labels {
        if *label == b"*" {
            return Err(format!("target {shown} must not contain a wildcard"));
        }
        let allowed = |b: &u8| match rule {
            TargetRule::HostName => b.is_ascii_alphanumeric() || *b == b'-',
            TargetRule::AnyName => b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_',
        };
        if !label.iter().all(allowed) {
            return Err(format!(
                "target {shown} is not a valid host name (letters, digits and '-' only)"
            ));
        }
        if matches!(rule, TargetRule::HostName)
            && (label.first() == Some(&b'-') || label.last() == Some(&b'-'))
        {
            return Err(format!(
                "target {shown} is not a valid host name (a label starts or ends with '-')"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zone() -> ZoneName {
        ZoneName::parse("Acme.Example.").unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn zone_names_are_absolute_and_lower_case() {
        assert_eq!(zone().to_string(), "acme.example.");
        assert_eq!(
            ZoneName::parse("acme.example").map(|z| z.to_string()),
            Ok("acme.example.".into())
        );
        assert!(ZoneName::parse(".").is_err());
        assert!(ZoneName::parse("").is_err());
        assert!(ZoneName::parse("*.acme.example.").is_err());
    }

    #[test]
    fn owners_resolve_relative_apex_and_absolute() {
        let z = zone();
        assert_eq!(
            z.owner("@").map(|n| n.to_ascii()),
            Ok("acme.example.".into())
        );
        assert_eq!(
            z.owner("WWW").map(|n| n.to_ascii()),
            Ok("www.acme.example.".into())
        );
        assert_eq!(
            z.owner("www.acme.example.").map(|n| n.to_ascii()),
            Ok("www.acme.example.".into())
        );
        assert_eq!(
            z.owner("*.dev").map(|n| n.to_ascii()),
            Ok("*.dev.acme.example.".into())
        );
        assert_eq!(
            z.owner("_dmarc").map(|n| n.to_ascii()),
            Ok("_dmarc.acme.example.".into())
        );
    }

    #[test]
    fn idn_owner_becomes_punycode() {
        let z = zone();
        assert_eq!(
            z.owner("bücher").map(|n| n.to_ascii()),
            Ok("xn--bcher-kva.acme.example.".into())
        );
        let idn_zone = ZoneName::parse("bücher.example.").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(idn_zone.to_string(), "xn--bcher-kva.example.");
    }

    #[test]
    fn owner_outside_zone_and_bad_labels_are_refused() {
        let z = zone();
        let err = z.owner("www.other.example.").unwrap_err();
        assert!(err.contains("outside the zone"), "{err}");
        assert!(z.owner("a.*.b").unwrap_err().contains("wildcard"));
        assert!(z.owner("bad name").is_err());
        assert!(z.owner("").is_err());
    }

    #[test]
    fn relative_display() {
        let z = zone();
        let www = z.owner("www").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(z.relative(&www), "www");
        assert_eq!(z.relative(z.as_name()), "@");
    }

    #[test]
    fn targets() {
        let ok = Name::from_ascii("mx1.acme.example.").unwrap_or_else(|e| panic!("{e}"));
        assert!(check_target(&ok, TargetRule::HostName).is_ok());
        let ip = Name::from_ascii("192.0.2.1.").unwrap_or_else(|e| panic!("{e}"));
        assert!(
            check_target(&ip, TargetRule::HostName)
                .unwrap_err()
                .contains("IP address")
        );
        let under = Name::from_ascii("_x.acme.example.").unwrap_or_else(|e| panic!("{e}"));
        assert!(check_target(&under, TargetRule::HostName).is_err());
        assert!(check_target(&under, TargetRule::AnyName).is_ok());
        assert!(check_target(&Name::root(), TargetRule::HostName).is_ok());
    }
}
