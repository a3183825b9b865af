//! `zentralink approve` and `zentralink verify`: show a change request's plan,
//! check its digest and sign a decision on it (or print the exact message for
//! `ssh-keygen -Y sign`); check an Approval document's signature. Does I/O:
//! reads key and approval files and the passphrase's environment variable
//! (through the lookup it is given). The caller fetches the change request
//! and prints what these functions return.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow, bail};
use clap::{Args, ValueEnum};
use k8s_openapi::jiff::Timestamp;
use ssh_key::{PrivateKey, PublicKey};
use zentralink_model::approval::{
    APPROVAL_NAMESPACE, ApprovalInput, ApprovalMessage, RequestFacts, decision_text, fingerprint,
    format_message_time, is_requester, judge, parse_message_time, sign, truncate_to_second,
    verify_signature,
};
use zentralink_model::catalog::{ApproverEntry, Policy, parse_ssh_public_key};
use zentralink_model::digest::{PlanDigest, plan_digest};
use zentralink_model::documents::{Resource, SourceFile, check_object_name, parse_documents};
use zentralink_model::plan::{ChangeOp, Plan, StoredPlan};
use zentralink_model::reconcile::RequestState;
use zentralink_model::resources::{Approval, ApprovalSpec, Decision, RecordSetState};
use zentralink_model::secrets::SecretString;

/// `zentralink approve CHANGE_REQUEST --key FILE`: shows the change request's
/// plan, checks its digest, and prints a signed Approval to apply or commit.
#[derive(Debug, Clone, Args)]
pub(crate) struct ApproveArgs {
    /// The change request to decide on (its DnsChangeRequest name).
    pub(crate) change_request: String,
    /// Your SSH private key (OpenSSH format). With --print-message, the
    /// public key (`.pub`) is enough.
    #[arg(long, value_name = "FILE")]
    pub(crate) key: PathBuf,
    /// Your name as the TenantPolicy lists you (default: the approver whose
    /// publicKeys hold this key).
    #[arg(long, value_name = "NAME")]
    pub(crate) approver: Option<String>,
    /// Reject the change request instead of approving it (one valid
    /// rejection rejects it).
    #[arg(long)]
    pub(crate) reject: bool,
    /// Why you reject it (kept as the Approval's comment; not signed).
    #[arg(
        long,
        value_name = "TEXT",
        requires = "reject",
        conflicts_with = "comment"
    )]
    pub(crate) reason: Option<String>,
    /// A note for the other approvers (the Approval's comment; not signed).
    #[arg(long, value_name = "TEXT")]
    pub(crate) comment: Option<String>,
    /// Print only the exact message to sign, to sign it yourself with
    /// `ssh-keygen -Y sign -n zentralink-approval -f KEY` (security keys,
    /// agents); see docs/approval-message.md.
    #[arg(long, conflicts_with_all = ["submit", "passphrase_env"])]
    pub(crate) print_message: bool,
    /// Submit the signed Approval instead of only printing it.
    #[arg(long)]
    pub(crate) submit: bool,
    /// Output format of the Approval.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = ApprovalFormat::Yaml)]
    pub(crate) output: ApprovalFormat,
    /// The environment variable that holds the passphrase of an encrypted key.
    #[arg(long, value_name = "NAME")]
    pub(crate) passphrase_env: Option<String>,
}

/// How the signed Approval is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ApprovalFormat {
    Yaml,
    Json,
}

/// `zentralink verify APPROVAL_FILE`: checks the signature of the Approval
/// documents in a file, without the store. Exit 0 when every one is valid, 1 otherwise.
#[derive(Debug, Clone, Args)]
pub(crate) struct VerifyArgs {
    /// A YAML or JSON file with one or more Approval documents.
    pub(crate) approval_file: PathBuf,
    /// The Tenant that owns the Approvals' namespace: the signed message
    /// binds it, and the document does not name it.
    #[arg(long)]
    pub(crate) tenant: String,
}

/// What `approve` made.
#[derive(Debug)]
pub(crate) struct Approved {
    /// The change request and its per-record plan, for the approver to read
    /// (print it on standard error: standard output is for `stdout`).
    pub(crate) plan: String,
    /// For standard output, exactly: the message (with --print-message) or
    /// the rendered Approval.
    pub(crate) stdout: Vec<u8>,
    /// The signed Approval, for --submit (none with --print-message).
    pub(crate) approval: Option<Approval>,
}

/// What a change request asks for, as stored.
#[derive(Debug, Clone)]
pub(crate) enum RequestPlan {
    /// Record-set operations on a zone (declared, or a rollback).
    Zone(StoredPlan),
    /// A change to the tenant's configuration.
    Config(zentralink_model::config::StoredConfigPlan),
}

impl From<StoredPlan> for RequestPlan {
    fn from(p: StoredPlan) -> Self {
        RequestPlan::Zone(p)
    }
}

/// Signs a decision on `request`, whose stored plan is `plan`, under the
/// tenant's `policy`, at `now`. Refuses when the plan does not have the
/// request's digest, when the request no longer waits, or when the operator
/// would refuse the approval. `env` looks up environment variables (the
/// passphrase named by --passphrase-env).
pub(crate) fn approve(
    args: &ApproveArgs,
    request: &RequestFacts,
    plan: &RequestPlan,
    policy: &Policy,
    now: Timestamp,
    env: &dyn Fn(&str) -> Option<String>,
) -> anyhow::Result<Approved> {
    if args.change_request != request.name {
        bail!(
            "asked to approve {} but was given change request {}",
            args.change_request,
            request.name
        );
    }
    let shown = render_plan(request, plan);
    check_plan_digest(request, plan)?;
    check_still_waiting(request, now)?;

    let key = KeyFile::read(&args.key)?;
    let approver = resolve_approver(args.approver.as_deref(), &key.public, policy, request)?;
    let decision = if args.reject {
        Decision::Reject
    } else {
        Decision::Approve
    };
    let message = ApprovalMessage::new(
        &request.tenant,
        &request.namespace,
        &request.name,
        request.digest,
        decision,
        &approver.name,
        truncate_to_second(now),
    )
    .map_err(|e| anyhow!("cannot build the approval message: {e}"))?;
    if args.print_message {
        return Ok(Approved {
            plan: shown,
            stdout: message.to_bytes(),
            approval: None,
        });
    }

    let private = key.private_for_signing(&args.key, args.passphrase_env.as_deref(), env)?;
    let signature = sign(APPROVAL_NAMESPACE, &message.to_bytes(), &private)
        .map_err(|e| anyhow!("cannot sign with {}: {e}", args.key.display()))?;
    let spec = ApprovalSpec {
        change_request: request.name.clone(),
        plan_digest: request.digest.to_string(),
        approver: approver.name.clone(),
        decision,
        created_at: format_message_time(message.created()),
        signature,
        comment: args.reason.clone().or_else(|| args.comment.clone()),
    };
    // What is handed out is what the operator will accept.
    let input = ApprovalInput::from_spec(&request.tenant, &request.namespace, &spec);
    if let Err(refusal) = judge(&input, request, policy, now) {
        bail!(
            "the operator would refuse this approval ({}): {}",
            refusal.code,
            refusal.message
        );
    }
    let name = approval_object_name(&request.name, &approver.name, decision)?;
    let mut approval = Approval::new(&name, spec);
    approval.metadata.namespace = Some(request.namespace.clone());
    let stdout = match args.output {
        ApprovalFormat::Yaml => serde_yaml::to_string(&approval)?.into_bytes(),
        ApprovalFormat::Json => {
            let mut json = serde_json::to_vec_pretty(&approval)?;
            json.push(b'\n');
            json
        }
    };
    Ok(Approved {
        plan: shown,
        stdout,
        approval: Some(approval),
    })
}

/// Nobody signs a digest blind: the digest must be the plan's.
fn check_plan_digest(request: &RequestFacts, stored: &RequestPlan) -> anyhow::Result<()> {
    let computed = match stored {
        RequestPlan::Zone(stored) => {
            let plan = Plan::from_stored(stored).map_err(|e| {
                anyhow!(
                    "the stored plan of change request {} cannot be read ({e}); not signing",
                    request.name
                )
            })?;
            plan_digest(&request.tenant, &plan)
        }
        RequestPlan::Config(config) => {
            if config.tenant != request.tenant {
                bail!(
                    "change request {} changes tenant {}'s configuration, not {}'s; not signing",
                    request.name,
                    config.tenant,
                    request.tenant
                );
            }
            zentralink_model::config::config_digest(&config.tenant, &config.config)
        }
    };
    if computed != request.digest {
        bail!(
            "change request {} says its digest is {}, but the plan shown has digest {computed}; \
             what you would sign is not what you were shown, so nothing was signed: \
             report this to the operator's administrators",
            request.name,
            request.digest
        );
    }
    Ok(())
}

fn check_still_waiting(request: &RequestFacts, now: Timestamp) -> anyhow::Result<()> {
    if request.state != RequestState::Pending {
        bail!(
            "change request {} is {}, no longer waiting for a decision",
            request.name,
            request.state
        );
    }
    if now >= request.expires_at {
        bail!(
            "change request {} expired at {}; it can no longer be decided on",
            request.name,
            format_message_time(request.expires_at)
        );
    }
    Ok(())
}

/// The approver signing: named, or found by the key; listed with this key,
/// in a role that may approve, and not the requester.
fn resolve_approver<'p>(
    named: Option<&str>,
    key: &PublicKey,
    policy: &'p Policy,
    request: &RequestFacts,
) -> anyhow::Result<&'p ApproverEntry> {
    let fp = fingerprint(key);
    let holders: Vec<&ApproverEntry> = policy
        .approvers
        .iter()
        .filter(|a| {
            a.public_keys
                .iter()
                .filter_map(|line| parse_ssh_public_key(line).ok())
                .any(|listed| listed.key_data() == key.key_data())
        })
        .collect();
    let approver = match (named, holders.as_slice()) {
        (_, []) => bail!(
            "no approver of tenant {:?} lists the key {fp}; the TenantPolicy's \
             spec.approvals.approvers[].publicKeys must hold it before it can sign",
            request.tenant
        ),
        (Some(name), _) => holders
            .iter()
            .find(|a| a.name == name)
            .copied()
            .ok_or_else(|| {
                anyhow!(
                    "the key {fp} is listed for {}, not for {name:?}",
                    names(&holders)
                )
            })?,
        (None, [only]) => *only,
        (None, several) => bail!(
            "the key {fp} is listed for {}; say which one you are with --approver NAME",
            names(several)
        ),
    };
    if !policy.approver_roles.contains(&approver.role) {
        bail!(
            "{:?} has the role {}, and tenant {:?} accepts approvals only from the roles {}",
            approver.name,
            approver.role.as_str(),
            request.tenant,
            policy
                .approver_roles
                .iter()
                .map(|r| r.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    if is_requester(approver, &request.requester) {
        bail!(
            "{:?} asked for this change (requester {:?}); another approver has to decide on it",
            approver.name,
            request.requester
        );
    }
    Ok(approver)
}

fn names(approvers: &[&ApproverEntry]) -> String {
    approvers
        .iter()
        .map(|a| format!("{:?}", a.name))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `<request>-<approver>-<approve|reject>`, the approver's name made a valid
/// object-name part.
fn approval_object_name(
    request: &str,
    approver: &str,
    decision: Decision,
) -> anyhow::Result<String> {
    let mut part = String::new();
    for c in approver.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            part.push(c);
        } else if !part.ends_with('-') {
            part.push('-');
        }
    }
    let part = part.trim_matches('-');
    let part = if part.is_empty() { "approver" } else { part };
    let verb = match decision {
        Decision::Approve => "approve",
        Decision::Reject => "reject",
    };
    let name = format!("{request}-{part}-{verb}");
    check_object_name(&name).map_err(|e| anyhow!("cannot name the Approval: {e}"))?;
    Ok(name)
}

/// The key file: an OpenSSH private key (its public half is stored in the
/// clear, even when encrypted) or a public key line.
pub(crate) struct KeyFile {
    pub(crate) public: PublicKey,
    /// The private key, or why there is none.
    private: Result<PrivateKey, String>,
}

impl KeyFile {
    pub(crate) fn read(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the key file {}", path.display()))?;
        let trimmed = text.trim();
        if trimmed.starts_with("-----BEGIN OPENSSH PRIVATE KEY-----") {
            return match PrivateKey::from_openssh(trimmed) {
                Ok(private) => Ok(Self {
                    public: private.public_key().clone(),
                    private: Ok(private),
                }),
                // ssh-key 0.6 cannot read some ECDSA keys (a scalar written
                // short); their .pub file still says who signs.
                Err(e) => {
                    let why = format!(
                        "cannot read the private key {} ({e}); sign with ssh-keygen instead: \
                         `zentralink approve ... --print-message > message.txt`, then \
                         `ssh-keygen -Y sign -n {APPROVAL_NAMESPACE} -f KEY message.txt`",
                        path.display()
                    );
                    let public_path = PathBuf::from(format!("{}.pub", path.display()));
                    let public = std::fs::read_to_string(&public_path)
                        .ok()
                        .and_then(|line| PublicKey::from_openssh(line.trim()).ok())
                        .ok_or_else(|| anyhow!("{why}"))?;
                    Ok(Self {
                        public,
                        private: Err(why),
                    })
                }
            };
        }
        if trimmed.starts_with("-----BEGIN") {
            bail!(
                "{} is not an OpenSSH key; rewrite it in the OpenSSH format with `ssh-keygen -p -f {}`",
                path.display(),
                path.display()
            );
        }
        let public = PublicKey::from_openssh(trimmed).map_err(|e| {
            anyhow!(
                "{} is neither an OpenSSH private key nor a public key line ({e})",
                path.display()
            )
        })?;
        Ok(Self {
            public,
            private: Err(format!(
                "{} is a public key; to sign, give the private key file, or print the message \
                 with --print-message and sign it with `ssh-keygen -Y sign -n {APPROVAL_NAMESPACE}`",
                path.display()
            )),
        })
    }

    pub(crate) fn private_for_signing(
        self,
        path: &Path,
        passphrase_env: Option<&str>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> anyhow::Result<PrivateKey> {
        let private = self.private.map_err(|why| anyhow!("{why}"))?;
        if !private.is_encrypted() {
            return Ok(private);
        }
        let Some(variable) = passphrase_env else {
            bail!(
                "{} is encrypted; name the environment variable that holds its passphrase with \
                 --passphrase-env NAME (or sign with ssh-keygen: see --print-message)",
                path.display()
            );
        };
        let passphrase = env(variable).map(SecretString::new).ok_or_else(|| {
            anyhow!("the environment variable {variable} (--passphrase-env) is not set")
        })?;
        private.decrypt(passphrase.expose()).map_err(|e| {
            anyhow!(
                "cannot decrypt {} with the passphrase in {variable} ({e}); is it the right passphrase?",
                path.display()
            )
        })
    }
}

/// The change request and its plan, as the approver reads it before signing.
pub(crate) fn render_plan(request: &RequestFacts, plan: &RequestPlan) -> String {
    match plan {
        RequestPlan::Zone(plan) => render_zone_plan(request, plan),
        RequestPlan::Config(config) => render_config_plan(request, config),
    }
}

fn render_config_plan(
    request: &RequestFacts,
    config: &zentralink_model::config::StoredConfigPlan,
) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "change request {}/{} (tenant {}): {}, requested by {}",
        request.namespace, request.name, request.tenant, request.state, request.requester
    );
    let _ = writeln!(
        out,
        "  a change to the tenant's configuration, judged by the policy in force before it: {} object(s), digest {}",
        config.config.len(),
        request.digest
    );
    for c in &config.config {
        let symbol = match c.op {
            ChangeOp::Create => '+',
            ChangeOp::Update => '~',
            ChangeOp::Delete => '-',
        };
        let place = if c.namespace.is_empty() {
            c.name.clone()
        } else {
            format!("{}/{}", c.namespace, c.name)
        };
        let _ = writeln!(out, "  {symbol} {} {place}", c.kind.as_str());
        let render = |v: &Option<serde_json::Value>| {
            v.as_ref()
                .map(|v| serde_yaml::to_string(v).unwrap_or_default())
                .unwrap_or_default()
        };
        let (old, new) = (render(&c.before), render(&c.after));
        let old: Vec<&str> = old.lines().collect();
        let new: Vec<&str> = new.lines().collect();
        for line in old.iter().filter(|l| !new.contains(l)) {
            let _ = writeln!(out, "      - {line}");
        }
        for line in new.iter().filter(|l| !old.contains(l)) {
            let _ = writeln!(out, "      + {line}");
        }
    }
    out
}

fn render_zone_plan(request: &RequestFacts, plan: &StoredPlan) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "change request {}/{} (tenant {}): {}, requested by {}",
        request.namespace, request.name, request.tenant, request.state, request.requester
    );
    let _ = writeln!(
        out,
        "  opened {}, expires {}",
        format_message_time(request.created_at),
        format_message_time(request.expires_at)
    );
    let _ = writeln!(
        out,
        "  zone {}: {} operation(s), digest {}",
        plan.zone,
        plan.changes.len(),
        request.digest
    );
    for change in &plan.changes {
        let symbol = match change.op {
            ChangeOp::Create => '+',
            ChangeOp::Update => '~',
            ChangeOp::Delete => '-',
        };
        let _ = write!(out, "  {symbol} {} {}", change.name, change.record_type);
        if !change.reasons.is_empty() {
            let _ = write!(out, "  (needs approval: {})", change.reasons.join("; "));
        }
        out.push('\n');
        let values = |s: &Option<RecordSetState>| s.as_ref().map(|s| s.values.clone());
        let (old, new) = (
            values(&change.before).unwrap_or_default(),
            values(&change.after).unwrap_or_default(),
        );
        match (&change.before, &change.after) {
            (Some(b), Some(a)) if b.ttl != a.ttl => {
                let _ = writeln!(out, "      ttl {} -> {}", b.ttl, a.ttl);
            }
            (None, Some(a)) => {
                let _ = writeln!(out, "      ttl {}", a.ttl);
            }
            _ => {}
        }
        for v in old.iter().filter(|v| !new.contains(v)) {
            let _ = writeln!(out, "      - {v}");
        }
        for v in new.iter().filter(|v| !old.contains(v)) {
            let _ = writeln!(out, "      + {v}");
        }
    }
    out
}

/// What `verify` found: every Approval's signature valid, and why not.
#[derive(Debug)]
pub(crate) struct Verified {
    /// Exit 0 when true, 1 otherwise.
    pub(crate) valid: bool,
    /// One paragraph per Approval, for standard output.
    pub(crate) text: String,
}

/// Checks the signature of every Approval in the file: rebuilds the message
/// from the document (with `--tenant`) and verifies the signature, without
/// the store or the policy.
pub(crate) fn verify(args: &VerifyArgs) -> anyhow::Result<Verified> {
    let path = &args.approval_file;
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let file = SourceFile::new(path.display().to_string(), text);
    let (objects, errors) = parse_documents(&file);
    let mut out = String::new();
    let mut valid = errors.is_empty();
    for e in errors.iter() {
        let _ = writeln!(out, "{e}");
    }
    let mut approvals = 0;
    for object in objects {
        let Resource::Approval(approval) = &object.resource else {
            let _ = writeln!(
                out,
                "{}:{}: a {} is not an Approval; skipped",
                file.name,
                object.origin.line().unwrap_or(1),
                object.resource.kind()
            );
            continue;
        };
        approvals += 1;
        let at = format!("{}:{}", file.name, object.origin.line().unwrap_or(1));
        match verify_one(&args.tenant, approval) {
            Ok(report) => {
                let _ = writeln!(out, "{at}: valid: {report}");
            }
            Err(why) => {
                valid = false;
                let _ = writeln!(out, "{at}: invalid: {why}");
            }
        }
    }
    if approvals == 0 {
        valid = false;
        let _ = writeln!(out, "{}: no Approval document found", file.name);
    } else if valid {
        let _ = writeln!(
            out,
            "Only the signatures were checked: whether each key belongs to its approver in the \
             TenantPolicy, and whether the change request still waits with this digest, the \
             operator checks when it reads the Approval."
        );
    }
    Ok(Verified { valid, text: out })
}

fn verify_one(tenant: &str, approval: &Approval) -> Result<String, String> {
    let name = approval.metadata.name.as_deref().unwrap_or("");
    let namespace = approval.metadata.namespace.as_deref().ok_or_else(|| {
        format!("Approval {name} has no metadata.namespace; the signed message binds the namespace")
    })?;
    let spec = &approval.spec;
    let digest: PlanDigest = spec
        .plan_digest
        .parse()
        .map_err(|e| format!("spec.planDigest: {e}"))?;
    let created =
        parse_message_time(&spec.created_at).map_err(|e| format!("spec.createdAt: {e}"))?;
    let message = ApprovalMessage::new(
        tenant,
        namespace,
        &spec.change_request,
        digest,
        spec.decision,
        &spec.approver,
        created,
    )
    .map_err(|e| e.to_string())?;
    let key = verify_signature(APPROVAL_NAMESPACE, &message.to_bytes(), &spec.signature).map_err(
        |e| {
            format!(
                "Approval {namespace}/{name} ({} of {} by {:?}, tenant {tenant:?}): {e}",
                decision_text(spec.decision),
                spec.change_request,
                spec.approver
            )
        },
    )?;
    Ok(format!(
        "Approval {namespace}/{name}: {} of change request {} (digest {digest}) by {:?}, signed at {} with the {} key {}",
        decision_text(spec.decision),
        spec.change_request,
        spec.approver,
        spec.created_at,
        key.algorithm().as_str(),
        fingerprint(&key)
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use ssh_key::private::Ed25519Keypair;
    use zentralink_model::plan::StoredChange;
    use zentralink_model::policy::Role;

    fn time(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn key(seed: u8) -> PrivateKey {
        PrivateKey::from(Ed25519Keypair::from_seed(&[seed; 32]))
    }

    fn stored_plan() -> StoredPlan {
        StoredPlan {
            zone: "acme.example.".into(),
            changes: vec![StoredChange {
                op: ChangeOp::Update,
                name: "acme.example.".into(),
                record_type: "MX".into(),
                before: Some(RecordSetState {
                    ttl: 300,
                    values: vec!["10 mx1.acme.example.".into()],
                }),
                after: Some(RecordSetState {
                    ttl: 600,
                    values: vec!["10 mx2.acme.example.".into()],
                }),
                reasons: vec!["record type MX".into()],
            }],
        }
    }

    fn request() -> RequestFacts {
        let digest = plan_digest("acme", &Plan::from_stored(&stored_plan()).unwrap());
        RequestFacts {
            tenant: "acme".into(),
            namespace: "acme".into(),
            name: format!("acme-example-{}", digest.short(12)),
            digest,
            state: RequestState::Pending,
            requester: "Dave <dave@example.com>".into(),
            created_at: time("2026-11-30T20:00:00Z"),
            expires_at: time("2026-12-03T20:00:00Z"),
        }
    }

    fn policy() -> Policy {
        let line = |seed| key(seed).public_key().to_openssh().unwrap();
        Policy {
            approvers: vec![
                ApproverEntry {
                    name: "Alice Example".into(),
                    email: Some("alice@example.com".into()),
                    role: Role::Admin,
                    public_keys: vec![line(1)],
                },
                ApproverEntry {
                    name: "bob".into(),
                    email: None,
                    role: Role::Viewer,
                    public_keys: vec![line(2)],
                },
            ],
            ..Policy::default()
        }
    }

    /// Salt and IV for encrypting a test key; not random, and need not be.
    struct CountingRng(u64);

    impl ssh_key::rand_core::RngCore for CountingRng {
        fn next_u32(&mut self) -> u32 {
            self.next_u64() as u32
        }
        fn next_u64(&mut self) -> u64 {
            self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1);
            self.0
        }
        fn fill_bytes(&mut self, dest: &mut [u8]) {
            for b in dest {
                *b = self.next_u64() as u8;
            }
        }
        fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), ssh_key::rand_core::Error> {
            self.fill_bytes(dest);
            Ok(())
        }
    }

    impl ssh_key::rand_core::CryptoRng for CountingRng {}

    struct Files {
        dir: tempfile::TempDir,
    }

    impl Files {
        fn new() -> Self {
            Self {
                dir: tempfile::tempdir().unwrap(),
            }
        }
        fn private(&self, seed: u8, passphrase: Option<&str>) -> PathBuf {
            let path = self.dir.path().join(format!("key-{seed}"));
            let mut key = key(seed);
            if let Some(p) = passphrase {
                key = key.encrypt(&mut CountingRng(7), p).unwrap();
            }
            std::fs::write(
                &path,
                key.to_openssh(ssh_key::LineEnding::LF).unwrap().as_bytes(),
            )
            .unwrap();
            path
        }
        fn public(&self, seed: u8) -> PathBuf {
            let path = self.dir.path().join(format!("key-{seed}.pub"));
            std::fs::write(&path, key(seed).public_key().to_openssh().unwrap()).unwrap();
            path
        }
    }

    fn args(key: PathBuf) -> ApproveArgs {
        ApproveArgs {
            change_request: request().name,
            key,
            approver: None,
            reject: false,
            reason: None,
            comment: None,
            print_message: false,
            submit: false,
            output: ApprovalFormat::Yaml,
            passphrase_env: None,
        }
    }

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn now() -> Timestamp {
        time("2026-11-30T21:00:00.750Z")
    }

    #[test]
    fn approve_prints_a_signed_approval_that_verifies() {
        let files = Files::new();
        let out = approve(
            &args(files.private(1, None)),
            &request(),
            &stored_plan().into(),
            &policy(),
            now(),
            &no_env,
        )
        .unwrap();
        assert!(out.plan.contains("~ acme.example. MX"), "{}", out.plan);
        assert!(out.plan.contains("- 10 mx1.acme.example."), "{}", out.plan);
        assert!(out.plan.contains("ttl 300 -> 600"), "{}", out.plan);
        let yaml = String::from_utf8(out.stdout).unwrap();
        assert!(yaml.contains("kind: Approval"), "{yaml}");
        assert!(yaml.contains("createdAt: 2026-11-30T21:00:00Z"), "{yaml}");
        assert!(!yaml.contains("status"), "{yaml}");
        let name = format!("{}-alice-example-approve", request().name);
        assert!(yaml.contains(&format!("name: {name}")), "{yaml}");

        let file = files.dir.path().join("approval.yaml");
        std::fs::write(&file, &yaml).unwrap();
        let verified = verify(&VerifyArgs {
            approval_file: file.clone(),
            tenant: "acme".into(),
        })
        .unwrap();
        assert!(verified.valid, "{}", verified.text);
        assert!(verified.text.contains("SHA256:"), "{}", verified.text);
        let other_tenant = verify(&VerifyArgs {
            approval_file: file,
            tenant: "globex".into(),
        })
        .unwrap();
        assert!(!other_tenant.valid, "{}", other_tenant.text);
        assert!(
            other_tenant.text.contains("does not verify"),
            "{}",
            other_tenant.text
        );
    }

    #[test]
    fn json_output_and_a_rejection_with_its_reason() {
        let files = Files::new();
        let mut a = args(files.private(1, None));
        a.reject = true;
        a.reason = Some("MX change not announced".into());
        a.output = ApprovalFormat::Json;
        let out = approve(
            &a,
            &request(),
            &stored_plan().into(),
            &policy(),
            now(),
            &no_env,
        )
        .unwrap();
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(json["spec"]["decision"], "Reject");
        assert_eq!(json["spec"]["comment"], "MX change not announced");
        assert_eq!(json["metadata"]["namespace"], "acme");
        assert!(
            json["metadata"]["name"]
                .as_str()
                .unwrap()
                .ends_with("-alice-example-reject")
        );
        assert!(out.approval.is_some());
    }

    #[test]
    fn print_message_writes_exactly_the_message_and_needs_only_the_public_key() {
        let files = Files::new();
        let mut a = args(files.public(1));
        a.print_message = true;
        let out = approve(
            &a,
            &request(),
            &stored_plan().into(),
            &policy(),
            now(),
            &no_env,
        )
        .unwrap();
        let expected = ApprovalMessage::new(
            "acme",
            "acme",
            request().name,
            request().digest,
            Decision::Approve,
            "Alice Example",
            time("2026-11-30T21:00:00Z"),
        )
        .unwrap()
        .to_bytes();
        assert_eq!(out.stdout, expected);
        assert!(out.approval.is_none());
        // Signing needs the private key.
        a.print_message = false;
        let err = approve(
            &a,
            &request(),
            &stored_plan().into(),
            &policy(),
            now(),
            &no_env,
        )
        .unwrap_err();
        assert!(err.to_string().contains("is a public key"), "{err:#}");
    }

    #[test]
    fn a_plan_that_does_not_match_its_digest_is_not_signed() {
        let files = Files::new();
        let mut tampered = stored_plan();
        tampered.changes[0].after = Some(RecordSetState {
            ttl: 600,
            values: vec!["10 evil.example.".into()],
        });
        let err = approve(
            &args(files.private(1, None)),
            &request(),
            &tampered.into(),
            &policy(),
            now(),
            &no_env,
        )
        .unwrap_err();
        assert!(err.to_string().contains("nothing was signed"), "{err:#}");
    }

    #[test]
    fn an_encrypted_key_needs_its_passphrase_variable() {
        let files = Files::new();
        let path = files.private(1, Some("s3cret"));
        let a = args(path.clone());
        let err = approve(
            &a,
            &request(),
            &stored_plan().into(),
            &policy(),
            now(),
            &no_env,
        )
        .unwrap_err();
        assert!(err.to_string().contains("--passphrase-env"), "{err:#}");
        let mut a = args(path);
        a.passphrase_env = Some("APPROVE_PASSPHRASE".into());
        let err = approve(
            &a,
            &request(),
            &stored_plan().into(),
            &policy(),
            now(),
            &no_env,
        )
        .unwrap_err();
        assert!(err.to_string().contains("is not set"), "{err:#}");
        let wrong = |_: &str| Some("wrong".to_owned());
        assert!(
            approve(
                &a,
                &request(),
                &stored_plan().into(),
                &policy(),
                now(),
                &wrong
            )
            .is_err()
        );
        let right = |name: &str| (name == "APPROVE_PASSPHRASE").then(|| "s3cret".to_owned());
        assert!(
            approve(
                &a,
                &request(),
                &stored_plan().into(),
                &policy(),
                now(),
                &right
            )
            .is_ok()
        );
    }

    #[test]
    fn keys_and_people_the_operator_would_refuse_are_refused_here() {
        let files = Files::new();
        // A key nobody lists.
        let err = approve(
            &args(files.private(9, None)),
            &request(),
            &stored_plan().into(),
            &policy(),
            now(),
            &no_env,
        )
        .unwrap_err();
        assert!(err.to_string().contains("publicKeys"), "{err:#}");
        // A viewer.
        let err = approve(
            &args(files.private(2, None)),
            &request(),
            &stored_plan().into(),
            &policy(),
            now(),
            &no_env,
        )
        .unwrap_err();
        assert!(err.to_string().contains("role"), "{err:#}");
        // Another approver's name.
        let mut a = args(files.private(1, None));
        a.approver = Some("bob".into());
        let err = approve(
            &a,
            &request(),
            &stored_plan().into(),
            &policy(),
            now(),
            &no_env,
        )
        .unwrap_err();
        assert!(err.to_string().contains("not for \"bob\""), "{err:#}");
        // The requester.
        let mut mine = request();
        mine.requester = "alice example <ALICE@example.com>".into();
        let err = approve(
            &args(files.private(1, None)),
            &mine,
            &stored_plan().into(),
            &policy(),
            now(),
            &no_env,
        )
        .unwrap_err();
        assert!(err.to_string().contains("asked for this change"), "{err:#}");
        // A request that no longer waits.
        let mut done = request();
        done.state = RequestState::Superseded;
        let err = approve(
            &args(files.private(1, None)),
            &done,
            &stored_plan().into(),
            &policy(),
            now(),
            &no_env,
        )
        .unwrap_err();
        assert!(err.to_string().contains("Superseded"), "{err:#}");
    }

    #[test]
    fn verify_says_why_not() {
        let files = Files::new();
        let out = approve(
            &args(files.private(1, None)),
            &request(),
            &stored_plan().into(),
            &policy(),
            now(),
            &no_env,
        )
        .unwrap();
        let yaml = String::from_utf8(out.stdout)
            .unwrap()
            .replace("decision: Approve", "decision: Reject");
        let file = files.dir.path().join("edited.yaml");
        std::fs::write(&file, yaml).unwrap();
        let verified = verify(&VerifyArgs {
            approval_file: file,
            tenant: "acme".into(),
        })
        .unwrap();
        assert!(!verified.valid);
        assert!(verified.text.contains("invalid"), "{}", verified.text);

        let empty = files.dir.path().join("empty.yaml");
        std::fs::write(&empty, "").unwrap();
        let verified = verify(&VerifyArgs {
            approval_file: empty,
            tenant: "acme".into(),
        })
        .unwrap();
        assert!(!verified.valid);
        assert!(verified.text.contains("no Approval"), "{}", verified.text);
    }

    #[test]
    fn approval_names_are_object_names() {
        assert_eq!(
            approval_object_name("cr-1", "Alice Example", Decision::Approve).unwrap(),
            "cr-1-alice-example-approve"
        );
        assert_eq!(
            approval_object_name("cr-1", "José", Decision::Reject).unwrap(),
            "cr-1-jos-reject"
        );
        assert_eq!(
            approval_object_name("cr-1", "---", Decision::Reject).unwrap(),
            "cr-1-approver-reject"
        );
    }
}
