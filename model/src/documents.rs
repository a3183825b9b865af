//! Parsing multi-document YAML text into ZentraLink resources, with errors
//! that name the file, line and field path. Pure: callers pass the text.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, OnceLock};

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_yaml::Value;
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

use crate::diagnostics::{Diagnostic, Diagnostics};
use crate::resources::{
    API_VERSION, Approval, DnsChangeRequest, DnsSnapshot, DnsZone, ProviderConnection, Tenant,
    TenantPolicy,
};

/// The kinds ZentraLink reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Tenant,
    TenantPolicy,
    ProviderConnection,
    DnsZone,
    DnsChangeRequest,
    Approval,
    DnsSnapshot,
}

impl Kind {
    pub const ALL: [Kind; 7] = [
        Kind::Tenant,
        Kind::TenantPolicy,
        Kind::ProviderConnection,
        Kind::DnsZone,
        Kind::DnsChangeRequest,
        Kind::Approval,
        Kind::DnsSnapshot,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Tenant => "Tenant",
            Kind::TenantPolicy => "TenantPolicy",
            Kind::ProviderConnection => "ProviderConnection",
            Kind::DnsZone => "DnsZone",
            Kind::DnsChangeRequest => "DnsChangeRequest",
            Kind::Approval => "Approval",
            Kind::DnsSnapshot => "DnsSnapshot",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Cluster-scoped kinds have no namespace.
    pub fn namespaced(self) -> bool {
        !matches!(self, Kind::Tenant)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One resource read from a document.
#[derive(Debug, Clone)]
pub enum Resource {
    Tenant(Tenant),
    TenantPolicy(TenantPolicy),
    ProviderConnection(ProviderConnection),
    DnsZone(DnsZone),
    DnsChangeRequest(DnsChangeRequest),
    Approval(Approval),
    DnsSnapshot(DnsSnapshot),
}

impl Resource {
    pub fn kind(&self) -> Kind {
        match self {
            Resource::Tenant(_) => Kind::Tenant,
            Resource::TenantPolicy(_) => Kind::TenantPolicy,
            Resource::ProviderConnection(_) => Kind::ProviderConnection,
            Resource::DnsZone(_) => Kind::DnsZone,
            Resource::DnsChangeRequest(_) => Kind::DnsChangeRequest,
            Resource::Approval(_) => Kind::Approval,
            Resource::DnsSnapshot(_) => Kind::DnsSnapshot,
        }
    }

    fn meta(&self) -> &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
        match self {
            Resource::Tenant(o) => &o.metadata,
            Resource::TenantPolicy(o) => &o.metadata,
            Resource::ProviderConnection(o) => &o.metadata,
            Resource::DnsZone(o) => &o.metadata,
            Resource::DnsChangeRequest(o) => &o.metadata,
            Resource::Approval(o) => &o.metadata,
            Resource::DnsSnapshot(o) => &o.metadata,
        }
    }

    pub fn name(&self) -> &str {
        self.meta().name.as_deref().unwrap_or("")
    }

    pub fn namespace(&self) -> Option<&str> {
        self.meta().namespace.as_deref()
    }
}

/// A file's text and, built on first use, the line of every field path in it.
#[derive(Debug)]
pub struct SourceFile {
    /// The file's name, shared with the [`Location`] of every object read from it.
    pub name: Arc<str>,
    text: String,
    index: OnceLock<Vec<DocumentIndex>>,
    /// Where each document starts, without the field paths: what a
    /// [`Location`] needs, found without building the whole index.
    starts: OnceLock<Vec<DocumentStart>>,
}

impl SourceFile {
    /// A file's text; a UTF-8 byte-order mark before it is dropped.
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> Arc<Self> {
        let mut text = text.into();
        if text.starts_with('\u{feff}') {
            text.drain(..'\u{feff}'.len_utf8());
        }
        Arc::new(Self {
            name: Arc::from(name.into()),
            text,
            index: OnceLock::new(),
            starts: OnceLock::new(),
        })
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    fn documents(&self) -> &[DocumentIndex] {
        self.index.get_or_init(|| index_documents(&self.text))
    }

    /// The line where document `n`'s content starts: from the whole index
    /// when an error has already built it, else from a scan that records
    /// only where documents start.
    fn document_line(&self, n: usize) -> Option<usize> {
        if let Some(docs) = self.index.get() {
            let doc = docs.get(n)?;
            return Some(doc.first_content_line.unwrap_or(doc.start_line));
        }
        let start = self
            .starts
            .get_or_init(|| document_starts(&self.text))
            .get(n)?;
        Some(start.first_content_line.unwrap_or(start.start_line))
    }
}

/// Where a loaded object came from: its file and document. It keeps the
/// file's text (and, once an error needed it, the line of every field path),
/// so validation turns it into a [`Location`] for what it keeps.
#[derive(Debug, Clone)]
pub struct Origin {
    pub file: Arc<SourceFile>,
    /// 0-based document number in the file.
    pub document: usize,
}

impl Origin {
    /// The line where the document's content starts (after any `---`).
    pub fn line(&self) -> Option<usize> {
        self.file.document_line(self.document)
    }

    /// The line of a field path (`spec.recordSets[3].values[0]`), or of the
    /// nearest enclosing field that exists, or of the document.
    pub fn line_of(&self, path: &str) -> Option<usize> {
        let doc = self.file.documents().get(self.document)?;
        let mut p = path;
        loop {
            if let Some(line) = doc.lines.get(p) {
                return Some(*line);
            }
            match p.rfind(['.', '[']) {
                Some(cut) => p = &p[..cut],
                None => return Some(doc.first_content_line.unwrap_or(doc.start_line)),
            }
        }
    }

    pub fn diagnostic(&self, path: impl Into<String>, message: impl Into<String>) -> Diagnostic {
        let path = path.into();
        Diagnostic {
            file: self.file.name.to_string(),
            line: self.line_of(&path),
            path,
            message: message.into(),
        }
        .bounded()
    }

    /// The file's name and the document's line, without the file's text.
    pub fn location(&self) -> Location {
        Location {
            file: Arc::clone(&self.file.name),
            line: self.line(),
        }
    }

    /// The location and the lines of the [`KEPT_FIELDS`], without the
    /// file's text: what checks made after the file is dropped name.
    pub fn spot(&self) -> Spot {
        let lines = match self.file.index.get() {
            Some(docs) => docs.get(self.document).map(|doc| SpotLines {
                document: doc.first_content_line.unwrap_or(doc.start_line),
                kept: KEPT_FIELDS.map(|f| doc.lines.get(f).copied()),
            }),
            None => self
                .file
                .starts
                .get_or_init(|| document_starts(&self.file.text))
                .get(self.document)
                .map(|start| SpotLines {
                    document: start.first_content_line.unwrap_or(start.start_line),
                    kept: start.kept,
                }),
        };
        Spot {
            file: Arc::clone(&self.file.name),
            lines,
        }
    }
}

/// Where an object was declared, with the lines of its [`KEPT_FIELDS`]: what
/// a zone keeps from its [`Origin`] while the rest of the manifests load, so
/// that its file's text can go. Its errors read as [`Origin`]'s do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spot {
    file: Arc<str>,
    /// `None` when the document was not found (as [`Origin::line_of`] then says).
    lines: Option<SpotLines>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct SpotLines {
    /// Where the document's content starts.
    document: usize,
    kept: [Option<usize>; KEPT_FIELDS.len()],
}

impl Spot {
    /// As [`Origin::location`].
    pub fn location(&self) -> Location {
        Location {
            file: Arc::clone(&self.file),
            line: self.lines.map(|l| l.document),
        }
    }

    /// As [`Origin::line_of`], for a path of [`KEPT_FIELDS`] (any other path
    /// is taken as its nearest enclosing kept field).
    pub fn line_of(&self, path: &str) -> Option<usize> {
        let lines = self.lines?;
        debug_assert!(
            KEPT_FIELDS.contains(&path),
            "{path} is not a kept field's path"
        );
        let mut p = path;
        loop {
            if let Some(i) = KEPT_FIELDS.iter().position(|f| *f == p)
                && let Some(line) = lines.kept[i]
            {
                return Some(line);
            }
            match p.rfind(['.', '[']) {
                Some(cut) => p = &p[..cut],
                None => return Some(lines.document),
            }
        }
    }

    /// As [`Origin::diagnostic`], for a path of [`KEPT_FIELDS`].
    pub fn diagnostic(&self, path: &str, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            file: self.file.to_string(),
            line: self.line_of(path),
            path: path.to_owned(),
            message: message.into(),
        }
        .bounded()
    }
}

/// Where a validated object was declared: the file's name and the line its
/// document starts at. What messages after validation name; the file's text
/// is not kept (a catalog of 10,000 zones would otherwise hold every manifest).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The file (as the user named it) or another source name (`(store)`).
    pub file: Arc<str>,
    /// 1-based line where the document's content starts, when known.
    pub line: Option<usize>,
}

impl Location {
    /// A location with no line: an object that came from somewhere other than a file.
    pub fn named(source: &str) -> Self {
        Self {
            file: Arc::from(source),
            line: None,
        }
    }
}

/// A resource and where it came from.
#[derive(Debug, Clone)]
pub struct LoadedObject {
    pub resource: Resource,
    pub origin: Origin,
}

/// Parses every document of a YAML file. Returns the objects that parsed
/// and an error for each document that did not.
///
/// Valid files take a fast path that deserializes each `spec` straight into
/// its type; when anything is wrong, the file is read again on the careful
/// path, which finds every error with its line and field path.
pub fn parse_documents(file: &Arc<SourceFile>) -> (Vec<LoadedObject>, Diagnostics) {
    if let Err(d) = check_nesting(file) {
        return (Vec::new(), Diagnostics(vec![d]));
    }
    if let Some(objects) = fast::parse(file) {
        return (objects, Diagnostics::default());
    }
    parse_documents_carefully(file)
}

fn parse_documents_carefully(file: &Arc<SourceFile>) -> (Vec<LoadedObject>, Diagnostics) {
    let mut objects = Vec::new();
    let mut errors = Diagnostics::default();
    for (document, de) in serde_yaml::Deserializer::from_str(file.text()).enumerate() {
        let origin = Origin {
            file: Arc::clone(file),
            document,
        };
        let value = match Value::deserialize(de) {
            Ok(v) => v,
            Err(e) => {
                let message = strip_location(&e.to_string());
                let duplicate = message
                    .contains("duplicate entry")
                    .then(|| file.documents().get(document))
                    .flatten()
                    .and_then(|doc| doc.duplicates.first().cloned());
                errors.push(match duplicate {
                    Some((path, line)) => Diagnostic {
                        file: file.name.to_string(),
                        line: Some(line),
                        message: "this key is given twice in the same mapping; a reviewer would read one and the operator apply the other: keep one".into(),
                        path,
                    },
                    None => Diagnostic {
                        file: file.name.to_string(),
                        line: e.location().map(|l| l.line()),
                        path: String::new(),
                        message: format!("not valid YAML: {message}"),
                    },
                }
                .bounded());
                // The YAML stream cannot be read past a syntax error.
                break;
            }
        };
        if value.is_null() {
            continue;
        }
        match parse_object(value, &origin) {
            Ok(resource) => objects.push(LoadedObject { resource, origin }),
            Err(d) => errors.push(d),
        }
    }
    (objects, errors)
}

mod events;
mod fast;

/// The deepest nesting of mappings and sequences a document may have. Real
/// manifests nest six levels; the YAML parser takes time that grows with the
/// square of the depth, so deeper input is refused before it is parsed.
pub const MAX_NESTING: usize = 64;

/// Refuses input nested deeper than [`MAX_NESTING`], in time linear in its
/// size. A byte scan bounds the depth from above (flow brackets, indentation,
/// compact `- - -` sequences); only when that bound is high does an event
/// parser that stops at the limit decide.
fn check_nesting(file: &SourceFile) -> Result<(), Diagnostic> {
    let text = file.text();
    let mut brackets = 0usize;
    let mut max_brackets = 0usize;
    let mut max_indent = 0usize;
    let mut max_dashes = 0usize;
    for line in text.lines() {
        let indent = line.len() - line.trim_start_matches([' ', '\t']).len();
        max_indent = max_indent.max(indent);
        max_dashes = max_dashes.max(line.matches("- ").count());
        for b in line.bytes() {
            match b {
                b'[' | b'{' => {
                    brackets += 1;
                    max_brackets = max_brackets.max(brackets);
                }
                b']' | b'}' => brackets = brackets.saturating_sub(1),
                _ => {}
            }
        }
    }
    if max_brackets <= MAX_NESTING && max_indent / 2 + max_dashes <= MAX_NESTING {
        return Ok(());
    }
    let mut parser = Parser::new_from_str(text);
    let mut depth = 0usize;
    loop {
        match parser.next_token() {
            Ok((Event::SequenceStart(..) | Event::MappingStart(..), mark)) => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Err(too_deep(file, mark.line()));
                }
            }
            Ok((Event::SequenceEnd | Event::MappingEnd, _)) => depth = depth.saturating_sub(1),
            Ok((Event::StreamEnd, _)) => return Ok(()),
            Ok(_) => {}
            // The parser's own recursion limit is the same refusal; other
            // syntax errors are reported, with their line, by the parse itself.
            Err(e) if e.info().contains("recursion limit") => {
                return Err(too_deep(file, e.marker().line()));
            }
            Err(_) => return Ok(()),
        }
    }
}

fn too_deep(file: &SourceFile, line: usize) -> Diagnostic {
    Diagnostic {
        file: file.name.to_string(),
        line: Some(line),
        path: String::new(),
        message: format!(
            "the YAML is nested more than {MAX_NESTING} levels deep; no ZentraLink manifest needs that, so it is not read"
        ),
    }
}

fn strip_location(msg: &str) -> String {
    match msg.find(" at line ") {
        Some(i) => msg[..i].to_owned(),
        None => msg.to_owned(),
    }
}

const TOP_LEVEL: [&str; 4] = ["apiVersion", "kind", "metadata", "spec"];
const METADATA: [&str; 4] = ["name", "namespace", "labels", "annotations"];

fn parse_object(value: Value, origin: &Origin) -> Result<Resource, Diagnostic> {
    let Value::Mapping(map) = &value else {
        return Err(origin.diagnostic(
            "",
            "a document must be a mapping with apiVersion, kind, metadata and spec",
        ));
    };
    for key in map.keys() {
        let k = key.as_str().unwrap_or("");
        if k == "status" {
            return Err(origin.diagnostic(
                "status",
                "status is written by the operator; remove it from the manifest",
            ));
        }
        if !TOP_LEVEL.contains(&k) {
            return Err(origin.diagnostic(
                k,
                format!("unknown field {k:?}; expected one of apiVersion, kind, metadata, spec"),
            ));
        }
    }
    let api_version = map.get("apiVersion").and_then(Value::as_str);
    match api_version {
        Some(API_VERSION) => {}
        Some(other) => {
            return Err(origin.diagnostic(
                "apiVersion",
                format!("unknown apiVersion {other:?}; expected {API_VERSION}"),
            ));
        }
        None => {
            return Err(origin.diagnostic(
                "apiVersion",
                format!("apiVersion is required ({API_VERSION})"),
            ));
        }
    }
    let kind_str = map
        .get("kind")
        .and_then(Value::as_str)
        .ok_or_else(|| origin.diagnostic("kind", "kind is required"))?;
    let kind = Kind::parse(kind_str).ok_or_else(|| {
        origin.diagnostic(
            "kind",
            format!(
                "unknown kind {kind_str:?}; expected one of {}",
                Kind::ALL.map(Kind::as_str).join(", ")
            ),
        )
    })?;
    check_metadata(map.get("metadata"), kind, origin)?;
    if map.get("spec").is_none() {
        return Err(origin.diagnostic("spec", "spec is required"));
    }
    Ok(match kind {
        Kind::Tenant => Resource::Tenant(typed(value, origin)?),
        Kind::TenantPolicy => Resource::TenantPolicy(typed(value, origin)?),
        Kind::ProviderConnection => Resource::ProviderConnection(typed(value, origin)?),
        Kind::DnsZone => Resource::DnsZone(typed(value, origin)?),
        Kind::DnsChangeRequest => Resource::DnsChangeRequest(typed(value, origin)?),
        Kind::Approval => Resource::Approval(typed(value, origin)?),
        Kind::DnsSnapshot => Resource::DnsSnapshot(typed(value, origin)?),
    })
}

fn check_metadata(meta: Option<&Value>, kind: Kind, origin: &Origin) -> Result<(), Diagnostic> {
    let Some(Value::Mapping(meta)) = meta else {
        return Err(origin.diagnostic("metadata", "metadata with a name is required"));
    };
    for key in meta.keys() {
        let k = key.as_str().unwrap_or("");
        if !METADATA.contains(&k) {
            return Err(origin.diagnostic(
                format!("metadata.{k}"),
                format!(
                    "unknown field {k:?}; expected one of {}",
                    METADATA.join(", ")
                ),
            ));
        }
    }
    match meta.get("name").and_then(Value::as_str) {
        None => return Err(origin.diagnostic("metadata.name", "metadata.name is required")),
        Some(name) => check_object_name(name).map_err(|m| origin.diagnostic("metadata.name", m))?,
    }
    let namespace = meta.get("namespace").and_then(Value::as_str);
    match (kind.namespaced(), namespace) {
        (true, None) => Err(origin.diagnostic(
            "metadata.namespace",
            format!("{kind} is namespaced: metadata.namespace is required"),
        )),
        (false, Some(_)) => Err(origin.diagnostic(
            "metadata.namespace",
            format!("{kind} is cluster-scoped: remove metadata.namespace"),
        )),
        (true, Some(ns)) => {
            check_namespace_name(ns).map_err(|m| origin.diagnostic("metadata.namespace", m))
        }
        (false, None) => Ok(()),
    }
}

/// Object names follow Kubernetes' DNS-1123 subdomain rule: at most 253
/// characters, dot-separated labels of lower-case letters, digits and '-',
/// each starting and ending with a letter or digit.
pub fn check_object_name(name: &str) -> Result<(), String> {
    let label_ok = |label: &str| {
        !label.is_empty()
            && label
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && label
                .bytes()
                .next()
                .is_some_and(|b| b.is_ascii_alphanumeric())
            && label
                .bytes()
                .last()
                .is_some_and(|b| b.is_ascii_alphanumeric())
    };
    if !name.is_empty() && name.len() <= 253 && name.split('.').all(label_ok) {
        Ok(())
    } else {
        Err(format!(
            "{:?} is not a valid object name (a DNS subdomain: dot-separated parts of lower-case letters, digits and '-', each starting and ending with a letter or digit, at most 253 characters)",
            crate::secrets::shorten(name, 80)
        ))
    }
}

/// Namespace names follow Kubernetes' DNS-1123 label rule.
pub fn check_namespace_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric())
        && name
            .bytes()
            .last()
            .is_some_and(|b| b.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{:?} is not a valid namespace name (lower-case letters, digits and '-', at most 63 characters)",
            crate::secrets::shorten(name, 80)
        ))
    }
}

fn typed<T: DeserializeOwned>(value: Value, origin: &Origin) -> Result<T, Diagnostic> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let path = if path == "." { String::new() } else { path };
        let message = e.into_inner().to_string();
        origin.diagnostic(path, message)
    })
}

/// Field path → line, for one document.
#[derive(Debug, Default)]
struct DocumentIndex {
    start_line: usize,
    /// Line of the first key or value: where a reader sees the document begin.
    first_content_line: Option<usize>,
    lines: HashMap<String, usize>,
    /// Keys given twice in one mapping: path and line of the second.
    duplicates: Vec<(String, usize)>,
}

enum Frame {
    Map {
        path: String,
        key: Option<String>,
        keys: std::collections::HashSet<String>,
    },
    Seq {
        path: String,
        next: usize,
    },
}

#[derive(Default)]
struct Indexer {
    docs: Vec<DocumentIndex>,
    current: Option<DocumentIndex>,
    stack: Vec<Frame>,
}

fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_owned()
    } else {
        format!("{parent}.{key}")
    }
}

impl Indexer {
    /// The path of the value that starts now, consuming the pending key or index.
    fn value_path(&mut self) -> String {
        match self.stack.last_mut() {
            Some(Frame::Map { path, key, .. }) => match key.take() {
                Some(k) => join(path, &k),
                None => path.clone(),
            },
            Some(Frame::Seq { path, next }) => {
                let p = format!("{path}[{next}]");
                *next += 1;
                p
            }
            None => String::new(),
        }
    }

    fn record(&mut self, path: String, line: usize) {
        if let Some(doc) = self.current.as_mut() {
            doc.lines.entry(path).or_insert(line);
        }
    }

    fn expecting_key(&self) -> bool {
        matches!(self.stack.last(), Some(Frame::Map { key: None, .. }))
    }
}

impl MarkedEventReceiver for Indexer {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        let line = mark.line();
        match ev {
            Event::DocumentStart => {
                self.stack.clear();
                self.current = Some(DocumentIndex {
                    start_line: line,
                    first_content_line: None,
                    lines: HashMap::new(),
                    duplicates: Vec::new(),
                });
            }
            Event::DocumentEnd => {
                if let Some(doc) = self.current.take() {
                    self.docs.push(doc);
                }
            }
            Event::Scalar(text, ..) => {
                if let Some(doc) = self.current.as_mut() {
                    doc.first_content_line.get_or_insert(line);
                }
                if self.expecting_key() {
                    if let Some(Frame::Map { path, key, keys }) = self.stack.last_mut() {
                        let p = join(path, &text);
                        let repeated = !keys.insert(text.clone());
                        *key = Some(text);
                        if repeated && let Some(doc) = self.current.as_mut() {
                            doc.duplicates.push((p.clone(), line));
                        }
                        self.record(p, line);
                    }
                } else {
                    let p = self.value_path();
                    self.record(p, line);
                }
            }
            Event::Alias(_) => {
                let p = self.value_path();
                self.record(p, line);
            }
            Event::MappingStart(..) => {
                let p = self.value_path();
                self.record(p.clone(), line);
                self.stack.push(Frame::Map {
                    path: p,
                    key: None,
                    keys: std::collections::HashSet::new(),
                });
            }
            Event::SequenceStart(..) => {
                let p = self.value_path();
                self.record(p.clone(), line);
                self.stack.push(Frame::Seq { path: p, next: 0 });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
            }
            Event::Nothing | Event::StreamStart | Event::StreamEnd => {}
        }
    }
}

/// Where one document starts (as [`DocumentIndex`] says it), and the lines
/// of the [`KEPT_FIELDS`] it has.
#[derive(Debug, Clone, Copy)]
struct DocumentStart {
    start_line: usize,
    first_content_line: Option<usize>,
    kept: [Option<usize>; KEPT_FIELDS.len()],
}

/// The field paths whose line a [`Spot`] keeps: those the checks across
/// objects name once the file's text is gone (a zone's namespace, its
/// `spec.zone` and connection), with every field that encloses them, so
/// that [`Spot::line_of`] finds what [`Origin::line_of`] finds.
pub const KEPT_FIELDS: [&str; 6] = [
    "metadata",
    "metadata.namespace",
    "spec",
    "spec.zone",
    "spec.providerRef",
    "spec.providerRef.name",
];

/// The paths of [`KEPT_FIELDS`] that hold mappings: the only ones whose
/// children the start scan follows.
const KEPT_PARENTS: [&str; 4] = ["", "metadata", "spec", "spec.providerRef"];

/// A mapping or sequence open in the start scan. A path is followed only
/// while it may lead to a kept field; `None` elsewhere, so that no path is
/// formatted for the record sets.
enum ShallowFrame {
    Map {
        path: Option<String>,
        /// `None` while a key is expected; then the path of the value to
        /// come, itself `None` when that value leads to no kept field.
        key: Option<Option<String>>,
    },
    Seq,
}

/// Records where documents start, their first scalar and the lines of the
/// [`KEPT_FIELDS`], as [`Indexer`] would; no other path is formatted, so
/// locating 10,000 zones costs one scan of their text and no memory beyond
/// the list.
#[derive(Default)]
struct StartScanner {
    docs: Vec<DocumentStart>,
    current: Option<DocumentStart>,
    stack: Vec<ShallowFrame>,
}

impl StartScanner {
    /// The path of the value that starts now, when it may be kept, consuming
    /// the pending key or index (as [`Indexer::value_path`]).
    fn value_path(&mut self) -> Option<String> {
        match self.stack.last_mut() {
            Some(ShallowFrame::Map { path, key }) => match key.take() {
                Some(value) => value,
                // A mapping or sequence used as a key: its parent's path, as the index has it.
                None => path.clone(),
            },
            Some(ShallowFrame::Seq) => None,
            None => Some(String::new()),
        }
    }

    /// Keeps the line of a kept field (the first time, as the index does).
    fn record(&mut self, path: Option<&str>, line: usize) {
        let (Some(path), Some(doc)) = (path, self.current.as_mut()) else {
            return;
        };
        if let Some(i) = KEPT_FIELDS.iter().position(|f| *f == path) {
            doc.kept[i].get_or_insert(line);
        }
    }
}

/// True when the path is a kept field or encloses one.
fn leads_to_kept(path: &str) -> bool {
    KEPT_FIELDS.iter().any(|f| {
        f.strip_prefix(path)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('.'))
    })
}

impl MarkedEventReceiver for StartScanner {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        let line = mark.line();
        match ev {
            Event::DocumentStart => {
                self.stack.clear();
                self.current = Some(DocumentStart {
                    start_line: line,
                    first_content_line: None,
                    kept: [None; KEPT_FIELDS.len()],
                });
            }
            Event::DocumentEnd => {
                if let Some(doc) = self.current.take() {
                    self.docs.push(doc);
                }
            }
            Event::Scalar(text, ..) => {
                if let Some(doc) = self.current.as_mut() {
                    doc.first_content_line.get_or_insert(line);
                }
                if let Some(ShallowFrame::Map { path, key: None }) = self.stack.last() {
                    let value = path.as_deref().map(|p| join(p, &text));
                    self.record(value.as_deref(), line);
                    if let Some(ShallowFrame::Map { key, .. }) = self.stack.last_mut() {
                        *key = Some(value.filter(|v| leads_to_kept(v)));
                    }
                } else {
                    let path = self.value_path();
                    self.record(path.as_deref(), line);
                }
            }
            Event::Alias(_) => {
                let path = self.value_path();
                self.record(path.as_deref(), line);
            }
            Event::MappingStart(..) => {
                let path = self.value_path();
                self.record(path.as_deref(), line);
                self.stack.push(ShallowFrame::Map {
                    path: path.filter(|p| KEPT_PARENTS.contains(&p.as_str())),
                    key: None,
                });
            }
            Event::SequenceStart(..) => {
                let path = self.value_path();
                self.record(path.as_deref(), line);
                self.stack.push(ShallowFrame::Seq);
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
            }
            Event::Nothing | Event::StreamStart | Event::StreamEnd => {}
        }
    }
}

fn document_starts(text: &str) -> Vec<DocumentStart> {
    let mut scanner = StartScanner::default();
    let mut parser = Parser::new_from_str(text);
    // As index_documents: a syntax error stops the scan where it is.
    let _ = parser.load(&mut scanner, true);
    if let Some(doc) = scanner.current.take() {
        scanner.docs.push(doc);
    }
    scanner.docs
}

fn index_documents(text: &str) -> Vec<DocumentIndex> {
    let mut indexer = Indexer::default();
    let mut parser = Parser::new_from_str(text);
    // A syntax error stops the index where it is; lines found so far stay usable.
    let _ = parser.load(&mut indexer, true);
    if let Some(doc) = indexer.current.take() {
        indexer.docs.push(doc);
    }
    indexer.docs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> (Vec<LoadedObject>, Diagnostics) {
        parse_documents(&SourceFile::new("zones/acme.yaml", text))
    }

    const ZONE: &str = "\
apiVersion: dns.zentralink.net/v1alpha1
kind: DnsZone
metadata:
  name: acme
  namespace: acme
spec:
  zone: acme.example.
  providerRef: { name: files }
  recordSets:
    - name: www
      type: A
      values:
        - 192.0.2.1
        - 192.0.2.2
";

    #[test]
    fn parses_a_zone_and_indexes_lines() {
        let (objects, errors) = parse(ZONE);
        assert!(errors.is_empty(), "{errors}");
        assert_eq!(objects.len(), 1);
        let origin = &objects[0].origin;
        assert_eq!(origin.line(), Some(1));
        assert_eq!(origin.line_of("spec.zone"), Some(7));
        assert_eq!(origin.line_of("spec.recordSets[0].values[1]"), Some(14));
        assert_eq!(origin.line_of("spec.recordSets[0].type"), Some(11));
        // a path that does not exist falls back to its nearest parent
        assert_eq!(origin.line_of("spec.recordSets[0].ttl"), Some(10));
    }

    #[test]
    fn document_lines_without_the_index_are_the_index_lines() {
        let text = format!(
            "# leading comment\n\n{ZONE}---\n# c\n\n{}...\n---\n{ZONE}",
            ZONE.replace("name: acme\n", "name: acme2\n")
        );
        let light = SourceFile::new("a.yaml", text.as_str());
        let lines: Vec<_> = (0..4).map(|n| light.document_line(n)).collect();
        assert!(light.index.get().is_none(), "the whole index was not built");
        let full = SourceFile::new("a.yaml", text.as_str());
        let indexed: Vec<_> = full
            .documents()
            .iter()
            .map(|d| Some(d.first_content_line.unwrap_or(d.start_line)))
            .chain([None])
            .collect();
        assert_eq!(lines, indexed);
        assert_eq!(lines, [Some(3), Some(20), Some(36), None]);
    }

    #[test]
    fn second_document_lines_are_absolute() {
        let text = format!(
            "{ZONE}---\n{}",
            ZONE.replace("name: acme\n", "name: acme2\n")
        );
        let (objects, errors) = parse(&text);
        assert!(errors.is_empty(), "{errors}");
        assert_eq!(objects.len(), 2);
        assert_eq!(objects[1].origin.line_of("spec.zone"), Some(22));
    }

    #[test]
    fn unknown_field_names_file_line_and_path() {
        let text = ZONE.replace("      type: A\n", "      type: A\n      tll: 300\n");
        let (_, errors) = parse(&text);
        assert_eq!(errors.len(), 1);
        let e = &errors.0[0];
        assert_eq!(e.path, "spec.recordSets[0].tll");
        assert_eq!(e.line, Some(12));
        assert!(e.message.contains("unknown field `tll`"), "{e}");
        assert!(
            e.to_string()
                .starts_with("zones/acme.yaml:12: spec.recordSets[0].tll: "),
            "{e}"
        );
    }

    #[test]
    fn wrong_type_names_the_field() {
        let text = ZONE.replace("      type: A\n", "      type: A\n      ttl: soon\n");
        let (_, errors) = parse(&text);
        assert_eq!(errors.0[0].path, "spec.recordSets[0].ttl");
        assert_eq!(errors.0[0].line, Some(12));
    }

    #[test]
    fn unknown_kind_and_api_version() {
        let (_, errors) = parse(&ZONE.replace("kind: DnsZone", "kind: DnsZoen"));
        assert!(
            errors.0[0].message.contains("unknown kind \"DnsZoen\""),
            "{}",
            errors
        );
        assert_eq!(errors.0[0].line, Some(2));
        let (_, errors) = parse(&ZONE.replace("v1alpha1", "v1"));
        assert!(
            errors.0[0].message.contains("unknown apiVersion"),
            "{}",
            errors
        );
    }

    #[test]
    fn fast_and_careful_paths_agree() {
        let text = format!(
            "{ZONE}---\n---\n{}",
            ZONE.replace("name: acme\n", "name: acme2\n")
        );
        let file = SourceFile::new("zones/acme.yaml", text.as_str());
        let fast = fast::parse(&file).unwrap_or_else(|| panic!("valid input takes the fast path"));
        let (careful, errors) = parse_documents_carefully(&file);
        assert!(errors.is_empty());
        assert_eq!(fast.len(), 2);
        for (f, c) in fast.iter().zip(&careful) {
            assert_eq!(format!("{:?}", f.resource), format!("{:?}", c.resource));
            assert_eq!(f.origin.document, c.origin.document);
        }
        // kind after spec still loads, through the careful path
        let reordered = "apiVersion: dns.zentralink.net/v1alpha1\nmetadata: { name: t }\nspec: { displayName: T, namespaces: [t], allowedDomains: [t.example.] }\nkind: Tenant\n";
        let file = SourceFile::new("t.yaml", reordered);
        assert!(fast::parse(&file).is_none());
        let (objects, errors) = parse_documents(&file);
        assert!(errors.is_empty(), "{errors}");
        assert_eq!(objects.len(), 1);
    }

    #[test]
    fn malformed_yaml_gives_a_line() {
        let (_, errors) = parse("apiVersion: x\nkind: [unclosed\n");
        assert_eq!(errors.len(), 1);
        assert!(
            errors.0[0].message.starts_with("not valid YAML"),
            "{}",
            errors
        );
        assert!(errors.0[0].line.is_some());
    }

    #[test]
    fn namespace_rules() {
        let (_, errors) = parse(&ZONE.replace("  namespace: acme\n", ""));
        assert!(
            errors.0[0].message.contains("namespace is required"),
            "{errors}"
        );
        let tenant = "apiVersion: dns.zentralink.net/v1alpha1\nkind: Tenant\nmetadata: { name: acme, namespace: x }\nspec: { displayName: A, namespaces: [], allowedDomains: [] }\n";
        let (_, errors) = parse(tenant);
        assert!(errors.0[0].message.contains("cluster-scoped"), "{errors}");
    }

    #[test]
    fn status_and_unknown_top_level_fields_are_refused() {
        let (_, errors) = parse(&format!("{ZONE}status: {{}}\n"));
        assert!(
            errors.0[0].message.contains("written by the operator"),
            "{errors}"
        );
        let (_, errors) = parse(&format!("{ZONE}extra: 1\n"));
        assert!(
            errors.0[0].message.contains("unknown field \"extra\""),
            "{errors}"
        );
    }

    /// What the fast path read, as the careful path's result reads it.
    fn shown(objects: &[LoadedObject]) -> Vec<String> {
        objects
            .iter()
            .map(|o| format!("{}: {:?}", o.origin.document, o.resource))
            .collect()
    }

    fn careful(file: &Arc<SourceFile>) -> Vec<String> {
        let (objects, errors) = parse_documents_carefully(file);
        assert!(errors.is_empty(), "{errors}");
        shown(&objects)
    }

    const TENANT: &str = "apiVersion: dns.zentralink.net/v1alpha1\nkind: Tenant\nmetadata: { name: t }\nspec: { displayName: T, namespaces: [t], allowedDomains: [t.example.] }\n";

    #[test]
    fn the_fast_path_reads_every_form_as_the_careful_path_does() {
        let styles = ZONE.replace(
            "        - 192.0.2.2\n",
            "        - \"192.0.2.2\"\n    - name: txt # a comment\n      type: TXT\n      ttl: 300\n      values:\n        - '\"it''s\" \"two\"'\n        - \"tab\\there \\u00e9 \\\\ \\\"q\\\"\"\n        - |\n          literal\n          block\n        - >-\n          folded\n          block\n        - plain\n          on two lines\n    - { name: mx, type: MX, values: [10 mx.acme.example., '20 b.acme.example.'] }\n",
        );
        let texts = [
            ZONE.to_owned(),
            styles.clone(),
            styles.replace('\n', "\r\n"),
            format!("\u{feff}{styles}"),
            format!("---\n{ZONE}---\n---\n# only a comment\n---\n{TENANT}"),
            format!("{ZONE}---\n~\n---\n{TENANT}"),
            "{apiVersion: dns.zentralink.net/v1alpha1, kind: Tenant, metadata: {name: t, labels: {team: web}}, spec: {displayName: T, namespaces: [t], allowedDomains: [t.example.]}}\n".to_owned(),
        ];
        for text in texts {
            let file = SourceFile::new("zones/acme.yaml", text.as_str());
            let fast = fast::parse(&file)
                .unwrap_or_else(|| panic!("valid input takes the fast path:\n{text}"));
            assert_eq!(shown(&fast), careful(&file), "{text}");
        }
    }

    #[test]
    fn anchors_aliases_and_tags_take_the_careful_path() {
        let texts = [
            ZONE.replace("- 192.0.2.1", "- &first 192.0.2.1")
                .replace("- 192.0.2.2", "- *first"),
            ZONE.replace(
                "providerRef: { name: files }",
                "providerRef: &ref { name: files }",
            ),
            ZONE.replace("- 192.0.2.1", "- !!str 192.0.2.1"),
        ];
        for text in texts {
            let file = SourceFile::new("zones/acme.yaml", text.as_str());
            assert!(fast::parse(&file).is_none(), "{text}");
            let (objects, errors) = parse_documents(&file);
            assert!(errors.is_empty(), "{errors}");
            assert_eq!(shown(&objects), careful(&file));
        }
    }

    /// yaml-rust2 takes a few forms libyaml refuses or reads otherwise; those
    /// files go to the careful path, so they read as they did before.
    #[test]
    fn yaml_the_two_parsers_read_apart_takes_the_careful_path() {
        let refused = [
            ZONE.replace(
                "providerRef: { name: files }",
                "providerRef:{ name: files }",
            ),
            ZONE.replace(
                "values:\n        - 192.0.2.1\n        - 192.0.2.2",
                "values:[192.0.2.1]",
            ),
            ZONE.replace("  name: acme\n", "  name: acme\n  labels: { team: | }\n"),
            ZONE.replace("  name: acme\n", "  name: acme\n  labels: { team: :web }\n"),
            ZONE.replace(
                "providerRef: { name: files }",
                "providerRef: { name\n    : files }",
            ),
            format!("{ZONE}\t\n"),
            format!("{TENANT}...\n# no document start\n{ZONE}"),
            ZONE.replace("  zone: acme.example.", "  zone: acme.example.\u{85}"),
        ];
        for (i, text) in refused.iter().enumerate() {
            let file = SourceFile::new("zones/acme.yaml", text.as_str());
            assert!(fast::parse(&file).is_none(), "{text}");
            let (objects, errors) = parse_documents(&file);
            let (careful_objects, careful_errors) = parse_documents_carefully(&file);
            assert_eq!(shown(&objects), shown(&careful_objects), "{text}");
            assert_eq!(errors, careful_errors, "{text}");
            // libyaml refuses all but the last, with a line
            if i + 1 < refused.len() {
                assert_eq!(errors.len(), 1, "{text}");
                assert!(errors.0[0].line.is_some(), "{errors}");
            }
        }
        // an empty block scalar at the end: libyaml reads "", yaml-rust2 "\n"
        let text = ZONE.replace("        - 192.0.2.2\n", "        - |\n");
        let file = SourceFile::new("zones/acme.yaml", text.as_str());
        assert!(fast::parse(&file).is_none());
        let (objects, errors) = parse_documents(&file);
        assert!(errors.is_empty(), "{errors}");
        assert_eq!(shown(&objects), careful(&file));
        assert!(shown(&objects)[0].contains(r#"values: ["192.0.2.1", ""]"#));
    }

    /// A [`Spot`] (from the scan of document starts) names the lines the
    /// whole field-path index names, for every kept field, in every form a
    /// document takes, and in seeded mutations of them.
    #[test]
    fn a_spot_names_the_lines_the_index_names() {
        let texts = [
            ZONE.to_owned(),
            format!("---\n{ZONE}---\n---\n# only a comment\n---\n{TENANT}"),
            format!("{ZONE}---\n~\n---\n{}", ZONE.replace("name: acme\n", "name: acme2\n")),
            "apiVersion: dns.zentralink.net/v1alpha1\nkind: DnsZone\nmetadata: { name: z, namespace: acme }\nspec: { zone: acme.example., providerRef: { name: files } }\n".to_owned(),
            "apiVersion: dns.zentralink.net/v1alpha1\nkind: DnsZone\nmetadata:\n  name: z\n  \"namespace\": acme\nspec:\n  'zone':\n    acme.example.\n  providerRef:\n\n    name:\n      files\n".to_owned(),
            "apiVersion: dns.zentralink.net/v1alpha1\nkind: DnsZone\nmetadata: { name: z }\nspec:\n  providerRef: {}\n  recordSets:\n  - { zone: x, providerRef: { name: y } }\n  - spec: { zone: x }\n".to_owned(),
            "apiVersion: dns.zentralink.net/v1alpha1\nkind: DnsZone\nmetadata: &m { name: z, namespace: acme }\nspec:\n  ? zone\n  : acme.example.\n  ? [a, b]\n  : c\n  providerRef: *m\n".to_owned(),
            "apiVersion: dns.zentralink.net/v1alpha1\nkind: DnsZone\nspec:\n  zone: [acme.example.]\n  providerRef:\n    - name: files\nmetadata:\n  namespace:\n    zone: x\n".to_owned(),
            "apiVersion: dns.zentralink.net/v1alpha1\nkind: [unclosed\nspec:\n  zone: a.\n".to_owned(),
            "just a scalar\n".to_owned(),
        ];
        let check = |text: &str, report: &mut Vec<String>| {
            let indexed = SourceFile::new("f.yaml", text);
            let scanned = SourceFile::new("f.yaml", text);
            for document in 0..5 {
                let by_index = Origin {
                    file: Arc::clone(&indexed),
                    document,
                };
                let by_scan = Origin {
                    file: Arc::clone(&scanned),
                    document,
                };
                let spot = by_scan.spot();
                let mut lines = vec![(
                    String::new(),
                    by_index.location().line,
                    spot.location().line,
                )];
                for path in KEPT_FIELDS {
                    lines.push((path.to_owned(), by_index.line_of(path), spot.line_of(path)));
                }
                for (path, want, got) in lines {
                    if want != got {
                        report.push(format!(
                            "document {document}, {path:?}: index {want:?}, spot {got:?}\n{text}"
                        ));
                    }
                }
            }
        };
        let mut report = Vec::new();
        for text in &texts {
            check(text, &mut report);
            check(&text.replace('\n', "\r\n"), &mut report);
        }
        let alphabet: Vec<char> = " \n\n\n  -?:,[]{}#&*!|>'\"@.0a".chars().collect();
        let mut state: u64 = 0x2545F4914F6CDD1D;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..2_000 {
            let seed = &texts[(next() % texts.len() as u64) as usize];
            let mut chars: Vec<char> = seed.chars().collect();
            for _ in 0..1 + next() % 3 {
                let pos = (next() % (chars.len() as u64 + 1)) as usize;
                let c = alphabet[(next() % alphabet.len() as u64) as usize];
                match next() % 3 {
                    0 => chars.insert(pos, c),
                    1 if pos < chars.len() => {
                        chars.remove(pos);
                    }
                    _ if pos < chars.len() => chars[pos] = c,
                    _ => {}
                }
            }
            let text: String = chars.into_iter().collect();
            check(&text, &mut report);
        }
        assert!(report.is_empty(), "{}", report.join("\n-----\n"));
    }
}
#[cfg(test)]
mod fast_path_agreement {
    use super::*;

    fn show(objs: &[LoadedObject]) -> Vec<String> {
        objs.iter()
            .map(|o| format!("{}#{:?}", o.origin.document, o.resource))
            .collect()
    }

    /// The fast path may give up on anything, but what it accepts must be
    /// exactly what the careful path reads, with no error.
    fn compare(name: &str, text: &str, report: &mut Vec<String>) -> bool {
        let file = SourceFile::new(name, text);
        if check_nesting(&file).is_err() {
            return false;
        }
        let Some(fast) = fast::parse(&file) else {
            return false;
        };
        let (objects, errors) = parse_documents_carefully(&file);
        if !errors.is_empty() || show(&objects) != show(&fast) {
            report.push(format!(
                "{name}:\n{text}\nfast={:?}\ncareful={:?} {errors}",
                show(&fast),
                show(&objects)
            ));
        }
        true
    }

    const T: &str = "apiVersion: dns.zentralink.net/v1alpha1\nkind: DnsZone\nmetadata:\n  name: acme\n  namespace: acme\nspec:\n  zone: acme.example.\n  providerRef: { name: files }\n  defaultTtl: 300\n  recordSets:\n    - name: www\n      type: TXT\n      ttl: 60\n      values:\n        - VALUE\n";

    #[test]
    fn the_fast_path_reads_what_the_careful_path_reads() {
        let mut report = Vec::new();
        let mut examples = 0;
        let mut stack = vec![std::path::PathBuf::from("../examples")];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).expect("examples are readable") {
                let path = entry.expect("examples are readable").path();
                if path.is_dir() {
                    stack.push(path)
                } else if path.extension().is_some_and(|x| x == "yaml") {
                    let text = std::fs::read_to_string(&path).expect("examples are text");
                    let name = path.display().to_string();
                    assert!(
                        compare(&name, &text, &mut report),
                        "{name}: the example takes the fast path"
                    );
                    compare(
                        &format!("{name} crlf"),
                        &text.replace('\n', "\r\n"),
                        &mut report,
                    );
                    examples += 1;
                }
            }
        }
        assert!(examples > 3, "the examples were found");
        let scalars = [
            "123",
            "0",
            "007",
            "0x10",
            "+5",
            "-5",
            "1.5",
            ".inf",
            "-.inf",
            ".nan",
            "1e3",
            "\"300\"",
            "'x'",
            "~",
            "null",
            "Null",
            "",
            "true",
            "False",
            "yes",
            "no",
            "on",
            "|\n          multi\n          line\n",
            ">\n          folded\n          text\n\n          para\n",
            "|-\n          strip\n",
            "|+\n          keep\n\n",
            "\"esc \\x41 \\u00e9 \\t \\\\ \\\" \\N \\_ \\L \\P \\0 \\a \\e\"",
            "'it''s'",
            "!!str 5",
            "&a x",
            "plain with  spaces",
            "multi\n          line plain",
            "\"multi\n          line dq\"",
            "'multi\n\n          line sq'",
            "a: b",
            "a #not comment",
            "x # comment",
            "[1, 2]",
            "{a: 1}",
            "\"\"",
            "''",
            "@",
            "`",
            "%x",
            "- x",
            "? x",
            "x\t",
            "\"\\u263A\"",
            "é",
            "\"\\U0001F600\"",
            "v=spf1 mx -all",
            "\"v=spf1\" \"more\"",
            "10 mx.example.",
            ":x",
            "x:",
            "-x",
            ".x",
            "*",
            "!",
            "&",
            "|",
            ">",
            "#",
            "\"trailing \"  ",
            "'\\n'",
            "\"a\\\n          b\"",
            "'  lead'",
            "plain\\",
            "2001:db8::1",
            "192.0.2.1",
            "0o17",
            "0b101",
            "1_000",
            "12:30",
            "2001-12-14",
        ];
        for s in scalars {
            let text = T.replace("VALUE", s);
            compare(&format!("value {s:?}"), &text, &mut report);
            compare(
                &format!("value crlf {s:?}"),
                &text.replace('\n', "\r\n"),
                &mut report,
            );
            let text = T.replace("ttl: 60", &format!("ttl: {s}"));
            compare(&format!("ttl {s:?}"), &text, &mut report);
            let text = T.replace("- name: www", &format!("- name: {s}"));
            compare(&format!("name {s:?}"), &text, &mut report);
            let text = T.replace(
                "  name: acme\n",
                &format!("  name: acme\n  labels: {{ k: {s} }}\n"),
            );
            compare(&format!("label {s:?}"), &text, &mut report);
            let text = T.replace("  name: acme\n", &format!("  name: {s}\n"));
            compare(&format!("meta name {s:?}"), &text, &mut report);
            let text = T.replace("  defaultTtl: 300\n", &format!("  ownership: {s}\n"));
            compare(&format!("ownership {s:?}"), &text, &mut report);
            let text = T.replace(
                "      values:\n        - VALUE\n",
                &format!("      values: {s}\n"),
            );
            compare(&format!("values {s:?}"), &text, &mut report);
            let text = T.replace("  recordSets:", &format!("  recordSets: {s}\n  x:"));
            compare(&format!("recordSets {s:?}"), &text, &mut report);
            let text = T.replace("providerRef: { name: files }", &format!("providerRef: {s}"));
            compare(&format!("providerRef {s:?}"), &text, &mut report);
        }
        let structural = [
            format!("---\n{T}"), format!("{T}..."), format!("{T}...\n---\n{T}"), format!("%YAML 1.2\n---\n{T}"), format!("# c\n{T}# c\n"), format!("---\n---\n{T}---\n"),
            format!("{T}---\n~\n---\n{}", T.replace("name: acme\n", "name: b\n")), T.replace("  ", "\t"), T.replace("spec:\n", "spec: !!map\n"), T.replace("spec:\n", "spec: &s\n"),
            "{apiVersion: dns.zentralink.net/v1alpha1, kind: Tenant, metadata: {name: t}, spec: {displayName: T, namespaces: [t], allowedDomains: [t.example.]}}".to_owned(),
            "apiVersion: dns.zentralink.net/v1alpha1\nkind: Tenant\nmetadata: {name: t}\nspec: {displayName: T, namespaces: [t], allowedDomains: [t.example.]}\n".to_owned(),
            "? apiVersion\n: dns.zentralink.net/v1alpha1\nkind: Tenant\nmetadata: {name: t}\nspec: {displayName: T, namespaces: [t], allowedDomains: [t.example.]}\n".to_owned(),
            "apiVersion: dns.zentralink.net/v1alpha1\nkind: Tenant\nmetadata: {name: t, annotations: {a: \"1\", b: c}}\nspec:\n  displayName: T\n  namespaces:\n  - t\n  allowedDomains:\n  - t.example.\n".to_owned(),
            "apiVersion: dns.zentralink.net/v1alpha1\nkind: Tenant\nmetadata: {name: t}\nspec: {displayName: T, namespaces: [t], allowedDomains: [t.example.],}\n".to_owned(),
            "apiVersion: dns.zentralink.net/v1alpha1\nkind: Tenant\nmetadata: {name: t}\nspec: {displayName: T, namespaces: [t, ], allowedDomains: [t.example.]}\n".to_owned(),
            "apiVersion: dns.zentralink.net/v1alpha1\nkind: Tenant\nmetadata: {name: t}\nspec: {displayName: T, namespaces: [t], allowedDomains: [t.example.]}\nspec: {}\n".to_owned(),
            "apiVersion: dns.zentralink.net/v1alpha1\nkind: Tenant\nmetadata: {name: t}\nspec: {displayName: T, namespaces: [t], allowedDomains: [t.example.], namespaces: [x]}\n".to_owned(),
            "apiVersion: dns.zentralink.net/v1alpha1\nkind: Tenant\nmetadata: {name: t}\nspec: {displayName: T, namespaces: [t], allowedDomains: [t.example.]}\n---\n[a, b]\n".to_owned(),
            "apiVersion: dns.zentralink.net/v1alpha1\nkind: Tenant\nmetadata: {name: t}\nspec: {displayName: T, namespaces: [t], allowedDomains: [t.example.]}\n---\nplain\n".to_owned(),
            "apiVersion: dns.zentralink.net/v1alpha1\nkind: Tenant\nmetadata: {name: t}\nspec: {displayName: T, namespaces: [t], allowedDomains: [t.example.]}\n--- plain\n".to_owned(),
            "apiVersion: dns.zentralink.net/v1alpha1\nkind: Tenant\nmetadata: {name: t}\nspec: {displayName: T, namespaces: [t], allowedDomains: [t.example.]}\n--- {}\n".to_owned(),
            "apiVersion: dns.zentralink.net/v1alpha1\nkind: Tenant\nmetadata:\nspec: {displayName: T, namespaces: [t], allowedDomains: [t.example.]}\n".to_owned(),
            "apiVersion: dns.zentralink.net/v1alpha1\nkind: Tenant\nmetadata: {name: t}\nspec: {displayName: [T], namespaces: [t], allowedDomains: [t.example.]}\n".to_owned(),
            "apiVersion: dns.zentralink.net/v1alpha1\nkind: Tenant\nmetadata: {name: t}\nspec: {displayName: T, namespaces: [t], allowedDomains: [t.example.]}\n  bad indent: x\n".to_owned(),
            "apiVersion: dns.zentralink.net/v1alpha1\nkind: Tenant\nmetadata: {name: t}\nspec: {displayName: T, namespaces: [[t]], allowedDomains: [t.example.]}\n".to_owned(),
            "apiVersion: dns.zentralink.net/v1alpha1\nkind: Tenant\nmetadata: {name: t}\nspec: {displayName: T, namespaces: {t: 1}, allowedDomains: [t.example.]}\n".to_owned(),
            "apiVersion: dns.zentralink.net/v1alpha1\nkind: Tenant\nmetadata: {name: t}\nspec: {displayName: T, namespaces: [a: b], allowedDomains: [t.example.]}\n".to_owned(),
            "apiVersion: dns.zentralink.net/v1alpha1\nkind: Tenant\nmetadata: {name: t}\nspec: {displayName: T, namespaces: [t], allowedDomains: [t.example.]}\n\t\n".to_owned(),
            "apiVersion: dns.zentralink.net/v1alpha1\r\nkind: Tenant\rmetadata: {name: t}\nspec: {displayName: T, namespaces: [t], allowedDomains: [t.example.]}\n".to_owned(),
            "apiVersion: dns.zentralink.net/v1alpha1\nkind: Tenant\nmetadata: {name: t}\nspec: {displayName: \"T\nx\", namespaces: [t], allowedDomains: [t.example.]}\n".to_owned(),
            "apiVersion: dns.zentralink.net/v1alpha1\nkind: Tenant\nmetadata: {name: t}\nspec: {displayName: T x\n  y, namespaces: [t], allowedDomains: [t.example.]}\n".to_owned(),
            "apiVersion: dns.zentralink.net/v1alpha1\nkind: Tenant\nmetadata: {name: t}\nspec:\n  displayName: T\n  namespaces: [t]\n  allowedDomains: [t.example.]\n  # trailing comment\n".to_owned(),
            "apiVersion: dns.zentralink.net/v1alpha1\nkind: Tenant\nmetadata: {name: t}\nspec:\n  displayName: >-\n    T\n    x\n  namespaces: [t]\n  allowedDomains: [t.example.]\n".to_owned(),
            "apiVersion: dns.zentralink.net/v1alpha1\nkind: Tenant\nmetadata: {name: t}\nspec:\n  displayName: |2\n     T\n  namespaces: [t]\n  allowedDomains: [t.example.]\n".to_owned(),
            "apiVersion: dns.zentralink.net/v1alpha1\nkind: Tenant\nmetadata: {name: t}\nspec: {\"displayName\": T, 'namespaces': [t], allowedDomains: [t.example.]}\n".to_owned(),
            "\"apiVersion\": dns.zentralink.net/v1alpha1\nkind: Tenant\nmetadata: {name: t}\nspec: {displayName: T, namespaces: [t], allowedDomains: [t.example.]}\n".to_owned(),
        ];
        for (i, s) in structural.iter().enumerate() {
            compare(&format!("structural {i}"), s, &mut report);
            compare(
                &format!("structural crlf {i}"),
                &s.replace('\n', "\r\n"),
                &mut report,
            );
        }
        assert!(report.is_empty(), "{}", report.join("\n-----\n"));
    }

    /// Seeded mutations of valid documents: whatever the fast path accepts,
    /// the careful path reads the same.
    #[test]
    fn mutated_documents_never_make_the_paths_disagree() {
        let seeds = [
            "apiVersion: dns.zentralink.net/v1alpha1\nkind: Tenant\nmetadata: {name: t}\nspec:\n  displayName: \"a \\u00e9 \\x41\\\\ b\"\n  namespaces:\n    - t\n    - 'u''v'\n  allowedDomains: [t.example., \"x\"] # c\n...\n--- # doc\napiVersion: dns.zentralink.net/v1alpha1\nkind: Tenant\nmetadata:\n  name: u\nspec:\n  displayName: >-\n    folded\n    text\n\n    more\n  namespaces: [\n    u ]\n  allowedDomains:\n  - plain multi\n    line\n",
            "apiVersion: dns.zentralink.net/v1alpha1\nkind: DnsZone\nmetadata: { name: z, namespace: acme }\nspec:\n  zone: acme.example.\n  providerRef:\n    name: files\n  recordSets:\n  - name: \"@\"\n    type: TXT\n    values:\n    - |+\n      keep\n\n    - |2-\n        strip\n    - \"a\\\n      b\"\n    - 'x\n\n      y'\n",
            "apiVersion: dns.zentralink.net/v1alpha1\nkind: DnsZone\nmetadata:\n  name: acme\n  namespace: acme\n  labels: { a: b }\nspec:\n  zone: acme.example.\n  providerRef: { name: files }\n  defaultTtl: 300\n  recordSets:\n    - name: www\n      type: TXT\n      ttl: 60\n      values:\n        - \"v=spf1 mx -all\"\n        - 'single'\n        - |\n          block\n    - { name: mx, type: MX, values: [10 mx.example., '20 b.example.'] }\n",
            "apiVersion: dns.zentralink.net/v1alpha1\nkind: Tenant\nmetadata: {name: t}\nspec:\n  displayName: T\n  namespaces: [t]\n  allowedDomains:\n  - t.example.\n---\napiVersion: dns.zentralink.net/v1alpha1\nkind: ProviderConnection\nmetadata: { name: files, namespace: acme }\nspec: { type: zonefile, zonefile: { directory: z }, mode: Live, acknowledgeLiveWrites: true }\n",
        ];
        let alphabet: Vec<char> =
            " \n\n\n  \t-?:,[]{}#&*!|>'\"%@`\\~.0a\r+1é\u{feff}\u{85}\u{2028}"
                .chars()
                .collect();
        let mut state: u64 = 0x9E3779B97F4A7C15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut report = Vec::new();
        let mut accepted = 0;
        let iterations = 5_000;
        for _ in 0..iterations {
            let seed = seeds[(next() % seeds.len() as u64) as usize];
            let mut chars: Vec<char> = seed.chars().collect();
            let edits = 1 + next() % 3;
            for _ in 0..edits {
                let pos = (next() % (chars.len() as u64 + 1)) as usize;
                let c = alphabet[(next() % alphabet.len() as u64) as usize];
                match next() % 3 {
                    0 => chars.insert(pos, c),
                    1 if pos < chars.len() => {
                        chars.remove(pos);
                    }
                    _ if pos < chars.len() => chars[pos] = c,
                    _ => {}
                }
            }
            let text: String = chars.into_iter().collect();
            if compare("mutated", &text, &mut report) {
                accepted += 1;
            }
        }
        assert!(
            accepted > 100,
            "mutations the fast path still reads: {accepted}"
        );
        assert!(report.is_empty(), "{}", report.join("\n-----\n"));
    }
}
