//! The zone-file provider: one RFC 1035 master file per zone in a directory,
//! readable by BIND, Knot, NSD and CoreDNS. Reads with hickory-proto's zone
//! parser; writes atomically (temporary file, fsync, rename, fsync of the
//! directory) and bumps the SOA serial. Does I/O.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use hickory_proto::rr::rdata::SOA;
use hickory_proto::rr::{Name, RData, RecordType};
use hickory_proto::serialize::txt::Parser;
use zentralink_model::plan::Plan;
use zentralink_model::record::{
    RecordSet, RecordValue, RrKey, is_server_generated, parse_record_type, type_name,
};
use zentralink_model::resources::ProviderType;
use zentralink_model::{ZoneContent, ZoneName};

use super::{ApplyReport, Capabilities, Provider, ProviderError, check_before_values};
use crate::fsread::{MAX_ZONE_FILE_BYTES, ReadError, read_text};

/// Zone files in one directory, named `<zone>.zone` (`acme.example.zone`).
#[derive(Debug, Clone)]
pub struct ZoneFileProvider {
    dir: PathBuf,
}

impl ZoneFileProvider {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    pub fn directory(&self) -> &Path {
        &self.dir
    }

    /// The file that holds a zone.
    pub fn path_for(&self, zone: &ZoneName) -> PathBuf {
        self.dir.join(format!("{}.zone", zone.without_dot()))
    }

    fn read_sync(&self, zone: &ZoneName) -> Result<Option<ZoneContent>, ProviderError> {
        let path = self.path_for(zone);
        let text = match read_text(&path, MAX_ZONE_FILE_BYTES, "zone files") {
            Ok(t) => t,
            Err(ReadError::NotFound) => return Ok(None),
            Err(e) => return Err(ProviderError::Io(format!("{}: {e}", path.display()))),
        };
        parse_zone_file(&text, zone).map(Some).map_err(|e| {
            ProviderError::InvalidAnswer(format!(
                "{}: {}",
                path.display(),
                zentralink_model::secrets::shorten(&e, 300)
            ))
        })
    }

    fn write_sync(&self, content: &ZoneContent) -> Result<(), ProviderError> {
        let path = self.path_for(&content.origin);
        let io = |what: &str, e: std::io::Error| {
            ProviderError::Io(format!("{}: {what}: {e}", path.display()))
        };
        std::fs::create_dir_all(&self.dir).map_err(|e| io("cannot create the directory", e))?;
        let text = render_zone_file(content);
        let mut tmp = tempfile::NamedTempFile::new_in(&self.dir)
            .map_err(|e| io("cannot create a temporary file", e))?;
        tmp.write_all(text.as_bytes())
            .map_err(|e| io("cannot write", e))?;
        tmp.as_file()
            .sync_all()
            .map_err(|e| io("cannot fsync", e))?;
        tmp.persist(&path)
            .map_err(|e| io("cannot rename into place", e.error))?;
        // Make the rename durable.
        if let Ok(d) = std::fs::File::open(&self.dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }
}

#[async_trait]
impl Provider for ZoneFileProvider {
    fn provider_type(&self) -> ProviderType {
        ProviderType::Zonefile
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            record_types: None,
            atomic_batch: true,
            alias: false,
            max_batch: None,
            lists_zones: true,
        }
    }

    async fn list_zones(&self) -> Result<Vec<ZoneName>, ProviderError> {
        let dir = self.dir.clone();
        let entries = std::fs::read_dir(&dir)
            .map_err(|e| ProviderError::Io(format!("{}: cannot list: {e}", dir.display())))?;
        let mut zones: Vec<ZoneName> = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name().to_str()?.strip_suffix(".zone")?.to_owned();
                ZoneName::parse(&name).ok()
            })
            .collect();
        zones.sort();
        Ok(zones)
    }

    async fn read_zone(&self, zone: &ZoneName) -> Result<Option<ZoneContent>, ProviderError> {
        self.read_sync(zone)
    }

    async fn apply(&self, plan: &Plan) -> Result<ApplyReport, ProviderError> {
        let current = self
            .read_sync(&plan.zone)?
            .unwrap_or_else(|| ZoneContent::new(plan.zone.clone()));
        let mut next = check_before_values(&current, plan)?;
        bump_serial(&mut next).map_err(ProviderError::Io)?;
        self.write_sync(&next)?;
        Ok(ApplyReport::all_applied(plan))
    }

    async fn test_connection(&self) -> Result<(), ProviderError> {
        let meta = std::fs::metadata(&self.dir)
            .map_err(|e| ProviderError::Unreachable(format!("{}: {e}", self.dir.display())))?;
        if !meta.is_dir() {
            return Err(ProviderError::Unreachable(format!(
                "{} is not a directory",
                self.dir.display()
            )));
        }
        Ok(())
    }

    async fn probe_write(&self, _zone: &ZoneName) -> Result<(), ProviderError> {
        // Writing a zone file means creating a file in the directory and renaming
        // it, so the probe creates and removes a temporary file there.
        let tmp = tempfile::NamedTempFile::new_in(&self.dir)
            .map_err(|e| ProviderError::Io(format!("{}: not writable: {e}", self.dir.display())))?;
        tmp.close().map_err(|e| {
            ProviderError::Io(format!(
                "{}: cannot remove the probe file: {e}",
                self.dir.display()
            ))
        })
    }
}

/// Increments the SOA serial (RFC 1982 arithmetic, skipping 0), creating a
/// default SOA for a new zone.
fn bump_serial(zone: &mut ZoneContent) -> Result<(), String> {
    let key = RrKey::new(zone.origin.as_name().clone(), RecordType::SOA);
    let current = zone
        .sets
        .get(&key)
        .and_then(|s| s.values().first())
        .and_then(|v| v.to_rdata(RecordType::SOA).ok());
    let (soa, ttl) = match current {
        Some(RData::SOA(mut soa)) => {
            soa.serial = match soa.serial.wrapping_add(1) {
                0 => 1,
                n => n,
            };
            (soa, zone.sets.get(&key).map(|s| s.ttl).unwrap_or(3600))
        }
        _ => {
            let apex = zone.origin.as_name();
            let primary = zone
                .sets
                .get(&RrKey::new(apex.clone(), RecordType::NS))
                .and_then(|s| s.values().first())
                .and_then(|v| match v.to_rdata(RecordType::NS) {
                    Ok(RData::NS(ns)) => Some(ns.0),
                    _ => None,
                })
                .or_else(|| {
                    Name::from_ascii("ns1")
                        .ok()
                        .and_then(|n| n.append_domain(apex).ok())
                })
                .unwrap_or_else(|| apex.clone());
            let rname = Name::from_ascii("hostmaster")
                .ok()
                .and_then(|n| n.append_domain(apex).ok())
                .unwrap_or_else(|| apex.clone());
            (SOA::new(primary, rname, 1, 3600, 600, 1_209_600, 300), 3600)
        }
    };
    let value = RecordValue::from_rdata(&RData::SOA(soa))?;
    zone.sets.insert(key, RecordSet::new(ttl, vec![value]));
    Ok(())
}

/// Renders zone content as a master file: `$ORIGIN`, the SOA first, then
/// every record set in canonical order, one record per line.
pub fn render_zone_file(zone: &ZoneContent) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "; Zone {} written by ZentraLink. Edits here show up as drift.",
        zone.origin
    );
    let _ = writeln!(out, "$ORIGIN {}", zone.origin);
    let soa = zone.soa();
    let apex_soa_key = RrKey::new(zone.origin.as_name().clone(), RecordType::SOA);
    let mut write_set = |key: &RrKey, set: &RecordSet| {
        let owner = zone.origin.relative(&key.name());
        for v in set.values() {
            let _ = writeln!(
                out,
                "{owner}\t{}\tIN\t{}\t{}",
                set.ttl,
                type_name(key.rtype),
                v.text()
            );
        }
    };
    if let Some(s) = soa {
        write_set(&apex_soa_key, s);
    }
    for (key, set) in &zone.sets {
        if key != &apex_soa_key {
            write_set(key, set);
        }
    }
    out
}

/// Parses a master file. Records in RFC 3597 generic form (`TYPE65280`, or
/// data written `\# <length> <hex>`) are read here, since hickory-proto's zone
/// parser does not take them; everything else is parsed by hickory-proto.
///
/// Lines may end in CRLF, as BIND, Knot and NSD accept. `$INCLUDE` is refused:
/// a zone file under management is self-contained, and an include could read
/// any file on the host.
pub fn parse_zone_file(text: &str, zone: &ZoneName) -> Result<ZoneContent, String> {
    let text: std::borrow::Cow<'_, str> = if text.contains('\r') {
        text.replace("\r\n", "\n").into()
    } else {
        text.into()
    };
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    refuse_includes(text)?;
    let flat = flatten_parentheses(text)?;
    let (standard, generic) = split_generic_lines(&flat, zone)?;
    let parser = Parser::new(standard.as_str(), None, Some(zone.as_name().clone()));
    let (_, sets) = parser.parse().map_err(|e| e.to_string())?;
    let mut content = ZoneContent::new(zone.clone());
    for (_, set) in sets {
        let rtype = set.record_type();
        if is_server_generated(rtype) {
            continue;
        }
        let name = set.name().clone();
        if !zone.contains(&name) {
            return Err(format!("{} is outside the zone {zone}", name.to_ascii()));
        }
        let mut values = Vec::new();
        for record in set.records_without_rrsigs() {
            values.push(RecordValue::from_rdata(&record.data)?);
        }
        if values.is_empty() {
            continue;
        }
        content
            .sets
            .insert(RrKey::new(name, rtype), RecordSet::new(set.ttl(), values));
    }
    for (key, ttl, value) in generic {
        let entry = content.sets.remove(&key);
        let mut values: Vec<RecordValue> = entry
            .as_ref()
            .map(|s| s.values().to_vec())
            .unwrap_or_default();
        values.push(value);
        let ttl = entry.map(|s| s.ttl).unwrap_or(ttl);
        content.sets.insert(key, RecordSet::new(ttl, values));
    }
    Ok(content)
}

type GenericRecord = (RrKey, u32, RecordValue);

/// Refuses `$INCLUDE` (RFC 1035 section 5.1) on any line.
fn refuse_includes(text: &str) -> Result<(), String> {
    for (i, line) in text.lines().enumerate() {
        let first = line.split_whitespace().next().unwrap_or("");
        if first.eq_ignore_ascii_case("$INCLUDE") {
            return Err(format!(
                "line {}: $INCLUDE is not allowed: a zone file under ZentraLink's management is self-contained (an include could read any file on the host); put the records in this file",
                i + 1
            ));
        }
    }
    Ok(())
}

/// Joins records that RFC 1035 spreads over several lines with parentheses
/// onto one line, dropping comments. Quotes and escapes are respected, so a
/// `;` or `(` inside a TXT string stays data. hickory-proto's lexer does not
/// read quoted strings inside parentheses (a DKIM key written
/// `( "v=DKIM1; ..." "..." )` fails), so it gets the one-line form. The
/// newlines taken out are added after the record to keep line numbers.
fn flatten_parentheses(text: &str) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut depth = 0usize;
    let mut in_quotes = false;
    let mut in_comment = false;
    let mut escaped = false;
    let mut held_newlines = 0usize;
    let mut line = 1usize;
    let mut opened_at = 0usize;
    for ch in text.chars() {
        if ch == '\n' {
            line += 1;
            in_comment = false;
            escaped = false;
            if in_quotes {
                return Err(format!("line {}: a quoted string is not closed", line - 1));
            }
            if depth > 0 {
                held_newlines += 1;
                out.push(' ');
            } else {
                out.push('\n');
                for _ in 0..held_newlines {
                    out.push('\n');
                }
                held_newlines = 0;
            }
            continue;
        }
        if in_comment {
            continue;
        }
        if in_quotes {
            out.push(ch);
            if escaped {
                escaped = false;
            } else if ch == '\\' {
                escaped = true;
            } else if ch == '"' {
                in_quotes = false;
            }
            continue;
        }
        if escaped {
            out.push(ch);
            escaped = false;
            continue;
        }
        match ch {
            '\\' => {
                escaped = true;
                out.push(ch);
            }
            '"' => {
                in_quotes = true;
                out.push(ch);
            }
            ';' => in_comment = true,
            '(' => {
                if depth == 0 {
                    opened_at = line;
                }
                depth += 1;
                out.push(' ');
            }
            ')' => {
                if depth == 0 {
                    return Err(format!("line {line}: ')' without '('"));
                }
                depth -= 1;
                out.push(' ');
            }
            _ => out.push(ch),
        }
    }
    if depth > 0 {
        return Err(format!("line {opened_at}: '(' is never closed"));
    }
    for _ in 0..held_newlines {
        out.push('\n');
    }
    Ok(out)
}

/// Takes RFC 3597 lines out of the text (replacing them with blank lines so
/// line numbers stay) and parses them. Such lines must name their owner.
fn split_generic_lines(
    text: &str,
    zone: &ZoneName,
) -> Result<(String, Vec<GenericRecord>), String> {
    let mut standard = String::with_capacity(text.len());
    let mut generic = Vec::new();
    let mut default_ttl: u32 = 3600;
    let mut origin = zone.as_name().clone();
    let lines: Vec<&str> = text.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let code = line;
        let tokens: Vec<&str> = code.split_whitespace().collect();
        if let Some(first) = tokens.first() {
            if first.eq_ignore_ascii_case("$TTL") {
                if let Some(t) = tokens.get(1) {
                    default_ttl =
                        hickory_proto::serialize::txt::parse_ttl(t).map_err(|e| e.to_string())?;
                }
            } else if first.eq_ignore_ascii_case("$ORIGIN")
                && let Some(o) = tokens.get(1)
            {
                origin = Name::parse(o, Some(zone.as_name())).map_err(|e| e.to_string())?;
            }
        }
        let is_generic = !line.starts_with(char::is_whitespace)
            && (is_generic_record(&tokens) || is_escaped_txt(&tokens, line));
        if !is_generic {
            standard.push_str(line);
            standard.push('\n');
            i += 1;
            continue;
        }
        let record = parse_generic_line(code, zone, &origin, default_ttl)
            .map_err(|e| format!("line {}: {e}", i + 1))?;
        generic.push(record);
        standard.push('\n');
        i += 1;
    }
    Ok((standard, generic))
}

/// A record line whose type is `TYPE<n>` or whose data starts with `\#`.
/// Tokens: owner, then optional TTL and class, then the type.
fn is_generic_record(tokens: &[&str]) -> bool {
    if tokens.first().is_none_or(|t| t.starts_with('$')) {
        return false;
    }
    for (i, t) in tokens.iter().enumerate().skip(1).take(3) {
        if t.eq_ignore_ascii_case("IN") || t.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        return is_type_code(t) || tokens.get(i + 1) == Some(&"\\#");
    }
    false
}

/// A TXT record with `\DDD` escapes, which hickory-proto's lexer decodes
/// wrongly (see `zentralink_model::record::parse_character_strings`).
fn is_escaped_txt(tokens: &[&str], line: &str) -> bool {
    let is_txt = tokens
        .iter()
        .skip(1)
        .take(3)
        .any(|t| t.eq_ignore_ascii_case("TXT") || t.eq_ignore_ascii_case("SPF"));
    is_txt
        && line
            .as_bytes()
            .windows(2)
            .any(|w| w[0] == b'\\' && w[1].is_ascii_digit())
}

fn is_type_code(token: &str) -> bool {
    token
        .strip_prefix("TYPE")
        .or_else(|| token.strip_prefix("type"))
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

fn parse_generic_line(
    line: &str,
    zone: &ZoneName,
    origin: &Name,
    default_ttl: u32,
) -> Result<GenericRecord, String> {
    // Tokens with their byte offsets, so the data after the type keeps its spacing.
    let tokens: Vec<(usize, &str)> = line
        .split_whitespace()
        .map(|t| (t.as_ptr() as usize - line.as_ptr() as usize, t))
        .collect();
    let owner_text = tokens.first().map(|(_, t)| *t).ok_or("empty record")?;
    let owner = if owner_text == "@" {
        origin.clone()
    } else {
        Name::parse(owner_text, Some(origin)).map_err(|e| e.to_string())?
    };
    if !zone.contains(&owner) {
        return Err(format!("{} is outside the zone {zone}", owner.to_ascii()));
    }
    let mut ttl = default_ttl;
    let mut rtype = None;
    let mut data_start = line.len();
    for (offset, t) in tokens.iter().skip(1) {
        if t.eq_ignore_ascii_case("IN") {
            continue;
        }
        if t.bytes().all(|b| b.is_ascii_digit()) {
            ttl = t.parse().map_err(|_| format!("bad TTL {t:?}"))?;
            continue;
        }
        rtype = Some(parse_record_type(t)?);
        data_start = offset + t.len();
        break;
    }
    let rtype = rtype.ok_or("no record type")?;
    let data = line.get(data_start..).unwrap_or("").trim();
    let value = RecordValue::parse_existing(rtype, data, zone)?;
    Ok((RrKey::new(owner, rtype), ttl, value))
}
