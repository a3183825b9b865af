//! E-mail templates: the defaults built into the code for each event kind,
//! the overrides (the platform's, a tenant's) that replace them, sample data
//! for previews, and rendering as plain text with minijinja on a bounded
//! budget. Rendering does no I/O; [`effective`] reads the overrides.

use std::collections::BTreeMap;

use minijinja::{AutoEscape, Environment, UndefinedBehavior};
use serde::Serialize;
use zentralink_store::TenantId;

use crate::AppState;
use crate::error::WebError;
use crate::notifications::EventKind;

/// The most a rendered subject or body may hold.
const MAX_RENDERED: usize = 64 * 1024;
/// The most a template's source may hold.
pub const MAX_SOURCE: usize = 16 * 1024;
/// Instructions one rendering may run (a loop an admin writes ends).
const FUEL: u64 = 50_000;

/// A subject and body template pair.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MailTemplate {
    pub subject: String,
    pub body: String,
}

/// Where a template in force comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    BuiltIn,
    Platform,
    Tenant,
}

const FOOTER: &str =
    "\n--\nZentraLink for {{ tenant }}. Choose what you are notified of: {{ settings_link }}\n";

/// The built-in template of an event kind.
pub fn built_in(kind: EventKind) -> MailTemplate {
    let (subject, body) = match kind {
        EventKind::ApprovalWaiting => (
            "[{{ tenant }}] {{ request }} waits for your approval",
            "Hello,\n\nthe change request {{ request }}{% if zone %} for {{ zone }}{% endif %} waits for your approval.\n\
             Requested by: {{ requester }}\n\
             {% if reason %}Why it needs approval: {{ reason }}\n{% endif %}\
             {% if operations %}Operations: {{ operations }}\n{% endif %}\
             \nReview it and approve or reject it: {{ link }}\n\
             \nYou get this message because the tenant's policy names you as an approver.\n",
        ),
        EventKind::ChangeApplied => (
            "[{{ tenant }}] Changes applied to {{ zone }}",
            "Hello,\n\n{{ applied }} of {{ operations }} change(s) were applied to {{ zone }}.\n\
             {% if requester %}Requested by: {{ requester }}\n{% endif %}\
             {% if revision %}Revision: {{ revision }}\n{% endif %}\
             \nSee the zone: {{ link }}\n",
        ),
        EventKind::ChangeFailed => (
            "[{{ tenant }}] Changes to {{ zone }} failed",
            "Hello,\n\napplying changes to {{ zone }} failed: {{ applied }} of {{ operations }} change(s) were applied.\n\
             {% if requester %}Requested by: {{ requester }}\n{% endif %}\
             {% if revision %}Revision: {{ revision }}\n{% endif %}\
             \nSee what happened: {{ link }}\n",
        ),
        EventKind::Drift => (
            "[{{ tenant }}] Drift detected in {{ zone }}",
            "Hello,\n\nthe records served for {{ zone }} no longer match the desired state.\n\
             {% if record_sets %}Record sets that drifted: {{ record_sets }}\n{% endif %}\
             {% if mode %}Drift policy: {{ mode }}\n{% endif %}\
             \nSee the zone: {{ link }}\n",
        ),
        EventKind::ApprovalRefused => (
            "[{{ tenant }}] An approval of {{ request }} was refused",
            "Hello,\n\nan approval of {{ request }} by {{ approver }} was refused.\n\
             {% if reason %}Reason: {{ reason }}\n{% endif %}\
             \nSee the change request: {{ link }}\n",
        ),
        EventKind::TicketActivity => (
            "[{{ tenant }}] Ticket #{{ ticket_number }}: {{ ticket_subject }}",
            "Hello,\n\nticket #{{ ticket_number }} ({{ ticket_subject }}) {{ activity }}.\n\
             \nOpen the ticket: {{ link }}\n",
        ),
        EventKind::Digest => (
            "[{{ tenant }}] {{ count }} unread notification(s)",
            "Hello,\n\nyou have {{ count }} unread notification(s) in {{ tenant }}:\n\n\
             {% for item in items %}- {{ item.title }} ({{ item.created }})\n{% endfor %}\
             \nRead them: {{ link }}\n",
        ),
    };
    MailTemplate {
        subject: subject.to_owned(),
        body: format!("{body}{FOOTER}"),
    }
}

/// The variables a kind's template can use, with sample values (the preview
/// renders with these).
pub fn sample(kind: EventKind) -> BTreeMap<&'static str, minijinja::Value> {
    use minijinja::Value;
    let mut vars: BTreeMap<&'static str, Value> = BTreeMap::new();
    vars.insert("tenant", Value::from("Acme Corp"));
    vars.insert("tenant_slug", Value::from("acme"));
    vars.insert("recipient", Value::from("alice@acme.example"));
    vars.insert(
        "link",
        Value::from("https://dns.example.com/change-requests"),
    );
    vars.insert(
        "settings_link",
        Value::from("https://dns.example.com/notifications/settings"),
    );
    let text = |vars: &mut BTreeMap<&'static str, Value>, pairs: &[(&'static str, &str)]| {
        for (k, v) in pairs {
            vars.insert(k, Value::from(*v));
        }
    };
    match kind {
        EventKind::ApprovalWaiting => text(
            &mut vars,
            &[
                ("request", "dns/www-acme-example-3f2a"),
                ("zone", "acme.example."),
                ("requester", "bob@acme.example"),
                ("reason", "deletes the apex MX record set"),
                ("operations", "3"),
            ],
        ),
        EventKind::ChangeApplied | EventKind::ChangeFailed => text(
            &mut vars,
            &[
                ("zone", "acme.example."),
                ("operations", "3"),
                (
                    "applied",
                    if kind == EventKind::ChangeApplied {
                        "3"
                    } else {
                        "1"
                    },
                ),
                ("requester", "bob@acme.example"),
                ("revision", "4b1d0c2"),
            ],
        ),
        EventKind::Drift => text(
            &mut vars,
            &[
                ("zone", "acme.example."),
                ("record_sets", "www.acme.example. A, mail.acme.example. MX"),
                ("mode", "Report"),
            ],
        ),
        EventKind::ApprovalRefused => text(
            &mut vars,
            &[
                ("request", "dns/www-acme-example-3f2a"),
                ("approver", "carol"),
                ("reason", "the signature does not match the plan digest"),
            ],
        ),
        EventKind::TicketActivity => text(
            &mut vars,
            &[
                ("ticket_number", "42"),
                ("ticket_subject", "www.acme.example does not resolve"),
                ("activity", "has a new reply"),
            ],
        ),
        EventKind::Digest => {
            vars.insert("count", Value::from(2));
            vars.insert(
                "items",
                Value::from_serialize(vec![
                    BTreeMap::from([
                        ("title", "Changes applied to acme.example."),
                        ("created", "2026-12-01 08:00 UTC"),
                    ]),
                    BTreeMap::from([
                        ("title", "Drift detected in acme.example."),
                        ("created", "2026-12-01 09:30 UTC"),
                    ]),
                ]),
            );
        }
    }
    vars
}

/// A template that does not compile or render, with the line when known.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TemplateProblem {
    /// `subject` or `body`.
    pub field: &'static str,
    pub line: Option<usize>,
    pub message: String,
}

impl std::fmt::Display for TemplateProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}, line {line}: {}", self.field, self.message),
            None => write!(f, "{}: {}", self.field, self.message),
        }
    }
}

fn environment(strict: bool) -> Environment<'static> {
    let mut env = Environment::new();
    // Plain text: nothing is HTML-escaped.
    env.set_auto_escape_callback(|_| AutoEscape::None);
    env.set_fuel(Some(FUEL));
    if strict {
        env.set_undefined_behavior(UndefinedBehavior::Strict);
    }
    env
}

fn problem(field: &'static str, e: &minijinja::Error) -> TemplateProblem {
    let message = match e.detail() {
        Some(detail) => format!("{}: {detail}", e.kind()),
        None => e.kind().to_string(),
    };
    TemplateProblem {
        field,
        line: e.line(),
        message,
    }
}

fn render_one<S: Serialize>(
    env: &Environment<'_>,
    field: &'static str,
    source: &str,
    vars: S,
) -> Result<String, TemplateProblem> {
    if source.len() > MAX_SOURCE {
        return Err(TemplateProblem {
            field,
            line: None,
            message: format!("the template is longer than {MAX_SOURCE} bytes"),
        });
    }
    let template = env
        .template_from_str(source)
        .map_err(|e| problem(field, &e))?;
    let mut out = template.render(vars).map_err(|e| problem(field, &e))?;
    if out.len() > MAX_RENDERED {
        let mut cut = MAX_RENDERED;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
    }
    Ok(out)
}

/// A rendered message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rendered {
    pub subject: String,
    pub body: String,
}

/// Renders `template` with `vars`. `strict`: a variable the template uses
/// that `vars` lacks is an error (previews and saving); otherwise it is
/// empty (sending, so that an override never stops a notification).
pub fn render<S: Serialize + Clone>(
    template: &MailTemplate,
    vars: S,
    strict: bool,
) -> Result<Rendered, Vec<TemplateProblem>> {
    let env = environment(strict);
    let subject = render_one(&env, "subject", &template.subject, vars.clone());
    let body = render_one(&env, "body", &template.body, vars);
    match (subject, body) {
        (Ok(subject), Ok(body)) => Ok(Rendered {
            // A subject is one line.
            subject: subject.lines().map(str::trim).collect::<Vec<_>>().join(" "),
            body,
        }),
        (s, b) => Err([s.err(), b.err()].into_iter().flatten().collect()),
    }
}

/// Checks an edited template: it compiles, and renders with the kind's
/// sample data using only the kind's variables. Returns the preview.
pub fn preview(kind: EventKind, template: &MailTemplate) -> Result<Rendered, Vec<TemplateProblem>> {
    let mut problems = Vec::new();
    if template.subject.trim().is_empty() {
        problems.push(TemplateProblem {
            field: "subject",
            line: None,
            message: "the subject is empty".into(),
        });
    }
    if template.body.trim().is_empty() {
        problems.push(TemplateProblem {
            field: "body",
            line: None,
            message: "the body is empty".into(),
        });
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    render(template, sample(kind), true)
}

/// The template in force for `kind` in `tenant` (its override, else the
/// platform's, else the built-in one), and where it comes from.
pub async fn effective(
    state: &AppState,
    tenant: Option<TenantId>,
    kind: EventKind,
) -> Result<(MailTemplate, Origin), WebError> {
    let store = state.store();
    if let Some(t) = tenant
        && let Some(o) = store
            .mail_templates(Some(t))
            .await?
            .into_iter()
            .find(|o| o.event == kind.key())
    {
        return Ok((
            MailTemplate {
                subject: o.subject,
                body: o.body,
            },
            Origin::Tenant,
        ));
    }
    if let Some(o) = store
        .mail_templates(None)
        .await?
        .into_iter()
        .find(|o| o.event == kind.key())
    {
        return Ok((
            MailTemplate {
                subject: o.subject,
                body: o.body,
            },
            Origin::Platform,
        ));
    }
    Ok((built_in(kind), Origin::BuiltIn))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_built_in_template_renders_with_its_sample_strictly() {
        for kind in EventKind::ALL_WITH_DIGEST {
            let r = preview(kind, &built_in(kind)).unwrap_or_else(|p| panic!("{kind:?}: {p:?}"));
            assert!(!r.subject.is_empty() && !r.body.is_empty());
            assert!(!r.subject.contains('\n'));
            assert!(!r.body.contains("{{"), "{}", r.body);
        }
    }

    #[test]
    fn a_syntax_error_names_its_line() {
        let t = MailTemplate {
            subject: "fine".into(),
            body: "one\ntwo\n{% if x %}three\n".into(),
        };
        let problems = preview(EventKind::Drift, &t).unwrap_err();
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].field, "body");
        assert!(problems[0].line.is_some(), "{problems:?}");
    }

    #[test]
    fn an_unknown_variable_fails_the_preview_but_not_the_sending() {
        let t = MailTemplate {
            subject: "{{ nope }}x".into(),
            body: "b".into(),
        };
        assert!(preview(EventKind::Drift, &t).is_err());
        let sent = render(&t, sample(EventKind::Drift), false).unwrap();
        assert_eq!(sent.subject, "x");
    }

    #[test]
    fn an_endless_template_runs_out_of_fuel() {
        let t = MailTemplate {
            subject: "s".into(),
            body: "{% for a in range(10000) %}{% for b in range(10000) %}x{% endfor %}{% endfor %}"
                .into(),
        };
        assert!(render(&t, sample(EventKind::Drift), false).is_err());
    }

    #[test]
    fn text_is_not_html_escaped() {
        let t = MailTemplate {
            subject: "{{ zone }}".into(),
            body: "{{ x }}".into(),
        };
        let r = render(&t, minijinja::context! { zone => "a&b", x => "<b>" }, false).unwrap();
        assert_eq!(r.subject, "a&b");
        assert_eq!(r.body, "<b>");
    }
}
