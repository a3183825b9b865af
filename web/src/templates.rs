//! The HTML templates, embedded in the binary and rendered by minijinja
//! with auto-escaping (every `.html` template escapes what it prints). No I/O.

use minijinja::Environment;
use serde::Serialize;

use crate::error::WebError;

const TEMPLATES: [(&str, &str); 8] = [
    ("base.html", include_str!("../templates/base.html")),
    ("login.html", include_str!("../templates/login.html")),
    (
        "second_factor.html",
        include_str!("../templates/second_factor.html"),
    ),
    (
        "dashboard.html",
        include_str!("../templates/dashboard.html"),
    ),
    ("zone.html", include_str!("../templates/zone.html")),
    ("totp.html", include_str!("../templates/totp.html")),
    (
        "backup_codes.html",
        include_str!("../templates/backup_codes.html"),
    ),
    ("error.html", include_str!("../templates/error.html")),
];

#[derive(Debug)]
pub struct Templates {
    env: Environment<'static>,
}

impl Templates {
    pub fn new() -> Result<Self, WebError> {
        let mut env = Environment::new();
        for (name, source) in TEMPLATES {
            env.add_template(name, source)?;
        }
        Ok(Self { env })
    }

    pub fn render<S: Serialize>(&self, name: &str, context: S) -> Result<String, WebError> {
        Ok(self.env.get_template(name)?.render(context)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_a_template_prints_is_escaped() {
        let t = Templates::new().unwrap();
        let html = t
            .render(
                "error.html",
                minijinja::context! { status => 404, title => "<script>x</script>", request_id => "r\"1" },
            )
            .unwrap();
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("&lt;script&gt;"), "{html}");
    }
}
