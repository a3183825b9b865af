//! The quick scan of manifest texts that `zentralink plan` starts its reads
//! from ([`super::Prefetch`]): each DnsZone's namespace, `spec.zone` and
//! `spec.providerRef.name`, found from the lines before its record sets
//! without parsing YAML, and the text of the Tenant and ProviderConnection
//! documents. A guess, never trusted: what it gets wrong is read again.
//! Pure: no I/O.

use std::borrow::Cow;

/// A DnsZone as the quick scan saw it: a guess, nothing in it is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScannedZone {
    pub namespace: String,
    pub connection: String,
    pub zone: String,
}

/// What the quick scan found in one manifest file.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FileScan {
    pub zones: Vec<ScannedZone>,
    /// The file's Tenant and ProviderConnection documents, each after a `---` line.
    pub head: String,
}

/// Guesses, without parsing record sets, each DnsZone's namespace, zone and
/// connection, and keeps the text of the Tenant and ProviderConnection
/// documents. Knows block and flow style, comments, quotes, anchors and
/// tags, block scalars, and several documents per file; what it does not
/// understand it leaves out.
pub fn scan_text(text: &str) -> FileScan {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut scan = FileScan::default();
    for doc in documents(text) {
        let fields = scan_document(&doc);
        match fields.kind.as_deref() {
            Some("DnsZone") => {
                if let (Some(namespace), Some(connection), Some(zone)) =
                    (fields.namespace, fields.connection, fields.zone)
                {
                    scan.zones.push(ScannedZone {
                        namespace,
                        connection,
                        zone,
                    });
                }
            }
            Some("Tenant" | "ProviderConnection") => {
                // The `---` line's own rest, when there was one, starts `doc.text`.
                scan.head
                    .push_str(if doc.after_dashes { "---" } else { "---\n" });
                scan.head.push_str(doc.text);
                if !doc.text.ends_with('\n') {
                    scan.head.push('\n');
                }
            }
            _ => {}
        }
    }
    scan
}

/// One document of a YAML stream.
struct Document<'a> {
    /// From just after a `---` (the rest of its line included) or the line
    /// after a `...`, to the next such line.
    text: &'a str,
    after_dashes: bool,
}

/// Splits a stream at its document markers: `---` or `...` at the start of a
/// line, followed by a space, a tab or the line's end. In YAML these end any
/// scalar or collection, so no content hides one.
fn documents(text: &str) -> Vec<Document<'_>> {
    let mut docs = Vec::new();
    let mut start = 0;
    let mut after_dashes = false;
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let dashes = is_marker(line, "---");
        if dashes || is_marker(line, "...") {
            docs.push(Document {
                text: &text[start..offset],
                after_dashes,
            });
            start = if dashes {
                offset + 3
            } else {
                offset + line.len()
            };
            after_dashes = dashes;
        }
        offset += line.len();
    }
    docs.push(Document {
        text: &text[start..],
        after_dashes,
    });
    docs
}

fn is_marker(line: &str, marker: &str) -> bool {
    line.strip_prefix(marker)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t', '\r', '\n']))
}

/// The fields the scan looks for in one document.
#[derive(Debug, Default)]
struct Fields {
    kind: Option<String>,
    namespace: Option<String>,
    zone: Option<String>,
    connection: Option<String>,
}

impl Fields {
    /// Nothing more to find: the kind is known and, for a DnsZone, the rest too.
    fn complete(&self) -> bool {
        match self.kind.as_deref() {
            None => false,
            Some("DnsZone") => {
                self.namespace.is_some() && self.zone.is_some() && self.connection.is_some()
            }
            Some(_) => true,
        }
    }

    fn set(&mut self, path: &[&str], value: String) {
        let slot = match path {
            ["kind"] => &mut self.kind,
            ["metadata", "namespace"] => &mut self.namespace,
            ["spec", "zone"] => &mut self.zone,
            ["spec", "providerRef", "name"] => &mut self.connection,
            _ => return,
        };
        slot.get_or_insert(value);
    }
}

/// Whether a mapping at `path` can hold a field the scan looks for.
fn leads_to_field(path: &[&str]) -> bool {
    matches!(path, [] | ["metadata"] | ["spec"] | ["spec", "providerRef"])
}

/// Reads a document's block mappings line by line, keeping the keys of the
/// mappings the current line is in; stops as soon as the fields are found,
/// so the record sets after them are never looked at.
fn scan_document(doc: &Document<'_>) -> Fields {
    let mut fields = Fields::default();
    // (indentation, key) of the block mappings the line is in.
    let mut stack: Vec<(usize, &str)> = Vec::new();
    let mut lines = doc.text.lines().peekable();
    let mut first = true;
    while let Some(line) = lines.next() {
        if fields.complete() {
            break;
        }
        let content = line.trim_start_matches(' ').trim_end_matches('\r');
        // The rest of a `---` line is at the document's top level.
        let indent = if first && doc.after_dashes {
            0
        } else {
            line.len() - line.trim_start_matches(' ').len()
        };
        first = false;
        if content.is_empty() || content.starts_with('#') {
            continue;
        }
        if let Some(item) = sequence_item(content) {
            // A sequence's items hold no field; skip what spans lines.
            while stack.last().is_some_and(|(i, _)| *i > indent) {
                stack.pop();
            }
            let item_indent = indent + (content.len() - item.len());
            match key_value(item) {
                Some((_, value)) => {
                    skip_multiline(strip_properties(value), item_indent, &mut lines)
                }
                None => skip_multiline(strip_properties(item), item_indent, &mut lines),
            }
            continue;
        }
        if indent == 0 && stack.is_empty() && content.starts_with('{') {
            // The whole document as one flow mapping.
            let flow = gather_flow(content, &mut lines);
            flow_fields(&[], &flow, &mut fields);
            continue;
        }
        let Some((key, value)) = key_value(content) else {
            skip_multiline(strip_properties(content), indent, &mut lines);
            continue;
        };
        while stack.last().is_some_and(|(i, _)| *i >= indent) {
            stack.pop();
        }
        let value = strip_properties(value);
        if value.is_empty() || value.starts_with('#') {
            stack.push((indent, key));
            continue;
        }
        // Only mappings three deep or less can hold a field.
        let mut path: Vec<&str> = Vec::new();
        if stack.len() <= 2 {
            path.extend(stack.iter().map(|(_, k)| *k));
            path.push(key);
        }
        if value.starts_with(['{', '[']) {
            let flow = gather_flow(value, &mut lines);
            if value.starts_with('{') && !path.is_empty() && leads_to_field(&path) {
                flow_fields(&path, &flow, &mut fields);
            }
        } else if value.starts_with(['|', '>']) {
            skip_block_scalar(indent, &mut lines);
        } else if !path.is_empty()
            && let Some(scalar) = scalar(value)
        {
            fields.set(&path, scalar);
        }
    }
    fields
}

type Lines<'a> = std::iter::Peekable<std::str::Lines<'a>>;

/// The rest of a sequence entry (`- x` gives `x`, `- - x` too), or `None`
/// when the line is not one.
fn sequence_item(content: &str) -> Option<&str> {
    let mut rest = content;
    let mut dash = false;
    while let Some(after) = rest.strip_prefix('-') {
        if !(after.is_empty() || after.starts_with([' ', '\t'])) {
            break;
        }
        dash = true;
        rest = after.trim_start_matches([' ', '\t']);
    }
    dash.then_some(rest)
}

/// Skips the lines a value continues on: a flow collection left open, or a block scalar.
fn skip_multiline<'a>(value: &'a str, indent: usize, lines: &mut Lines<'a>) {
    if value.starts_with(['{', '[']) {
        gather_flow(value, lines);
    } else if value.starts_with(['|', '>']) {
        skip_block_scalar(indent, lines);
    }
}

/// Skips a block scalar's lines: blank ones, and those indented deeper than its key.
fn skip_block_scalar(indent: usize, lines: &mut Lines<'_>) {
    while let Some(next) = lines.peek() {
        let content = next.trim_start_matches(' ');
        let deeper = next.len() - content.len() > indent;
        if !(deeper || content.trim().is_empty()) {
            break;
        }
        lines.next();
    }
}

/// A flow collection starting at `first`, with the lines it continues on
/// when it is not closed on its own line.
fn gather_flow<'a>(first: &'a str, lines: &mut Lines<'a>) -> Cow<'a, str> {
    let mut depth = FlowDepth::default();
    if let Some(end) = depth.feed(first) {
        return Cow::Borrowed(&first[..end]);
    }
    let mut text = first.to_owned();
    for line in lines.by_ref() {
        text.push('\n');
        if let Some(end) = depth.feed(line) {
            text.push_str(&line[..end]);
            return Cow::Owned(text);
        }
        text.push_str(line);
    }
    Cow::Owned(text)
}

/// Where flow collections close, fed line by line: quoted scalars and
/// comments skipped.
#[derive(Debug, Default)]
struct FlowDepth {
    depth: usize,
    quote: Option<u8>,
    escaped: bool,
}

impl FlowDepth {
    /// Returns the byte offset just after the outermost collection closes.
    fn feed(&mut self, line: &str) -> Option<usize> {
        let bytes = line.as_bytes();
        // The byte before (blanks as a space), to tell a quote that opens a
        // scalar from one inside a plain scalar (`[it's]`), and a comment
        // from a `#` inside a plain scalar.
        let mut last = b' ';
        let mut i = 0;
        while i < bytes.len() {
            let b = bytes[i];
            match self.quote {
                Some(b'"') => {
                    if self.escaped {
                        self.escaped = false;
                    } else if b == b'\\' {
                        self.escaped = true;
                    } else if b == b'"' {
                        self.quote = None;
                    }
                }
                Some(_) => {
                    if b == b'\'' {
                        if bytes.get(i + 1) == Some(&b'\'') {
                            i += 1;
                        } else {
                            self.quote = None;
                        }
                    }
                }
                None => match b {
                    b'"' | b'\'' if matches!(last, b'{' | b'[' | b',' | b':' | b' ') => {
                        self.quote = Some(b);
                    }
                    b'{' | b'[' => self.depth += 1,
                    b'}' | b']' => {
                        self.depth = self.depth.saturating_sub(1);
                        if self.depth == 0 {
                            return Some(i + 1);
                        }
                    }
                    b'#' if last == b' ' => {
                        // A comment runs to the end of its line.
                        match bytes[i..].iter().position(|&c| c == b'\n') {
                            Some(n) => i += n,
                            None => break,
                        }
                        continue;
                    }
                    _ => {}
                },
            }
            last = if matches!(b, b'\t' | b'\n' | b'\r') {
                b' '
            } else {
                b
            };
            i += 1;
        }
        None
    }
}

/// Finds the fields in a flow mapping (`{ name: x, namespace: acme }`) at `path`.
fn flow_fields(path: &[&str], flow: &str, fields: &mut Fields) {
    for (key, value) in flow_entries(flow) {
        let mut inner = path.to_vec();
        inner.push(key);
        let value = strip_properties(value);
        if value.starts_with('{') {
            if leads_to_field(&inner) {
                flow_fields(&inner, value, fields);
            }
        } else if !value.starts_with('[')
            && let Some(scalar) = scalar(value)
        {
            fields.set(&inner, scalar);
        }
    }
}

/// The entries of a flow mapping, each key (unquoted) with its value's text.
fn flow_entries(flow: &str) -> Vec<(&str, &str)> {
    let mut entries = Vec::new();
    let Some(body) = flow.strip_prefix('{') else {
        return entries;
    };
    let mut rest = body;
    loop {
        rest = skip_space(rest);
        if rest.is_empty() || rest.starts_with('}') {
            return entries;
        }
        let Some((key, after_key)) = flow_key(rest) else {
            return entries;
        };
        let end = flow_value_end(after_key);
        entries.push((key, after_key[..end].trim()));
        rest = &after_key[end..];
        match rest.strip_prefix(',') {
            Some(after) => rest = after,
            None => return entries,
        }
    }
}

/// A flow mapping's key and the text after its `:` (empty after a key without value).
fn flow_key(text: &str) -> Option<(&str, &str)> {
    if let Some((key, after)) = quoted(text) {
        let after = skip_space(after);
        return Some((key, after.strip_prefix(':').unwrap_or(after)));
    }
    let bytes = text.as_bytes();
    for (i, b) in bytes.iter().enumerate() {
        match b {
            b':' if matches!(
                bytes.get(i + 1),
                None | Some(b' ' | b'\t' | b'\n' | b'\r' | b',' | b'}' | b']')
            ) =>
            {
                return Some((text[..i].trim(), &text[i + 1..]));
            }
            b',' | b'}' => return Some((text[..i].trim(), &text[i..])),
            b'{' | b'[' | b'#' => return None,
            _ => {}
        }
    }
    None
}

/// The length of a flow value: up to the `,` or closing bracket after it.
fn flow_value_end(text: &str) -> usize {
    let mut depth = FlowDepth::default();
    let bytes = text.as_bytes();
    // Whether the value has begun: only its first character can open a quoted scalar.
    let mut started = false;
    let mut i = 0;
    while i < bytes.len() {
        let rest = &text[i..];
        let b = bytes[i];
        let first = !started && !b.is_ascii_whitespace();
        started |= first;
        if matches!(b, b'{' | b'[') {
            let end = match depth.feed(rest) {
                Some(end) => end,
                None => return text.len(),
            };
            i += end;
            continue;
        }
        if first && matches!(b, b'"' | b'\'') {
            match quoted_len(rest) {
                Some(len) => {
                    i += len;
                    continue;
                }
                None => return text.len(),
            }
        }
        if matches!(b, b',' | b'}' | b']') {
            return i;
        }
        if b == b'#' && (i == 0 || matches!(bytes[i - 1], b' ' | b'\t' | b'\n')) {
            // A comment runs to the end of its line.
            match rest.find('\n') {
                Some(n) => {
                    i += n;
                    continue;
                }
                None => return text.len(),
            }
        }
        i += 1;
    }
    text.len()
}

fn skip_space(text: &str) -> &str {
    let mut rest = text.trim_start();
    while rest.starts_with('#') {
        rest = rest.find('\n').map_or("", |n| &rest[n..]).trim_start();
    }
    rest
}

/// A block mapping's key and its value's text, when the line is `key: value`.
fn key_value(content: &str) -> Option<(&str, &str)> {
    if let Some((key, after)) = quoted(content) {
        let after = after.trim_start_matches([' ', '\t']);
        let value = after.strip_prefix(':')?;
        return (value.is_empty() || value.starts_with([' ', '\t']))
            .then(|| (key, value.trim_start()));
    }
    if content.starts_with(['{', '[', '?', '&', '*', '!', '|', '>', '%', '@', '`']) {
        return None;
    }
    let bytes = content.as_bytes();
    for (i, b) in bytes.iter().enumerate() {
        match b {
            b':' if matches!(bytes.get(i + 1), None | Some(b' ' | b'\t')) => {
                return Some((content[..i].trim_end(), content[i + 1..].trim_start()));
            }
            b'#' if i > 0 && matches!(bytes[i - 1], b' ' | b'\t') => return None,
            _ => {}
        }
    }
    None
}

/// Anchors (`&a`) and tags (`!!str`) before a value, dropped.
fn strip_properties(value: &str) -> &str {
    let mut rest = value.trim();
    while rest.starts_with(['&', '!']) {
        let end = rest.find([' ', '\t']).unwrap_or(rest.len());
        rest = rest[end..].trim_start();
    }
    rest
}

/// The length of a quoted scalar at the start of `text`, its quotes included.
fn quoted_len(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let quote = *bytes.first().filter(|b| matches!(b, b'"' | b'\''))?;
    let mut i = 1;
    while i < bytes.len() {
        let b = bytes[i];
        if quote == b'"' && b == b'\\' {
            i += 2;
            continue;
        }
        if b == quote {
            if quote == b'\'' && bytes.get(i + 1) == Some(&b'\'') {
                i += 2;
                continue;
            }
            return Some(i + 1);
        }
        i += 1;
    }
    None
}

/// A quoted scalar at the start of `text` (its content, without quotes)
/// and the text after it; `None` when it is not one or holds escapes
/// (`\x2e`, `''`), whose value the scan does not work out.
fn quoted(text: &str) -> Option<(&str, &str)> {
    let len = quoted_len(text)?;
    let inner = &text[1..len - 1];
    let escaped = if text.starts_with('"') {
        inner.contains('\\')
    } else {
        inner.contains("''")
    };
    (!escaped).then(|| (inner, &text[len..]))
}

/// A scalar value: quoted, or plain up to a comment. `None` for an alias
/// (`*a`), a quoted scalar with escapes, or nothing.
fn scalar(value: &str) -> Option<String> {
    if value.starts_with(['"', '\'']) {
        return quoted(value).map(|(s, _)| s.to_owned());
    }
    if value.starts_with(['*', '{', '[', '|', '>', '#']) {
        return None;
    }
    let end = value
        .as_bytes()
        .windows(2)
        .position(|w| matches!(w[0], b' ' | b'\t') && w[1] == b'#')
        .unwrap_or(value.len());
    let plain = value[..end].trim();
    (!plain.is_empty()).then(|| plain.to_owned())
}

#[cfg(test)]
mod tests {
    use zentralink_model::documents::{SourceFile, parse_documents};

    use super::*;

    fn zone(namespace: &str, connection: &str, zone: &str) -> ScannedZone {
        ScannedZone {
            namespace: namespace.into(),
            connection: connection.into(),
            zone: zone.into(),
        }
    }

    fn zones(text: &str) -> Vec<ScannedZone> {
        scan_text(text).zones
    }

    #[test]
    fn a_block_style_zone_is_found_before_its_record_sets() {
        let text = "apiVersion: dns.zentralink.net/v1alpha1\nkind: DnsZone\nmetadata:\n  name: acme\n  namespace: acme\nspec:\n  zone: acme.example.\n  providerRef:\n    name: pdns-main\n  recordSets:\n    - { name: www, type: A, values: [192.0.2.1] }\n";
        assert_eq!(
            zones(text),
            vec![zone("acme", "pdns-main", "acme.example.")]
        );
    }

    #[test]
    fn flow_style_metadata_and_provider_refs_are_read() {
        let text = "apiVersion: dns.zentralink.net/v1alpha1\nkind: DnsZone\nmetadata: { name: acme, namespace: acme }\nspec:\n  zone: acme.example.\n  providerRef: { name: pdns-main }\n  recordSets: []\n";
        assert_eq!(
            zones(text),
            vec![zone("acme", "pdns-main", "acme.example.")]
        );
    }

    #[test]
    fn a_document_written_as_one_flow_mapping_is_read() {
        let one_line = "{apiVersion: dns.zentralink.net/v1alpha1, kind: DnsZone, metadata: {name: a, namespace: acme}, spec: {recordSets: [{name: www, type: A, values: ['192.0.2.1']}], zone: a.example., providerRef: {name: p}}}\n";
        assert_eq!(zones(one_line), vec![zone("acme", "p", "a.example.")]);
        let json_like = "{\n  \"apiVersion\": \"dns.zentralink.net/v1alpha1\",\n  \"kind\": \"DnsZone\",\n  \"metadata\": {\"name\": \"a\", \"namespace\": \"acme\"},\n  \"spec\": {\n    \"zone\": \"a.example.\",\n    \"providerRef\": {\"name\": \"p\"},\n    \"recordSets\": [\n      {\"name\": \"www\", \"type\": \"A\", \"values\": [\"192.0.2.1\"]}\n    ]\n  }\n}\n";
        assert_eq!(zones(json_like), vec![zone("acme", "p", "a.example.")]);
    }

    #[test]
    fn a_flow_mapping_over_several_lines_is_read_whole() {
        let text = "kind: DnsZone\nmetadata: {\n  name: a,   # the object\n  namespace: acme\n}\nspec:\n  providerRef: {\n    name: p }\n  zone: a.example.\n";
        assert_eq!(zones(text), vec![zone("acme", "p", "a.example.")]);
    }

    #[test]
    fn comments_quotes_anchors_and_tags_are_understood() {
        let text = "# a zone\nkind: \"DnsZone\" # the kind\nmetadata:\n  # where it lives\n  name: 'a'\n  namespace: &ns acme   # a comment\nspec:\n  zone: !!str 'a.example.'\n  providerRef:\n    name: \"pdns\"  # after\n";
        assert_eq!(zones(text), vec![zone("acme", "pdns", "a.example.")]);
        let hash_in_value = "kind: DnsZone\nmetadata: {namespace: acme}\nspec:\n  zone: a.example.#not-a-comment\n  providerRef: {name: p}\n";
        assert_eq!(
            zones(hash_in_value),
            vec![zone("acme", "p", "a.example.#not-a-comment")]
        );
    }

    #[test]
    fn keys_in_any_order_and_at_other_depths_are_told_apart() {
        let text = "spec:\n  recordSets:\n  - name: www\n    zone: decoy.example.\n    type: A\n    values: [192.0.2.1]\n  - {name: x, providerRef: {name: decoy}}\n  providerRef:\n    name: real\n  zone: real.example.\nmetadata:\n  labels:\n    namespace: decoy\n  namespace: acme\nkind: DnsZone\n";
        assert_eq!(zones(text), vec![zone("acme", "real", "real.example.")]);
    }

    #[test]
    fn block_scalars_hide_nothing_that_looks_like_a_key() {
        let text = "kind: DnsZone\nmetadata:\n  namespace: acme\n  description: |\n    spec:\n      zone: decoy.example.\n\n    kind: Tenant\nspec:\n  zone: real.example.\n  providerRef: {name: p}\n";
        assert_eq!(zones(text), vec![zone("acme", "p", "real.example.")]);
    }

    #[test]
    fn several_documents_per_file_and_the_head_documents_are_kept() {
        let text = "---\napiVersion: dns.zentralink.net/v1alpha1\nkind: Tenant\nmetadata: {name: acme}\nspec: {displayName: Acme, namespaces: [acme], allowedDomains: [example.]}\n--- # the connection\napiVersion: dns.zentralink.net/v1alpha1\nkind: ProviderConnection\nmetadata: {name: p, namespace: acme}\nspec: {type: zonefile, zonefile: {directory: /tmp}}\n...\n---\nkind: DnsZone\nmetadata: {name: a, namespace: acme}\nspec: {zone: a.example., providerRef: {name: p}}\n---\nkind: TenantPolicy\nmetadata: {name: policy, namespace: acme}\n--- {kind: DnsZone, metadata: {namespace: acme}, spec: {zone: b.example., providerRef: {name: p}}}\n---\n";
        let scan = scan_text(text);
        assert_eq!(
            scan.zones,
            vec![
                zone("acme", "p", "a.example."),
                zone("acme", "p", "b.example.")
            ]
        );
        assert_eq!(
            scan.head,
            "---\napiVersion: dns.zentralink.net/v1alpha1\nkind: Tenant\nmetadata: {name: acme}\nspec: {displayName: Acme, namespaces: [acme], allowedDomains: [example.]}\n--- # the connection\napiVersion: dns.zentralink.net/v1alpha1\nkind: ProviderConnection\nmetadata: {name: p, namespace: acme}\nspec: {type: zonefile, zonefile: {directory: /tmp}}\n"
        );
        let (objects, errors) = parse_documents(&SourceFile::new("head.yaml", scan.head));
        assert!(errors.is_empty(), "{errors}");
        assert_eq!(objects.len(), 2);
    }

    #[test]
    fn the_first_document_without_a_marker_and_a_byte_order_mark_are_read() {
        let text = "\u{feff}kind: Tenant\nmetadata: {name: acme}\n---\nkind: DnsZone\nmetadata: {namespace: acme}\nspec: {zone: a.example., providerRef: {name: p}}";
        let scan = scan_text(text);
        assert_eq!(scan.zones, vec![zone("acme", "p", "a.example.")]);
        assert_eq!(scan.head, "---\nkind: Tenant\nmetadata: {name: acme}\n");
    }

    #[test]
    fn what_the_scan_cannot_work_out_is_left_out() {
        for text in [
            // no namespace
            "kind: DnsZone\nmetadata: {name: a}\nspec: {zone: a.example., providerRef: {name: p}}\n",
            // an alias
            "kind: DnsZone\nmetadata: {namespace: acme}\nspec: {zone: *z, providerRef: {name: p}}\n",
            // escapes the scan does not decode
            "kind: DnsZone\nmetadata: {namespace: acme}\nspec: {zone: \"a\\x2eexample.\", providerRef: {name: p}}\n",
            // a value on the next line
            "kind: DnsZone\nmetadata:\n  namespace:\n    acme\nspec: {zone: a.example., providerRef: {name: p}}\n",
            // an explicit key
            "kind: DnsZone\nmetadata: {namespace: acme}\nspec:\n  ? zone\n  : a.example.\n  providerRef: {name: p}\n",
            // not a DnsZone
            "kind: DnsSnapshot\nmetadata: {namespace: acme}\nspec: {zone: a.example., providerRef: {name: p}}\n",
            // a key without the space after its colon is not a key
            "kind: DnsZone\nmetadata: {namespace: acme}\nspec:\n  zone:a.example.\n  providerRef: {name: p}\n",
        ] {
            assert_eq!(zones(text), vec![], "{text}");
        }
    }

    #[test]
    fn a_large_zone_is_found_from_the_lines_before_its_record_sets() {
        let mut text = String::from(
            "kind: DnsZone\nmetadata: {name: a, namespace: acme}\nspec:\n  zone: a.example.\n  providerRef: {name: p}\n  recordSets:\n",
        );
        for i in 0..1000 {
            text.push_str(&format!(
                "    - {{ name: host-{i}, type: A, values: [192.0.2.1] }}\n"
            ));
        }
        // Found before the record sets: the fields are complete at line 5.
        let doc = &documents(&text)[0];
        let fields = scan_document(doc);
        assert!(fields.complete());
        assert_eq!(zones(&text), vec![zone("acme", "p", "a.example.")]);
    }
}
