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
    pub name: String,
    text: String,
    index: OnceLock<Vec<DocumentIndex>>,
}

impl SourceFile {
    /// A file's text; a UTF-8 byte-order mark before it is dropped.
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> Arc<Self> {
        let mut text = text.into();
        if text.starts_with('\u{feff}') {
            text.drain(..'\u{feff}'.len_utf8());
        }
        Arc::new(Self {
            name: name.into(),
            text,
            index: OnceLock::new(),
        })
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    fn documents(&self) -> &[DocumentIndex] {
        self.index.get_or_init(|| index_documents(&self.text))
    }
}

/// Where an object came from: its file and document.
#[derive(Debug, Clone)]
pub struct Origin {
    pub file: Arc<SourceFile>,
    /// 0-based document number in the file.
    pub document: usize,
}

impl Origin {
    /// The line where the document's content starts (after any `---`).
    pub fn line(&self) -> Option<usize> {
        let doc = self.file.documents().get(self.document)?;
        Some(doc.first_content_line.unwrap_or(doc.start_line))
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
            file: self.file.name.clone(),
            line: self.line_of(&path),
            path,
            message: message.into(),
        }
        .bounded()
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
                        file: file.name.clone(),
                        line: Some(line),
                        message: "this key is given twice in the same mapping; a reviewer would read one and the operator apply the other: keep one".into(),
                        path,
                    },
                    None => Diagnostic {
                        file: file.name.clone(),
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

/// The fast path: one pass per document, `spec` typed by the `kind` read before it.
mod fast {
    use std::fmt;
    use std::sync::Arc;

    use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, Visitor};
    use serde_yaml::Value;

    use super::{
        API_VERSION, Approval, DnsChangeRequest, DnsSnapshot, DnsZone, Kind, LoadedObject,
        METADATA, Origin, ProviderConnection, Resource, SourceFile, Tenant, TenantPolicy,
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
                Kind::DnsChangeRequest => {
                    Spec::DnsChangeRequest(DnsChangeRequestSpec::deserialize(d)?)
                }
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

    /// `None` when any document is not plainly valid.
    pub(super) fn parse(file: &Arc<SourceFile>) -> Option<Vec<LoadedObject>> {
        let mut objects = Vec::new();
        for (document, de) in serde_yaml::Deserializer::from_str(file.text()).enumerate() {
            let Doc::Object {
                kind,
                metadata,
                spec,
            } = Doc::deserialize(de).ok()?
            else {
                continue;
            };
            let origin = Origin {
                file: Arc::clone(file),
                document,
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
                Spec::ProviderConnection(spec) => {
                    Resource::ProviderConnection(ProviderConnection {
                        metadata: meta,
                        spec,
                        status: None,
                    })
                }
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
}

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
        file: file.name.clone(),
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
}
