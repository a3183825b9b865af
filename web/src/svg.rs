//! A zone's timeline of changes as server-rendered SVG: one bar per
//! executed batch, placed by time, as tall as its operations (failed ones
//! stacked in red on the applied ones), each with a tooltip `<title>`; the
//! chart has its own `<title>` and `<desc>` (what a screen reader reads)
//! and text labels for the time range and the counts. No script. Every text
//! is escaped here, since the result is inserted into pages as it is. Pure.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};

/// One executed batch on the timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimelineBatch {
    pub at: DateTime<Utc>,
    pub applied: u32,
    pub failed: u32,
    /// What the batch was (its change request, or the revision), for the tooltip.
    pub label: String,
}

const WIDTH: u32 = 720;
const HEIGHT: u32 = 180;
const LEFT: f64 = 40.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 24.0;
const BOTTOM: f64 = 36.0;
const BAR: f64 = 8.0;

/// Escapes text for XML content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() && c != '\n' && c != '\t' => {}
            c => out.push(c),
        }
    }
    out
}

fn day(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// The chart of `batches` (any order) for the zone named `zone`.
pub fn timeline(zone: &str, batches: &[TimelineBatch]) -> String {
    let mut sorted: Vec<&TimelineBatch> = batches.iter().collect();
    sorted.sort_by_key(|b| b.at);
    let applied: u64 = sorted.iter().map(|b| u64::from(b.applied)).sum();
    let failed: u64 = sorted.iter().map(|b| u64::from(b.failed)).sum();
    let title = format!("Changes to {zone} over time");
    let desc = match (sorted.first(), sorted.last()) {
        (Some(first), Some(last)) => format!(
            "{} batch(es) of changes between {} and {}: {applied} operation(s) applied, {failed} failed.",
            sorted.len(),
            day(first.at),
            day(last.at)
        ),
        _ => "No changes have been recorded for this zone yet.".to_owned(),
    };
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="timeline" role="img" aria-labelledby="timeline-title timeline-desc" viewBox="0 0 {WIDTH} {HEIGHT}" width="100%" preserveAspectRatio="xMidYMid meet"><title id="timeline-title">{}</title><desc id="timeline-desc">{}</desc>"#,
        escape(&title),
        escape(&desc)
    );
    let base = f64::from(HEIGHT) - BOTTOM;
    let _ = write!(
        svg,
        r##"<line x1="{LEFT}" y1="{base}" x2="{}" y2="{base}" stroke="#5b6470" stroke-width="1"/>"##,
        f64::from(WIDTH) - RIGHT
    );
    let (Some(first), Some(last)) = (sorted.first(), sorted.last()) else {
        let _ = write!(
            svg,
            r##"<text x="{}" y="{}" text-anchor="middle" fill="#1b1f24" font-size="14">No changes recorded yet</text></svg>"##,
            f64::from(WIDTH) / 2.0,
            base / 2.0 + TOP / 2.0
        );
        return svg;
    };
    let span = (last.at - first.at).num_seconds().max(0) as f64;
    let plot = f64::from(WIDTH) - LEFT - RIGHT - BAR;
    let tallest = sorted
        .iter()
        .map(|b| b.applied.saturating_add(b.failed))
        .max()
        .unwrap_or(1)
        .max(1);
    let scale = (base - TOP - 14.0) / f64::from(tallest);
    for b in &sorted {
        let x = if span > 0.0 {
            LEFT + plot * ((b.at - first.at).num_seconds() as f64 / span)
        } else {
            LEFT + plot / 2.0
        };
        let applied_h = f64::from(b.applied) * scale;
        let failed_h = f64::from(b.failed) * scale;
        let total = b.applied.saturating_add(b.failed);
        let tooltip = format!(
            "{}: {} applied, {} failed ({})",
            day(b.at),
            b.applied,
            b.failed,
            b.label
        );
        let _ = write!(svg, "<g><title>{}</title>", escape(&tooltip));
        if b.applied > 0 {
            let _ = write!(
                svg,
                r##"<rect x="{x:.1}" y="{:.1}" width="{BAR}" height="{applied_h:.1}" fill="#2f7d4f"/>"##,
                base - applied_h
            );
        }
        if b.failed > 0 {
            let _ = write!(
                svg,
                r##"<rect x="{x:.1}" y="{:.1}" width="{BAR}" height="{failed_h:.1}" fill="#c62828"/>"##,
                base - applied_h - failed_h
            );
        }
        let _ = write!(
            svg,
            r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="10" fill="#1b1f24">{total}</text></g>"##,
            x + BAR / 2.0,
            base - applied_h - failed_h - 3.0
        );
    }
    let label_y = base + 16.0;
    let _ = write!(
        svg,
        r##"<text x="{LEFT}" y="{label_y}" font-size="11" fill="#1b1f24">{}</text>"##,
        escape(&day(first.at))
    );
    if sorted.len() > 1 {
        let _ = write!(
            svg,
            r##"<text x="{}" y="{label_y}" text-anchor="end" font-size="11" fill="#1b1f24">{}</text>"##,
            f64::from(WIDTH) - RIGHT,
            escape(&day(last.at))
        );
    }
    let _ = write!(
        svg,
        r##"<text x="{LEFT}" y="{}" font-size="11" fill="#1b1f24">{applied} applied, {failed} failed</text></svg>"##,
        base + 30.0
    );
    svg
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn the_chart_says_what_it_shows_in_its_title_and_description() {
        let svg = timeline(
            "acme.example.",
            &[
                TimelineBatch {
                    at: at("2026-11-30T21:00:00Z"),
                    applied: 3,
                    failed: 1,
                    label: "acme-example-abc".into(),
                },
                TimelineBatch {
                    at: at("2026-11-29T08:00:00Z"),
                    applied: 2,
                    failed: 0,
                    label: "revision r1".into(),
                },
            ],
        );
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert!(
            svg.contains("<title id=\"timeline-title\">Changes to acme.example. over time</title>")
        );
        assert!(svg.contains("2 batch(es) of changes between 2026-11-29 08:00 UTC and 2026-11-30 21:00 UTC: 5 operation(s) applied, 1 failed."), "{svg}");
        assert!(svg.contains(
            "<title>2026-11-30 21:00 UTC: 3 applied, 1 failed (acme-example-abc)</title>"
        ));
        assert!(svg.contains("fill=\"#c62828\""), "the failure is drawn");
        assert!(!svg.contains("<script"));
    }

    #[test]
    fn text_is_escaped_and_an_empty_zone_says_so() {
        let svg = timeline(
            "<b>&",
            &[TimelineBatch {
                at: at("2026-11-30T21:00:00Z"),
                applied: 1,
                failed: 0,
                label: "</title><script>alert(1)</script>".into(),
            }],
        );
        assert!(!svg.contains("<script>"), "{svg}");
        assert!(svg.contains("&lt;/title&gt;&lt;script&gt;"));
        assert!(svg.contains("Changes to &lt;b&gt;&amp; over time"));
        let empty = timeline("acme.example.", &[]);
        assert!(empty.contains("No changes recorded yet"));
        assert!(empty.contains("No changes have been recorded for this zone yet."));
    }
}
