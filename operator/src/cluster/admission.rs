//! The admission webhook of `dns.zentralink.net`. `/validate` refuses what
//! `zentralink validate` refuses about an object itself, with the same field
//! paths and messages (references to other objects are the controller's to
//! report: `kubectl apply -f` creates objects in any order), and keeps
//! Approvals immutable. `/mutate` stamps who asked, from the request's
//! authenticated user: the `dns.zentralink.net/requested-by` annotation of a
//! DnsZone and `spec.requester` of a DnsChangeRequest; anyone setting them to
//! someone else is refused, except the operator itself, which mirrors change
//! requests with their original requester. [`validate`] and [`mutate`] are
//! pure; [`serve`] does I/O (HTTPS on a socket, certificate files, and the
//! Kubernetes API for the CA bundle).

// The TLS half lives beside this file (cluster/tls.rs) and belongs to it.
#[path = "tls.rs"]
pub mod tls;

use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use json_patch::jsonptr::PointerBuf;
use json_patch::{AddOperation, Patch, PatchOperation, RemoveOperation};
use kube::core::DynamicObject;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview, Operation};
use kube::core::response::{StatusCause, StatusDetails, StatusSummary};
use serde_json::{Map, Value, json};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use zentralink_model::catalog::check_object;
use zentralink_model::diagnostics::Diagnostics;
use zentralink_model::documents::{Kind, SourceFile, parse_documents};
use zentralink_model::resources::GROUP;
use zentralink_model::text::shorten;

use self::tls::ServingCertificate;
use super::REQUESTER_ANNOTATION;

/// Where the API server sends objects to validate.
pub const VALIDATE_PATH: &str = "/validate";
/// Where the API server sends objects to stamp.
pub const MUTATE_PATH: &str = "/mutate";

/// The largest AdmissionReview read: an object and its old version, each at
/// most the API server's 3 MiB request limit, with room to spare.
pub const BODY_LIMIT: usize = 8 * 1024 * 1024;

/// How many errors a refusal lists; the rest are counted.
pub const MAX_ERRORS_SHOWN: usize = 20;

/// The refusal of any change to an Approval's spec.
pub const IMMUTABLE_APPROVAL: &str = "an Approval is immutable: delete it and create a new one";

/// A TLS handshake that takes longer is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// A request whose headers take longer is dropped.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections served at once; more are closed at once (the API server retries).
const MAX_CONNECTIONS: usize = 512;
/// How long open connections may finish their requests at shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// A failed accept (out of file descriptors...) waits this long before the next.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// How the webhook is served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdmissionOptions {
    /// The HTTPS address (`0.0.0.0:9443` in a pod, `127.0.0.1:0` in tests).
    pub listen: SocketAddr,
    pub tls: TlsSource,
    /// The operator's own user (`system:serviceaccount:<ns>:<sa>`): the one
    /// user that may set a requester other than itself.
    pub operator_user: String,
}

/// Where the serving certificate comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsSource {
    /// `tls.crt`, `tls.key` (and optionally `ca.crt`) in a directory, as
    /// cert-manager writes a Certificate's Secret; read again when renewed.
    /// Its cainjector puts the CA into the webhook configurations.
    Files { dir: PathBuf },
    /// A CA and serving certificate generated at start-up for the Service's
    /// names and `extra_sans`; the CA is patched into the `caBundle` of every
    /// webhook of the configurations named in `webhook_configs`.
    Generate {
        service: String,
        namespace: String,
        extra_sans: Vec<String>,
        webhook_configs: Vec<String>,
    },
}

/// What can go wrong serving the webhook.
#[derive(Debug, thiserror::Error)]
pub enum AdmissionError {
    #[error(
        "cannot read {}: {source}; mount the webhook certificate there (tls.crt and tls.key, as cert-manager writes them), or let the operator generate one",
        path.display()
    )]
    ReadFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{} is not what a webhook certificate needs ({reason}): tls.crt holds the PEM certificate chain, tls.key its PEM private key",
        path.display()
    )]
    Pem { path: PathBuf, reason: String },
    #[error(
        "the certificate and key in {} cannot serve TLS ({source}): tls.key must be the key of the first certificate in tls.crt",
        dir.display()
    )]
    KeyMismatch { dir: PathBuf, source: rustls::Error },
    #[error("cannot set up TLS: {0}")]
    Tls(#[source] rustls::Error),
    #[error("cannot generate the webhook certificate: {0}")]
    Generate(#[source] rcgen::Error),
    #[error(
        "the generated webhook certificate needs a name: give the webhook Service's name and namespace"
    )]
    NoServingNames,
    #[error(
        "{name:?} cannot be a name in the webhook certificate: give a DNS name or an IP address"
    )]
    InvalidServingName { name: String },
    #[error(
        "the CA bundle is to be patched into {configs}, but there is no Kubernetes client: serve the webhook with the Kubernetes source, or name no webhook configurations"
    )]
    NoClient { configs: String },
    #[error(
        "there is neither a ValidatingWebhookConfiguration nor a MutatingWebhookConfiguration named {name:?}: create them (the Helm chart does) or correct the name"
    )]
    NoWebhookConfiguration { name: String },
    #[error(
        "cannot {action}: {source}; the operator needs get and patch on validatingwebhookconfigurations and mutatingwebhookconfigurations (admissionregistration.k8s.io)"
    )]
    Kubernetes { action: String, source: kube::Error },
    #[error("cannot listen on {addr} for the admission webhook: {source}; choose another address")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

// ------------------------------------------------------------------ deciding

/// Validates one admission request: objects of our group on CREATE, and on
/// UPDATE when their spec changed (a metadata-only update, such as removing
/// a finalizer, passes even for an object admitted under older rules);
/// Approvals are immutable; a requester field must be as [`mutate`] stamps it.
pub fn validate(
    request: &AdmissionRequest<DynamicObject>,
    operator_user: &str,
) -> AdmissionResponse {
    match judge(request, operator_user) {
        Ok(()) => AdmissionResponse::from(request),
        Err(refusal) => refusal.deny(request),
    }
}

fn judge(request: &AdmissionRequest<DynamicObject>, operator_user: &str) -> Result<(), Refusal> {
    let Some(kind) = our_kind(request) else {
        return Ok(());
    };
    if !matches!(request.operation, Operation::Create | Operation::Update) {
        return Ok(());
    }
    let Some(object) = &request.object else {
        return Ok(());
    };
    let old = request.old_object.as_ref();
    let spec_changed = old.is_none_or(|old| old.data.get("spec") != object.data.get("spec"));
    if kind == Kind::Approval && old.is_some() && spec_changed {
        return Err(Refusal::immutable_approval());
    }
    if spec_changed {
        check_document(kind, request, object)?;
    }
    if let Some(field) = RequesterField::of(kind) {
        let stamp = expected_requester(field, request, object, operator_user)?;
        let carried = field.read(object);
        if carried != stamp.value {
            return Err(Refusal::forbidden(format!(
                "{} is {}, where the admission webhook stamps {}: check that the MutatingWebhookConfiguration sends {kind} to the operator's {MUTATE_PATH}",
                field.describe(),
                shown(carried.as_deref()),
                shown(stamp.value.as_deref()),
            )));
        }
    }
    Ok(())
}

/// Stamps the requester: a DnsZone's `dns.zentralink.net/requested-by`
/// annotation and a DnsChangeRequest's `spec.requester` become the request's
/// user on CREATE, and on UPDATE when the spec changed; otherwise the old
/// value stays (and is put back if the request altered it). Anyone but the
/// operator setting them to another user is refused.
pub fn mutate(request: &AdmissionRequest<DynamicObject>, operator_user: &str) -> AdmissionResponse {
    let response = AdmissionResponse::from(request);
    let Some(field) = our_kind(request).and_then(RequesterField::of) else {
        return response;
    };
    if !matches!(request.operation, Operation::Create | Operation::Update) {
        return response;
    }
    let Some(object) = &request.object else {
        return response;
    };
    let stamp = match expected_requester(field, request, object, operator_user) {
        Ok(stamp) => stamp,
        Err(refusal) => return refusal.deny(request),
    };
    let carried = field.read(object);
    if carried == stamp.value {
        return response;
    }
    let warning = stamp.kept.then(|| {
        format!(
            "{} records who last changed the spec, and this request does not change it: it stays {}",
            field.describe(),
            shown(stamp.value.as_deref())
        )
    });
    match response.with_patch(Patch(field.write(object, stamp.value.as_deref()))) {
        Ok(mut patched) => {
            patched.warnings = warning.map(|w| vec![w]);
            patched
        }
        Err(e) => {
            tracing::error!("cannot encode the admission patch: {e}");
            Refusal::internal().deny(request)
        }
    }
}

/// The kind of an object of our group, sent for the object itself (not a
/// subresource such as `status`).
fn our_kind(request: &AdmissionRequest<DynamicObject>) -> Option<Kind> {
    if request.kind.group != GROUP
        || request
            .sub_resource
            .as_deref()
            .is_some_and(|s| !s.is_empty())
    {
        return None;
    }
    Kind::parse(&request.kind.kind)
}

/// Validates the object as `zentralink validate` reads a manifest: as a
/// document (apiVersion, kind, metadata name and namespace, spec), then with
/// the object-local checks of the catalog.
fn check_document(
    kind: Kind,
    request: &AdmissionRequest<DynamicObject>,
    object: &DynamicObject,
) -> Result<(), Refusal> {
    let text = yaml_text(&document_of(kind, request, object)).map_err(|e| {
        tracing::error!("cannot encode the admitted object: {e}");
        Refusal::internal()
    })?;
    let what = format!("{kind} {}", object_name(request, object));
    let file = SourceFile::new(what.clone(), text);
    let (objects, mut errors) = parse_documents(&file);
    for object in objects {
        errors.extend(check_object(object));
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(Refusal::invalid(&what, &errors))
    }
}

/// The manifest an object stands for: what a user writes, without what the
/// API server adds (uid, resourceVersion, managedFields, status...).
fn document_of(
    kind: Kind,
    request: &AdmissionRequest<DynamicObject>,
    object: &DynamicObject,
) -> Value {
    let api_version = object
        .types
        .as_ref()
        .map(|t| t.api_version.clone())
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| format!("{}/{}", request.kind.group, request.kind.version));
    let mut metadata = Map::new();
    let name = object
        .metadata
        .name
        .clone()
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| request.name.clone());
    metadata.insert("name".into(), Value::String(name));
    if let Some(namespace) = object
        .metadata
        .namespace
        .clone()
        .or_else(|| request.namespace.clone())
        .filter(|n| !n.is_empty())
    {
        metadata.insert("namespace".into(), Value::String(namespace));
    }
    let mut document = Map::new();
    document.insert("apiVersion".into(), Value::String(api_version));
    document.insert("kind".into(), Value::String(kind.as_str().into()));
    document.insert("metadata".into(), Value::Object(metadata));
    if let Some(spec) = object.data.get("spec") {
        document.insert("spec".into(), spec.clone());
    }
    Value::Object(document)
}

/// The document as text the manifest parser reads back exactly: JSON (which
/// is YAML) with every character outside printable ASCII escaped, since YAML
/// reads U+0085, U+2028 and U+2029 in a quoted string as line breaks and
/// refuses other unprintable characters.
fn yaml_text(document: &Value) -> Result<String, serde_json::Error> {
    struct EscapeUnprintable;
    impl serde_json::ser::Formatter for EscapeUnprintable {
        fn write_string_fragment<W: ?Sized + std::io::Write>(
            &mut self,
            writer: &mut W,
            fragment: &str,
        ) -> std::io::Result<()> {
            for c in fragment.chars() {
                match u32::from(c) {
                    0x20..=0x7e => writer.write_all(&[c as u8])?,
                    // YAML's own escape above the BMP (JSON's surrogate pairs are not YAML)
                    code @ 0x1_0000.. => write!(writer, "\\U{code:08X}")?,
                    code => write!(writer, "\\u{code:04X}")?,
                }
            }
            Ok(())
        }
    }
    let mut text = Vec::new();
    let mut serializer = serde_json::Serializer::with_formatter(&mut text, EscapeUnprintable);
    serde::Serialize::serialize(document, &mut serializer)?;
    // only ASCII was written
    Ok(String::from_utf8_lossy(&text).into_owned())
}

/// `namespace/name`, or `name` for a cluster-scoped object.
fn object_name(request: &AdmissionRequest<DynamicObject>, object: &DynamicObject) -> String {
    let name = object.metadata.name.as_deref().unwrap_or(&request.name);
    match object
        .metadata
        .namespace
        .as_deref()
        .or(request.namespace.as_deref())
    {
        Some(ns) if !ns.is_empty() => format!("{ns}/{name}"),
        _ => name.to_owned(),
    }
}

fn shown(value: Option<&str>) -> String {
    match value {
        Some(v) => format!("{:?}", shorten(v, 120)),
        None => "unset".into(),
    }
}

// ----------------------------------------------------------------- requester

/// Where a kind records who asked for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RequesterField {
    /// The annotation [`REQUESTER_ANNOTATION`] (DnsZone, Tenant, TenantPolicy, ProviderConnection).
    Annotation,
    /// A DnsChangeRequest's `spec.requester`.
    SpecRequester,
}

/// The requester an admitted object carries.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    value: Option<String>,
    /// True when the spec did not change, so the old value is kept.
    kept: bool,
}

impl RequesterField {
    fn of(kind: Kind) -> Option<Self> {
        match kind {
            // who changed the configuration: a change to it is a change
            // request judged by the policy in force, which its requester may not approve
            Kind::DnsZone | Kind::Tenant | Kind::TenantPolicy | Kind::ProviderConnection => {
                Some(RequesterField::Annotation)
            }
            Kind::DnsChangeRequest => Some(RequesterField::SpecRequester),
            _ => None,
        }
    }

    fn describe(self) -> String {
        match self {
            RequesterField::Annotation => format!("the annotation {REQUESTER_ANNOTATION}"),
            RequesterField::SpecRequester => "spec.requester".into(),
        }
    }

    fn read(self, object: &DynamicObject) -> Option<String> {
        match self {
            RequesterField::Annotation => object
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(REQUESTER_ANNOTATION))
                .cloned(),
            RequesterField::SpecRequester => object
                .data
                .get("spec")
                .and_then(|s| s.get("requester"))
                .and_then(Value::as_str)
                .map(str::to_owned),
        }
    }

    /// What the requester is stamped for: the spec, less the requester itself.
    fn content(self, object: &DynamicObject) -> Option<Value> {
        let mut spec = object.data.get("spec").cloned();
        if self == RequesterField::SpecRequester
            && let Some(Value::Object(spec)) = spec.as_mut()
        {
            spec.remove("requester");
        }
        spec
    }

    /// The JSON patch that makes the object carry `value`.
    fn write(self, object: &DynamicObject, value: Option<&str>) -> Vec<PatchOperation> {
        let add = |tokens: &[&str], value: Value| {
            PatchOperation::Add(AddOperation {
                path: PointerBuf::from_tokens(tokens.iter().copied()),
                value,
            })
        };
        let remove = |tokens: &[&str]| {
            PatchOperation::Remove(RemoveOperation {
                path: PointerBuf::from_tokens(tokens.iter().copied()),
            })
        };
        match (self, value) {
            (RequesterField::Annotation, Some(v)) => match &object.metadata.annotations {
                Some(_) => vec![add(
                    &["metadata", "annotations", REQUESTER_ANNOTATION],
                    json!(v),
                )],
                None => vec![add(
                    &["metadata", "annotations"],
                    json!({ REQUESTER_ANNOTATION: v }),
                )],
            },
            (RequesterField::Annotation, None) => {
                vec![remove(&["metadata", "annotations", REQUESTER_ANNOTATION])]
            }
            (RequesterField::SpecRequester, Some(v)) => match object.data.get("spec") {
                Some(Value::Object(_)) => vec![add(&["spec", "requester"], json!(v))],
                _ => vec![add(&["spec"], json!({ "requester": v }))],
            },
            (RequesterField::SpecRequester, None) => vec![remove(&["spec", "requester"])],
        }
    }
}

/// The requester the object must carry once admitted, or why the request is
/// refused. The request's user is the requester when it creates the object
/// or changes its spec; otherwise the old value stays. Setting the field to
/// someone else is refused, except for the operator's own user, whose value
/// is kept as it sent it.
fn expected_requester(
    field: RequesterField,
    request: &AdmissionRequest<DynamicObject>,
    object: &DynamicObject,
    operator_user: &str,
) -> Result<Stamp, Refusal> {
    let user = request
        .user_info
        .username
        .as_deref()
        .filter(|u| !u.is_empty())
        .ok_or_else(|| {
            Refusal::forbidden(
                "the request names no user: ZentraLink records who asked for every change, so it admits no change without one",
            )
        })?;
    let old = request.old_object.as_ref();
    let carried = field.read(object);
    let old_value = old.and_then(|o| field.read(o));
    let content_changed = old.is_none_or(|o| field.content(o) != field.content(object));
    // what this request writes into the field itself
    let set_here = match old {
        None => carried.clone(),
        Some(_) if carried != old_value => carried.clone(),
        Some(_) => None,
    };
    let stamped = |value: Option<String>| Stamp {
        value,
        kept: !content_changed,
    };
    if user == operator_user {
        return Ok(stamped(carried.or(if content_changed {
            Some(user.to_owned())
        } else {
            old_value
        })));
    }
    if let Some(value) = set_here
        && value != user
    {
        return Err(Refusal::forbidden(format!(
            "{} is set to {}, but you are {}: it records who asked for the change and is set from your identity; remove it from your manifest",
            field.describe(),
            shown(Some(&value)),
            shown(Some(user)),
        )));
    }
    Ok(stamped(if content_changed {
        Some(user.to_owned())
    } else {
        old_value
    }))
}

// ------------------------------------------------------------------ refusing

/// Why a request is refused, as the API server returns it to the client.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Refusal {
    code: u16,
    reason: &'static str,
    message: String,
    causes: Vec<StatusCause>,
}

impl Refusal {
    /// Refused by validation: 422 Invalid, one cause per error with its field path.
    fn invalid(what: &str, errors: &Diagnostics) -> Self {
        let mut shown: Vec<String> = errors
            .iter()
            .take(MAX_ERRORS_SHOWN)
            .map(|d| {
                if d.path.is_empty() {
                    d.message.clone()
                } else {
                    format!("{}: {}", d.path, d.message)
                }
            })
            .collect();
        if errors.len() > MAX_ERRORS_SHOWN {
            shown.push(format!(
                "and {} more (`zentralink validate` lists them all)",
                errors.len() - MAX_ERRORS_SHOWN
            ));
        }
        Self {
            code: 422,
            reason: "Invalid",
            message: format!("{what} is invalid: {}", shown.join("; ")),
            causes: errors
                .iter()
                .take(MAX_ERRORS_SHOWN)
                .map(|d| StatusCause {
                    reason: "FieldValueInvalid".into(),
                    message: d.message.clone(),
                    field: d.path.clone(),
                })
                .collect(),
        }
    }

    fn immutable_approval() -> Self {
        Self {
            code: 422,
            reason: "Invalid",
            message: IMMUTABLE_APPROVAL.into(),
            causes: vec![StatusCause {
                reason: "FieldValueForbidden".into(),
                message: IMMUTABLE_APPROVAL.into(),
                field: "spec".into(),
            }],
        }
    }

    fn forbidden(message: impl Into<String>) -> Self {
        Self {
            code: 403,
            reason: "Forbidden",
            message: message.into(),
            causes: Vec::new(),
        }
    }

    /// A fault of ours: the client is told no more than that.
    fn internal() -> Self {
        Self {
            code: 500,
            reason: "InternalError",
            message: "the ZentraLink admission webhook failed; see the operator's log".into(),
            causes: Vec::new(),
        }
    }

    fn deny(self, request: &AdmissionRequest<DynamicObject>) -> AdmissionResponse {
        let mut response = AdmissionResponse::from(request).deny(self.message);
        response.result.status = Some(StatusSummary::Failure);
        response.result.code = self.code;
        response.result.reason = self.reason.into();
        if !self.causes.is_empty() {
            response.result.details = Some(StatusDetails {
                name: request.name.clone(),
                group: request.kind.group.clone(),
                kind: request.kind.kind.clone(),
                uid: String::new(),
                causes: self.causes,
                retry_after_seconds: 0,
            });
        }
        response
    }
}

// ------------------------------------------------------------------- serving

/// `/validate` and `/mutate` over plain HTTP (TLS is added by [`serve`]).
pub fn router(operator_user: String) -> Router {
    let operator_user: Arc<str> = operator_user.into();
    Router::new()
        .route(VALIDATE_PATH, post(validate_handler))
        .route(MUTATE_PATH, post(mutate_handler))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(operator_user)
}

async fn validate_handler(
    State(operator_user): State<Arc<str>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    answer(body, &operator_user, "validate", validate)
}

async fn mutate_handler(
    State(operator_user): State<Arc<str>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    answer(body, &operator_user, "mutate", mutate)
}

type Decide = fn(&AdmissionRequest<DynamicObject>, &str) -> AdmissionResponse;

fn answer(
    body: Result<Bytes, BytesRejection>,
    operator_user: &str,
    step: &'static str,
    decide: Decide,
) -> Response {
    let body = match body {
        Ok(body) => body,
        Err(rejection) => return rejection.into_response(),
    };
    let review: AdmissionReview<DynamicObject> = match serde_json::from_slice(&body) {
        Ok(review) => review,
        Err(e) => {
            let message = format!("not an AdmissionReview: {}", shorten(&e.to_string(), 300));
            return (StatusCode::BAD_REQUEST, message).into_response();
        }
    };
    let request: AdmissionRequest<DynamicObject> = match review.try_into() {
        Ok(request) => request,
        Err(_) => {
            return (
                StatusCode::BAD_REQUEST,
                "the AdmissionReview has no request",
            )
                .into_response();
        }
    };
    let response = decide(&request, operator_user);
    if response.allowed {
        tracing::debug!(
            step,
            uid = %request.uid,
            kind = %request.kind.kind,
            name = %request.name,
            user = request.user_info.username.as_deref().unwrap_or(""),
            patched = response.patch.is_some(),
            "admitted"
        );
    } else {
        tracing::info!(
            step,
            uid = %request.uid,
            kind = %request.kind.kind,
            namespace = request.namespace.as_deref().unwrap_or(""),
            name = %request.name,
            user = request.user_info.username.as_deref().unwrap_or(""),
            reason = %response.result.message,
            "refused"
        );
    }
    axum::Json(response.into_review()).into_response()
}

/// Serves the webhook over HTTPS until `shutdown` completes; see [`AdmissionServer`].
pub async fn serve(
    options: AdmissionOptions,
    client: Option<kube::Client>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), AdmissionError> {
    AdmissionServer::bind(options, client)
        .await?
        .run(shutdown)
        .await
}

/// The webhook bound to its address with its certificate, not yet serving:
/// tests read the address (`127.0.0.1:0`) and the CA before they run it.
pub struct AdmissionServer {
    listener: TcpListener,
    acceptor: TlsAcceptor,
    router: Router,
    certificate: Arc<ServingCertificate>,
    reload: bool,
    ca_bundle: Option<String>,
    injection: Option<(kube::Client, Vec<String>)>,
}

impl fmt::Debug for AdmissionServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdmissionServer")
            .field("listen", &self.listener.local_addr().ok())
            .field("reload", &self.reload)
            .field("inject_into", &self.injection.as_ref().map(|(_, c)| c))
            .finish_non_exhaustive()
    }
}

impl AdmissionServer {
    /// Reads or generates the certificate and binds the address. With a
    /// generated certificate and named webhook configurations, `client` is
    /// required: [`AdmissionServer::run`] keeps the CA in their `caBundle`.
    pub async fn bind(
        options: AdmissionOptions,
        client: Option<kube::Client>,
    ) -> Result<Self, AdmissionError> {
        let (certificate, ca_bundle, reload, injection) = match options.tls {
            TlsSource::Files { dir } => {
                let (certificate, ca) = ServingCertificate::load(&dir).await?;
                (certificate, ca, true, None)
            }
            TlsSource::Generate {
                service,
                namespace,
                extra_sans,
                webhook_configs,
            } => {
                let names = tls::serving_names(&service, &namespace, &extra_sans);
                let now = chrono::Utc::now();
                // with the cluster, the replicas share one CA through a Secret,
                // so they patch the same caBundle; without, a CA of its own
                let ca = match &client {
                    Some(client) => {
                        tls::shared_ca(client, &namespace, &format!("{service}-ca"), now).await?
                    }
                    None => tls::generate_ca(now)?,
                };
                let generated = tls::issue(&ca, &names, now)?;
                let key = tls::certified_key(
                    generated.cert_pem.as_bytes(),
                    generated.key_pem.expose().as_bytes(),
                    Path::new("(generated)"),
                )?;
                let injection = match (webhook_configs.is_empty(), client) {
                    (true, _) => None,
                    (false, Some(client)) => Some((client, webhook_configs)),
                    (false, None) => {
                        return Err(AdmissionError::NoClient {
                            configs: webhook_configs.join(", "),
                        });
                    }
                };
                (
                    ServingCertificate::fixed(key),
                    Some(generated.ca_pem),
                    false,
                    injection,
                )
            }
        };
        let certificate = Arc::new(certificate);
        let acceptor = TlsAcceptor::from(tls::server_config(Arc::clone(&certificate))?);
        let listener =
            TcpListener::bind(options.listen)
                .await
                .map_err(|source| AdmissionError::Bind {
                    addr: options.listen,
                    source,
                })?;
        Ok(Self {
            listener,
            acceptor,
            router: router(options.operator_user),
            certificate,
            reload,
            ca_bundle,
            injection,
        })
    }

    /// The bound address (the port chosen for `:0`).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The CA of the serving certificate in PEM: the generated one, or the
    /// directory's `ca.crt`.
    pub fn ca_bundle(&self) -> Option<&str> {
        self.ca_bundle.as_deref()
    }

    /// Serves until `shutdown` completes, then lets open requests finish
    /// (for a few seconds). Meanwhile a certificate directory is read again
    /// when renewed, and a generated CA is kept in the webhook configurations.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), AdmissionError> {
        let mut background = tokio::task::JoinSet::new();
        if self.reload {
            background.spawn(tls::keep_reloading(Arc::clone(&self.certificate)));
        }
        if let (Some((client, configs)), Some(ca)) = (self.injection, self.ca_bundle.clone()) {
            background.spawn(tls::keep_ca_bundle(client, configs, ca));
        }
        let graceful = GracefulShutdown::new();
        let connections = Arc::new(Semaphore::new(MAX_CONNECTIONS));
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            let (stream, peer) = tokio::select! {
                () = &mut shutdown => break,
                accepted = self.listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        tracing::warn!("admission webhook: accepting a connection failed: {e}");
                        tokio::time::sleep(ACCEPT_BACKOFF).await;
                        continue;
                    }
                },
            };
            let Ok(permit) = Arc::clone(&connections).try_acquire_owned() else {
                tracing::warn!(%peer, "admission webhook: {MAX_CONNECTIONS} connections open; closing a new one");
                continue;
            };
            let acceptor = self.acceptor.clone();
            let service = TowerToHyperService::new(self.router.clone());
            let watcher = graceful.watcher();
            tokio::spawn(async move {
                let _permit = permit;
                let stream =
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(stream)) => stream,
                        Ok(Err(e)) => {
                            tracing::debug!(%peer, "admission webhook: TLS handshake failed: {e}");
                            return;
                        }
                        Err(_) => {
                            tracing::debug!(%peer, "admission webhook: TLS handshake timed out");
                            return;
                        }
                    };
                let connection = hyper::server::conn::http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(HEADER_TIMEOUT)
                    .serve_connection(TokioIo::new(stream), service);
                if let Err(e) = watcher.watch(connection).await {
                    tracing::debug!(%peer, "admission webhook: connection ended: {e}");
                }
            });
        }
        drop(self.listener);
        background.abort_all();
        if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
            .await
            .is_err()
        {
            tracing::warn!(
                "admission webhook: requests still open after {}s were dropped at shutdown",
                SHUTDOWN_GRACE.as_secs()
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    const OPERATOR: &str = "system:serviceaccount:zentralink:zentralink-operator";
    const DIGEST: &str = "sha256:0000000000000000000000000000000000000000000000000000000000000000";

    // ------------------------------------------------------------ fixtures

    /// An object as the API server sends it: with what it adds to a manifest.
    fn object(kind: &str, name: &str, spec: Value) -> Value {
        let mut metadata = json!({
            "name": name,
            "uid": "9d1f0c33-53a0-4f6b-9c6d-6c1d3b1e0a11",
            "resourceVersion": "4711",
            "generation": 1,
            "creationTimestamp": "2026-03-01T12:00:00Z",
            "managedFields": [{ "manager": "kubectl", "operation": "Update", "apiVersion": "dns.zentralink.net/v1alpha1" }]
        });
        if kind != "Tenant" {
            metadata["namespace"] = json!("acme");
        }
        json!({ "apiVersion": "dns.zentralink.net/v1alpha1", "kind": kind, "metadata": metadata, "spec": spec })
    }

    fn zone(values: &[&str]) -> Value {
        object(
            "DnsZone",
            "acme-example",
            json!({
                "zone": "acme.example.",
                "providerRef": { "name": "created-later" },
                "recordSets": [ { "name": "www", "type": "A", "values": values } ]
            }),
        )
    }

    fn change_request() -> Value {
        object(
            "DnsChangeRequest",
            "rollback-1",
            json!({ "zoneRef": "acme-example", "rollbackTo": "8c5b4c1e-0a7e-4f57-9a59-2d3c9e6f1b20" }),
        )
    }

    fn approval() -> Value {
        object(
            "Approval",
            "alice-approves",
            json!({
                "changeRequest": "acme-example-0000000",
                "planDigest": DIGEST,
                "approver": "alice",
                "decision": "Approve",
                "createdAt": "2026-03-01T12:00:00Z",
                "signature": "-----BEGIN SSH SIGNATURE-----\nU1NIU0lH\n-----END SSH SIGNATURE-----\n"
            }),
        )
    }

    fn with_annotation(mut object: Value, key: &str, value: &str) -> Value {
        object["metadata"]["annotations"][key] = json!(value);
        object
    }

    fn stamped(object: Value, user: &str) -> Value {
        with_annotation(object, REQUESTER_ANNOTATION, user)
    }

    fn with_requester(mut object: Value, user: &str) -> Value {
        object["spec"]["requester"] = json!(user);
        object
    }

    /// The AdmissionReview the API server posts, as JSON.
    fn review_json(operation: &str, user: &str, object: &Value, old: Option<&Value>) -> Value {
        let kind = object["kind"].as_str().unwrap_or_default();
        let plural = format!("{}s", kind.to_lowercase());
        let namespace = object["metadata"]["namespace"].clone();
        json!({
            "kind": "AdmissionReview",
            "apiVersion": "admission.k8s.io/v1",
            "request": {
                "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
                "kind": { "group": "dns.zentralink.net", "version": "v1alpha1", "kind": kind },
                "resource": { "group": "dns.zentralink.net", "version": "v1alpha1", "resource": plural },
                "requestKind": { "group": "dns.zentralink.net", "version": "v1alpha1", "kind": kind },
                "requestResource": { "group": "dns.zentralink.net", "version": "v1alpha1", "resource": plural },
                "name": object["metadata"]["name"],
                "namespace": namespace,
                "operation": operation,
                "userInfo": { "username": user, "uid": "1", "groups": ["system:authenticated"] },
                "object": if operation == "DELETE" { Value::Null } else { object.clone() },
                "oldObject": old.cloned().unwrap_or(Value::Null),
                "dryRun": false,
                "options": { "kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1" }
            }
        })
    }

    /// The request as the API server sends it to /validate: configuration
    /// kinds carry the stamp /mutate gave them (the tables here are about
    /// the other rules; stamping has its own tests).
    fn request(
        operation: &str,
        user: &str,
        object: &Value,
        old: Option<&Value>,
    ) -> AdmissionRequest<DynamicObject> {
        let configuration = matches!(
            object["kind"].as_str(),
            Some("Tenant" | "TenantPolicy" | "ProviderConnection")
        );
        let object = if configuration
            && object["metadata"]["annotations"][REQUESTER_ANNOTATION].is_null()
            && user != OPERATOR
        {
            stamped(object.clone(), user)
        } else {
            object.clone()
        };
        unstamped_request(operation, user, &object, old)
    }

    fn unstamped_request(
        operation: &str,
        user: &str,
        object: &Value,
        old: Option<&Value>,
    ) -> AdmissionRequest<DynamicObject> {
        let review: AdmissionReview<DynamicObject> =
            serde_json::from_value(review_json(operation, user, object, old)).unwrap();
        review.try_into().unwrap()
    }

    fn create(user: &str, object: &Value) -> AdmissionRequest<DynamicObject> {
        request("CREATE", user, object, None)
    }

    fn update(user: &str, old: &Value, new: &Value) -> AdmissionRequest<DynamicObject> {
        request("UPDATE", user, new, Some(old))
    }

    /// What the object becomes with the response's patch applied.
    fn patched(request: &AdmissionRequest<DynamicObject>, response: &AdmissionResponse) -> Value {
        let mut object = serde_json::to_value(request.object.as_ref().unwrap()).unwrap();
        if let Some(patch) = &response.patch {
            let patch: Patch = serde_json::from_slice(patch).unwrap();
            json_patch::patch(&mut object, &patch).unwrap();
        }
        object
    }

    #[derive(Debug)]
    enum Expect {
        Allowed,
        /// Refused with this HTTP code and a message containing this text.
        Refused(u16, &'static str),
    }

    fn check(case: &str, response: &AdmissionResponse, expect: &Expect) {
        match expect {
            Expect::Allowed => assert!(
                response.allowed,
                "{case}: refused: {}",
                response.result.message
            ),
            Expect::Refused(code, fragment) => {
                assert!(!response.allowed, "{case}: allowed");
                assert_eq!(
                    response.result.code, *code,
                    "{case}: {}",
                    response.result.message
                );
                assert!(
                    response.result.message.contains(fragment),
                    "{case}: {:?} does not contain {fragment:?}",
                    response.result.message
                );
            }
        }
    }

    // ------------------------------------------------------------ validate

    #[test]
    fn validation_table() {
        use Expect::{Allowed, Refused};
        let bob = "bob@acme.example";
        let valid = stamped(zone(&["192.0.2.1"]), bob);
        let invalid = stamped(zone(&["300.1.1.1"]), bob);
        let mut finalizing = invalid.clone();
        finalizing["metadata"]["finalizers"] = json!(["dns.zentralink.net/finalizer"]);
        let mut status_only = invalid.clone();
        status_only["status"] = json!({ "observedGeneration": 1 });
        let mut relabelled = approval();
        relabelled["metadata"]["labels"] = json!({ "team": "dns" });
        relabelled["metadata"]["finalizers"] = json!(["example.com/keep"]);
        let mut redecided = approval();
        redecided["spec"]["decision"] = json!("Reject");
        let mut bad_name = valid.clone();
        bad_name["metadata"]["name"] = json!("a..b");
        let mut other_group = invalid.clone();
        other_group["apiVersion"] = json!("example.com/v1");

        let cases: Vec<(&str, AdmissionRequest<DynamicObject>, Expect)> = vec![
            ("a valid zone", create(bob, &valid), Allowed),
            (
                "a bad record value, with its field path and the message of `zentralink validate`",
                create(bob, &invalid),
                Refused(
                    422,
                    "DnsZone acme/acme-example is invalid: spec.recordSets[0].values[0]: \"300.1.1.1\" is not an IPv4 address",
                ),
            ),
            (
                "a zone whose connection does not exist yet (a cross-reference)",
                create(bob, &valid),
                Allowed,
            ),
            (
                "an object name that is not a DNS subdomain",
                create(bob, &bad_name),
                Refused(422, "metadata.name: \"a..b\" is not a valid object name"),
            ),
            (
                "a spec update to an invalid value",
                update(bob, &valid, &invalid),
                Refused(422, "spec.recordSets[0].values[0]"),
            ),
            (
                "a metadata-only update of an object admitted under older rules (a finalizer removed)",
                update(bob, &finalizing, &invalid),
                Allowed,
            ),
            (
                "a delete",
                request("DELETE", bob, &invalid, Some(&invalid)),
                Allowed,
            ),
            (
                "a plain credential in a connection",
                create(
                    bob,
                    &object(
                        "ProviderConnection",
                        "pdns",
                        json!({ "type": "powerdns", "powerdns": { "url": "http://127.0.0.1:8081" }, "credentials": { "value": "hunter2" } }),
                    ),
                ),
                Refused(
                    422,
                    "spec.credentials.value: credentials in a manifest must be encrypted (enc:v1:...)",
                ),
            ),
            (
                "an encrypted credential in a connection",
                create(
                    bob,
                    &object(
                        "ProviderConnection",
                        "pdns",
                        json!({ "type": "powerdns", "powerdns": { "url": "http://127.0.0.1:8081" }, "credentials": { "value": "enc:v1:k1:AAAA" } }),
                    ),
                ),
                Allowed,
            ),
            (
                "a policy asking for no approvals",
                create(
                    bob,
                    &object(
                        "TenantPolicy",
                        "policy",
                        json!({ "approvals": { "minApprovals": 0 } }),
                    ),
                ),
                Refused(
                    422,
                    "spec.approvals.minApprovals: minApprovals must be at least 1",
                ),
            ),
            (
                "a tenant with no allowed domain",
                create(
                    bob,
                    &object(
                        "Tenant",
                        "acme",
                        json!({ "displayName": "Acme", "namespaces": ["acme"], "allowedDomains": [] }),
                    ),
                ),
                Refused(
                    422,
                    "Tenant acme is invalid: spec.allowedDomains: at least one allowed domain is required",
                ),
            ),
            (
                "a change request with a snapshot id that is not one",
                create(
                    bob,
                    &with_requester(
                        object(
                            "DnsChangeRequest",
                            "rollback-1",
                            json!({ "zoneRef": "acme-example", "rollbackTo": "yesterday" }),
                        ),
                        bob,
                    ),
                ),
                Refused(422, "spec.rollbackTo: \"yesterday\" is not a snapshot id"),
            ),
            ("an approval", create(bob, &approval()), Allowed),
            (
                "an unsigned approval",
                create(bob, &{
                    let mut a = approval();
                    a["spec"]["signature"] = json!("trust me");
                    a
                }),
                Refused(
                    422,
                    "spec.signature: an SSH signature (-----BEGIN SSH SIGNATURE-----) is required",
                ),
            ),
            (
                "an approval's spec changed",
                update(bob, &approval(), &redecided),
                Refused(422, IMMUTABLE_APPROVAL),
            ),
            (
                "an approval's labels and finalizers changed",
                update(bob, &approval(), &relabelled),
                Allowed,
            ),
            (
                "the operator changing an approval's spec",
                update(OPERATOR, &approval(), &redecided),
                Refused(422, IMMUTABLE_APPROVAL),
            ),
            (
                "a zone the mutating webhook did not stamp",
                create(bob, &zone(&["192.0.2.1"])),
                Refused(
                    403,
                    "check that the MutatingWebhookConfiguration sends DnsZone",
                ),
            ),
            (
                "a zone stamped with someone else",
                create(bob, &stamped(zone(&["192.0.2.1"]), "alice@acme.example")),
                Refused(
                    403,
                    "is set to \"alice@acme.example\", but you are \"bob@acme.example\"",
                ),
            ),
            (
                "a change request carrying its requester from the operator",
                create(
                    OPERATOR,
                    &with_requester(change_request(), "alice@acme.example"),
                ),
                Allowed,
            ),
        ];
        for (case, request, expect) in &cases {
            check(case, &validate(request, OPERATOR), expect);
        }

        // not ours to judge: another group, a subresource
        let mut foreign = create(bob, &other_group);
        foreign.kind.group = "example.com".into();
        check("another group", &validate(&foreign, OPERATOR), &Allowed);
        let mut status = update(bob, &invalid, &status_only);
        status.sub_resource = Some("status".into());
        check(
            "the status subresource",
            &validate(&status, OPERATOR),
            &Allowed,
        );
    }

    #[test]
    fn a_refusal_lists_every_error_with_its_field_as_a_cause() {
        let request = create(
            "bob",
            &stamped(zone(&["300.1.1.1", "192.0.2.1", "192.0.2.1"]), "bob"),
        );
        let response = validate(&request, OPERATOR);
        assert!(!response.allowed);
        assert_eq!(response.result.reason, "Invalid");
        let causes: Vec<(&str, &str)> = response
            .result
            .details
            .as_ref()
            .unwrap()
            .causes
            .iter()
            .map(|c| (c.field.as_str(), c.message.as_str()))
            .collect();
        assert_eq!(
            causes,
            [
                (
                    "spec.recordSets[0].values[0]",
                    "\"300.1.1.1\" is not an IPv4 address"
                ),
                (
                    "spec.recordSets[0].values[2]",
                    "value \"192.0.2.1\" is listed twice"
                ),
            ]
        );
        assert_eq!(
            response.result.message,
            "DnsZone acme/acme-example is invalid: spec.recordSets[0].values[0]: \"300.1.1.1\" is not an IPv4 address; spec.recordSets[0].values[2]: value \"192.0.2.1\" is listed twice"
        );
    }

    #[test]
    fn a_refusal_shows_at_most_twenty_errors_and_counts_the_rest() {
        let values: Vec<String> = (0..30).map(|i| format!("300.0.0.{i}")).collect();
        let values: Vec<&str> = values.iter().map(String::as_str).collect();
        let response = validate(&create("bob", &stamped(zone(&values), "bob")), OPERATOR);
        assert_eq!(
            response.result.details.as_ref().unwrap().causes.len(),
            MAX_ERRORS_SHOWN
        );
        assert!(
            response
                .result
                .message
                .ends_with("and 10 more (`zentralink validate` lists them all)"),
            "{}",
            response.result.message
        );
    }

    /// `kubectl apply -f examples/`: every object is admitted alone, in any order.
    #[test]
    fn every_example_object_is_admitted() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
        let mut admitted = 0;
        for dir in ["tenants", "acme", "globex"] {
            for entry in std::fs::read_dir(root.join(dir)).unwrap() {
                let path = entry.unwrap().path();
                if path.extension().is_none_or(|e| e != "yaml") {
                    continue;
                }
                let text = std::fs::read_to_string(&path).unwrap();
                for document in serde_yaml::Deserializer::from_str(&text) {
                    let object = Value::deserialize(document).unwrap();
                    if object.is_null() {
                        continue;
                    }
                    let mut request = create("alice@acme.example", &object);
                    let stamped = patched(&request, &mutate(&request, OPERATOR));
                    request.object = Some(serde_json::from_value(stamped).unwrap());
                    let response = validate(&request, OPERATOR);
                    assert!(
                        response.allowed,
                        "{}: {}",
                        path.display(),
                        response.result.message
                    );
                    admitted += 1;
                }
            }
        }
        assert!(admitted >= 10, "only {admitted} example objects found");
    }

    #[test]
    fn the_document_text_reads_back_as_the_same_strings() {
        let tricky = "a\u{2028}b\u{85}c\u{7f}d\te\u{1F600}f\"g\\h\u{feff}i\u{e9}";
        let document = json!({ "spec": { tricky: [tricky] } });
        let text = yaml_text(&document).unwrap();
        assert!(text.is_ascii(), "{text}");
        let read: Value = serde_yaml::from_str(&text).unwrap();
        assert_eq!(read, document);
    }

    #[test]
    fn a_type_error_names_its_field_as_the_manifest_parser_does() {
        let mut object = stamped(zone(&["192.0.2.1"]), "bob");
        object["spec"]["recordSets"][0]["ttl"] = json!("soon");
        let response = validate(&create("bob", &object), OPERATOR);
        assert!(!response.allowed);
        assert!(
            response
                .result
                .message
                .contains("spec.recordSets[0].ttl: invalid type"),
            "{}",
            response.result.message
        );
    }

    // -------------------------------------------------------------- mutate

    #[test]
    fn mutation_table() {
        let alice = "alice@acme.example";
        let bob = "bob@acme.example";
        let mallory = "mallory@evil.example";
        let zone_v1 = zone(&["192.0.2.1"]);
        let zone_v2 = zone(&["192.0.2.2"]);
        let mut finalized = stamped(zone_v1.clone(), alice);
        finalized["metadata"]["finalizers"] = json!(["dns.zentralink.net/finalizer"]);

        // (case, request, what the requester field holds afterwards, or the refusal)
        type Outcome = Result<Option<&'static str>, (u16, &'static str)>;
        let cases: Vec<(&str, AdmissionRequest<DynamicObject>, Outcome)> = vec![
            (
                "a zone created without annotations",
                create(bob, &zone_v1),
                Ok(Some(bob)),
            ),
            (
                "a zone created with other annotations",
                create(bob, &with_annotation(zone_v1.clone(), "team", "dns")),
                Ok(Some(bob)),
            ),
            (
                "a zone created stamped with its own user",
                create(bob, &stamped(zone_v1.clone(), bob)),
                Ok(Some(bob)),
            ),
            (
                "a zone created claiming someone else",
                create(mallory, &stamped(zone_v1.clone(), alice)),
                Err((
                    403,
                    "the annotation dns.zentralink.net/requested-by is set to \"alice@acme.example\", but you are \"mallory@evil.example\"",
                )),
            ),
            (
                "the operator creating a zone for someone",
                create(OPERATOR, &stamped(zone_v1.clone(), alice)),
                Ok(Some(alice)),
            ),
            (
                "the operator creating a zone",
                create(OPERATOR, &zone_v1),
                Ok(Some(OPERATOR)),
            ),
            (
                "a zone's spec changed by another user",
                update(
                    bob,
                    &stamped(zone_v1.clone(), alice),
                    &stamped(zone_v2.clone(), alice),
                ),
                Ok(Some(bob)),
            ),
            (
                "a zone's spec changed and the annotation removed",
                update(bob, &stamped(zone_v1.clone(), alice), &zone_v2),
                Ok(Some(bob)),
            ),
            (
                "a zone's spec changed, claiming someone else",
                update(
                    mallory,
                    &stamped(zone_v1.clone(), alice),
                    &stamped(zone_v2.clone(), bob),
                ),
                Err((
                    403,
                    "is set to \"bob@acme.example\", but you are \"mallory@evil.example\"",
                )),
            ),
            (
                "only the annotation removed: it is put back",
                update(bob, &stamped(zone_v1.clone(), alice), &zone_v1),
                Ok(Some(alice)),
            ),
            (
                "only the annotation changed to the user's own name: it is put back",
                update(
                    bob,
                    &stamped(zone_v1.clone(), alice),
                    &stamped(zone_v1.clone(), bob),
                ),
                Ok(Some(alice)),
            ),
            (
                "only the annotation changed to a third user",
                update(
                    bob,
                    &stamped(zone_v1.clone(), alice),
                    &stamped(zone_v1.clone(), mallory),
                ),
                Err((
                    403,
                    "is set to \"mallory@evil.example\", but you are \"bob@acme.example\"",
                )),
            ),
            (
                "the operator adding its finalizer",
                update(OPERATOR, &stamped(zone_v1.clone(), alice), &finalized),
                Ok(Some(alice)),
            ),
            (
                "a metadata-only update of a zone made before the webhook",
                update(
                    bob,
                    &zone_v1,
                    &with_annotation(zone_v1.clone(), "team", "dns"),
                ),
                Ok(None),
            ),
            (
                "a change request created",
                create(bob, &change_request()),
                Ok(Some(bob)),
            ),
            (
                "a change request created claiming someone else",
                create(bob, &with_requester(change_request(), alice)),
                Err((
                    403,
                    "spec.requester is set to \"alice@acme.example\", but you are \"bob@acme.example\"",
                )),
            ),
            (
                "the operator mirroring a change request with its requester",
                create(OPERATOR, &with_requester(change_request(), alice)),
                Ok(Some(alice)),
            ),
            (
                "the operator updating a mirrored change request",
                update(
                    OPERATOR,
                    &with_requester(change_request(), alice),
                    &with_requester(
                        {
                            let mut c = change_request();
                            c["spec"]["zoneRef"] = json!("other-zone");
                            c
                        },
                        alice,
                    ),
                ),
                Ok(Some(alice)),
            ),
            (
                "a change request's requester alone changed to the user: put back",
                update(
                    bob,
                    &with_requester(change_request(), alice),
                    &with_requester(change_request(), bob),
                ),
                Ok(Some(alice)),
            ),
            (
                "a change request's spec changed by another user",
                update(
                    bob,
                    &with_requester(change_request(), alice),
                    &with_requester(
                        {
                            let mut c = change_request();
                            c["spec"]["rollbackTo"] = json!("0f5b4c1e-0a7e-4f57-9a59-2d3c9e6f1b20");
                            c
                        },
                        alice,
                    ),
                ),
                Ok(Some(bob)),
            ),
            (
                "a request without a user",
                create("", &zone_v1),
                Err((403, "the request names no user")),
            ),
        ];
        for (case, request, outcome) in &cases {
            let response = mutate(request, OPERATOR);
            match outcome {
                Err((code, fragment)) => check(case, &response, &Expect::Refused(*code, fragment)),
                Ok(expected) => {
                    check(case, &response, &Expect::Allowed);
                    let object = patched(request, &response);
                    let field = if object["kind"] == "DnsZone" {
                        &object["metadata"]["annotations"][REQUESTER_ANNOTATION]
                    } else {
                        &object["spec"]["requester"]
                    };
                    assert_eq!(field.as_str(), *expected, "{case}");
                    // what mutate stamps, validate admits
                    let stamped: DynamicObject = serde_json::from_value(object).unwrap();
                    let mut after = request.clone();
                    after.object = Some(stamped);
                    check(case, &validate(&after, OPERATOR), &Expect::Allowed);
                }
            }
        }
    }

    #[test]
    fn a_stamp_that_needs_no_change_sends_no_patch() {
        let request = create("bob", &stamped(zone(&["192.0.2.1"]), "bob"));
        assert_eq!(mutate(&request, OPERATOR).patch, None);
    }

    #[test]
    fn a_put_back_value_comes_with_a_warning() {
        let old = stamped(zone(&["192.0.2.1"]), "alice");
        let response = mutate(&update("bob", &old, &zone(&["192.0.2.1"])), OPERATOR);
        let warnings = response.warnings.unwrap_or_default();
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains("it stays \"alice\""), "{warnings:?}");
    }

    #[test]
    fn a_change_to_the_configuration_is_stamped_too() {
        let policy = object(
            "TenantPolicy",
            "policy",
            json!({ "approvals": { "minApprovals": 1 } }),
        );
        let request = unstamped_request("CREATE", "bob", &policy, None);
        let response = mutate(&request, OPERATOR);
        assert!(response.allowed);
        let after = patched(&request, &response);
        assert_eq!(
            after["metadata"]["annotations"][REQUESTER_ANNOTATION],
            "bob"
        );
        assert!(validate(&unstamped_request("CREATE", "bob", &after, None), OPERATOR).allowed);
        // without the stamp, validation refuses: the mutating webhook was bypassed
        assert!(!validate(&request, OPERATOR).allowed);
    }

    #[test]
    fn other_kinds_are_not_stamped() {
        for object in [
            approval(),
            object("DnsSnapshot", "s", json!({ "zoneRef": "z" })),
        ] {
            let response = mutate(&create("bob", &object), OPERATOR);
            assert!(response.allowed);
            assert_eq!(response.patch, None);
        }
    }

    #[test]
    fn the_annotation_key_is_escaped_in_the_patch_path() {
        let request = create("bob", &with_annotation(zone(&["192.0.2.1"]), "team", "dns"));
        let patch: Value =
            serde_json::from_slice(mutate(&request, OPERATOR).patch.as_deref().unwrap()).unwrap();
        assert_eq!(
            patch,
            json!([{ "op": "add", "path": "/metadata/annotations/dns.zentralink.net~1requested-by", "value": "bob" }])
        );
    }

    // -------------------------------------------------------------- router

    async fn post(path: &str, body: impl Into<axum::body::Body>) -> (StatusCode, Vec<u8>) {
        use tower::ServiceExt;
        let request = http::Request::post(path)
            .header("content-type", "application/json")
            .body(body.into())
            .unwrap();
        let response = router(OPERATOR.into()).oneshot(request).await.unwrap();
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        (status, body.to_vec())
    }

    #[tokio::test]
    async fn the_router_answers_an_admission_review_with_its_uid() {
        let body = review_json("CREATE", "bob", &stamped(zone(&["300.1.1.1"]), "bob"), None);
        let (status, answer) = post(VALIDATE_PATH, body.to_string()).await;
        assert_eq!(status, StatusCode::OK);
        let answer: Value = serde_json::from_slice(&answer).unwrap();
        assert_eq!(answer["apiVersion"], "admission.k8s.io/v1");
        assert_eq!(answer["kind"], "AdmissionReview");
        let response = &answer["response"];
        assert_eq!(response["uid"], "705ab4f5-6393-11e8-b7cc-42010a800002");
        assert_eq!(response["allowed"], false);
        assert_eq!(response["status"]["code"], 422);
        assert_eq!(
            response["status"]["details"]["causes"][0]["field"],
            "spec.recordSets[0].values[0]"
        );
    }

    #[tokio::test]
    async fn the_router_returns_the_stamp_as_a_json_patch() {
        let body = review_json("CREATE", "bob", &zone(&["192.0.2.1"]), None);
        let (status, answer) = post(MUTATE_PATH, body.to_string()).await;
        assert_eq!(status, StatusCode::OK);
        let answer: Value = serde_json::from_slice(&answer).unwrap();
        let response = &answer["response"];
        assert_eq!(response["allowed"], true);
        assert_eq!(response["patchType"], "JSONPatch");
        // kube-core writes the bytes as a JSON array, which the API server
        // reads as well as the base64 string Go writes
        let patch: Vec<u8> = match &response["patch"] {
            Value::String(base64) => data_encoding::BASE64.decode(base64.as_bytes()).unwrap(),
            bytes => serde_json::from_value(bytes.clone()).unwrap(),
        };
        let patch: Value = serde_json::from_slice(&patch).unwrap();
        assert_eq!(
            patch,
            json!([{ "op": "add", "path": "/metadata/annotations", "value": { REQUESTER_ANNOTATION: "bob" } }])
        );
    }

    #[tokio::test]
    async fn the_router_refuses_what_is_not_an_admission_review() {
        let (status, body) = post(VALIDATE_PATH, "{\"kind\": 1").await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(String::from_utf8_lossy(&body).starts_with("not an AdmissionReview"));
        let (status, _) = post(
            MUTATE_PATH,
            json!({ "kind": "AdmissionReview", "apiVersion": "admission.k8s.io/v1" }).to_string(),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let (status, _) = post(VALIDATE_PATH, vec![b' '; BODY_LIMIT + 1]).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        let (status, _) = post("/other", "{}").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }

    // ----------------------------------------------------------------- TLS

    fn client(ca: Option<&str>) -> reqwest::Client {
        zentralink_providers::install_tls_provider();
        let mut builder = reqwest::Client::builder().timeout(Duration::from_secs(10));
        if let Some(ca) = ca {
            builder =
                builder.tls_certs_only([reqwest::Certificate::from_pem(ca.as_bytes()).unwrap()]);
        }
        builder.build().unwrap()
    }

    #[tokio::test]
    async fn serve_answers_over_tls_with_a_generated_certificate() {
        let options = AdmissionOptions {
            listen: "127.0.0.1:0".parse().unwrap(),
            tls: TlsSource::Generate {
                service: "zentralink-webhook".into(),
                namespace: "zentralink".into(),
                extra_sans: vec!["127.0.0.1".into(), "localhost".into()],
                webhook_configs: Vec::new(),
            },
            operator_user: OPERATOR.into(),
        };
        let server = AdmissionServer::bind(options, None).await.unwrap();
        let port = server.local_addr().unwrap().port();
        let ca = server.ca_bundle().unwrap().to_owned();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let serving = tokio::spawn(server.run(async move {
            let _ = stopped.await;
        }));

        let body = review_json("CREATE", "bob", &zone(&["192.0.2.1"]), None);
        for host in ["127.0.0.1", "localhost"] {
            let answer: Value = client(Some(&ca))
                .post(format!("https://{host}:{port}{MUTATE_PATH}"))
                .json(&body)
                .send()
                .await
                .unwrap_or_else(|e| panic!("{host}: {e}"))
                .json()
                .await
                .unwrap();
            assert_eq!(answer["response"]["allowed"], true, "{answer}");
            assert_eq!(answer["response"]["patchType"], "JSONPatch");
        }

        // a client that does not trust the generated CA gets no answer
        let refused = client(None)
            .post(format!("https://127.0.0.1:{port}{VALIDATE_PATH}"))
            .json(&body)
            .send()
            .await;
        assert!(refused.is_err(), "an untrusted certificate was accepted");
        // nor does one that trusts another CA
        let other = tls::generate(&["127.0.0.1".into()], chrono::Utc::now()).unwrap();
        let refused = client(Some(&other.ca_pem))
            .post(format!("https://127.0.0.1:{port}{VALIDATE_PATH}"))
            .json(&body)
            .send()
            .await;
        assert!(refused.is_err(), "a certificate of another CA was accepted");

        stop.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(15), serving)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
    }

    #[tokio::test]
    async fn serve_reads_a_certificate_directory() {
        let dir = tempfile::tempdir().unwrap();
        let generated = tls::generate(&["127.0.0.1".into()], chrono::Utc::now()).unwrap();
        std::fs::write(dir.path().join(tls::CERT_FILE), &generated.cert_pem).unwrap();
        std::fs::write(dir.path().join(tls::KEY_FILE), generated.key_pem.expose()).unwrap();
        std::fs::write(dir.path().join(tls::CA_FILE), &generated.ca_pem).unwrap();
        let options = AdmissionOptions {
            listen: "127.0.0.1:0".parse().unwrap(),
            tls: TlsSource::Files {
                dir: dir.path().to_path_buf(),
            },
            operator_user: OPERATOR.into(),
        };
        let server = AdmissionServer::bind(options, None).await.unwrap();
        assert_eq!(server.ca_bundle(), Some(generated.ca_pem.as_str()));
        let port = server.local_addr().unwrap().port();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let serving = tokio::spawn(server.run(async move {
            let _ = stopped.await;
        }));
        let body = review_json("CREATE", "bob", &stamped(zone(&["300.1.1.1"]), "bob"), None);
        let answer: Value = client(Some(&generated.ca_pem))
            .post(format!("https://127.0.0.1:{port}{VALIDATE_PATH}"))
            .json(&body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(answer["response"]["allowed"], false);
        stop.send(()).unwrap();
        serving.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn a_ca_bundle_to_inject_needs_a_client() {
        let options = AdmissionOptions {
            listen: "127.0.0.1:0".parse().unwrap(),
            tls: TlsSource::Generate {
                service: "webhook".into(),
                namespace: "zentralink".into(),
                extra_sans: Vec::new(),
                webhook_configs: vec!["zentralink".into()],
            },
            operator_user: OPERATOR.into(),
        };
        let err = AdmissionServer::bind(options, None).await.unwrap_err();
        assert!(matches!(err, AdmissionError::NoClient { .. }), "{err}");
    }
}
