//! The operator's message for one webhook call, as the Markdown the gateway sends as Telegram
//! HTML (`markdown::to_html` escapes the rest): the firing alerts under one header with their
//! worst severity, then the resolved ones.

use super::payload::{Alert, Webhook};

/// Worst first; a severity not listed sorts after these.
const SEVERITIES: [&str; 3] = ["critical", "warning", "info"];

/// The message for `webhook`; `None` when it holds no alert.
pub fn compose(webhook: &Webhook) -> Option<String> {
    let (firing, resolved): (Vec<&Alert>, Vec<&Alert>) =
        webhook.alerts.iter().partition(|a| a.firing());
    let mut sections = Vec::new();
    if !firing.is_empty() {
        let worst = firing
            .iter()
            .map(|a| a.label("severity"))
            .filter(|s| !s.is_empty())
            .min_by_key(|s| SEVERITIES.iter().position(|k| k == s).unwrap_or(usize::MAX));
        let header = match worst {
            Some(severity) => format!("🔥 **FIRING {} · {}**", firing.len(), text(severity)),
            None => format!("🔥 **FIRING {}**", firing.len()),
        };
        sections.push(section(header, &firing, true));
    }
    if !resolved.is_empty() {
        let header = format!("✅ **RESOLVED {}**", resolved.len());
        sections.push(section(header, &resolved, false));
    }
    if webhook.truncated_alerts > 0 {
        sections.push(format!(
            "…and {} more alerts (see Alertmanager)",
            webhook.truncated_alerts
        ));
    }
    (!webhook.alerts.is_empty()).then(|| sections.join("\n\n"))
}

fn section(header: String, alerts: &[&Alert], describe: bool) -> String {
    let mut out = header;
    for alert in alerts {
        out.push_str("\n\n");
        out.push_str(&format!("**{}**", text(alert.label("alertname"))));
        let unit = alert.label("unit");
        if !unit.is_empty() {
            out.push_str(&format!(" · {}", text(unit)));
        }
        for (name, shown) in [("summary", true), ("description", describe)] {
            let value = alert.annotation(name).trim();
            if shown && !value.is_empty() {
                out.push('\n');
                out.push_str(&text(value));
            }
        }
        let labels: Vec<String> = alert
            .labels
            .iter()
            .filter(|(k, _)| k.as_str() != "alertname")
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        if !labels.is_empty() {
            // In code: nothing inside is formatting, and `_` in label values stays as written.
            out.push_str(&format!("\n`{}`", labels.join(" ").replace('`', "'")));
        }
    }
    out
}

/// Text from a rule's annotations: a backtick would open code or a fenced block around the
/// rest of the message, so it becomes a quote; `<`, `>` and `&` are escaped by `to_html`.
fn text(value: &str) -> String {
    value.replace('`', "'")
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::markdown::to_html;

    fn alert(status: &str, name: &str, severity: &str, summary: &str) -> Alert {
        Alert {
            status: status.into(),
            labels: BTreeMap::from([
                ("alertname".into(), name.into()),
                ("severity".into(), severity.into()),
                ("unit".into(), "memory_api".into()),
            ]),
            annotations: BTreeMap::from([
                ("summary".into(), summary.into()),
                ("description".into(), "details".into()),
            ]),
            starts_at: String::new(),
            ends_at: String::new(),
            fingerprint: name.into(),
        }
    }

    fn webhook(alerts: Vec<Alert>, truncated: u64) -> Webhook {
        Webhook {
            version: "4".into(),
            receiver: "gateway".into(),
            alerts,
            truncated_alerts: truncated,
        }
    }

    #[test]
    fn groups_by_state_with_the_worst_severity() {
        for (alerts, truncated, wanted, unwanted) in [
            (
                vec![
                    alert("firing", "A", "warning", "a"),
                    alert("firing", "B", "critical", "b"),
                ],
                0,
                vec![
                    "🔥 <b>FIRING 2 · critical</b>",
                    "<b>A</b> · memory_api",
                    "details",
                ],
                vec!["RESOLVED", "more alerts"],
            ),
            (
                vec![
                    alert("resolved", "A", "warning", "a"),
                    alert("firing", "B", "info", "b"),
                ],
                3,
                vec![
                    "FIRING 1 · info",
                    "✅ <b>RESOLVED 1</b>",
                    "…and 3 more alerts",
                    "<code>severity=warning unit=memory_api</code>",
                ],
                vec![],
            ),
        ] {
            let html = to_html(&compose(&webhook(alerts, truncated)).unwrap());
            for part in wanted {
                assert!(html.contains(part), "{part} in {html}");
            }
            for part in unwanted {
                assert!(!html.contains(part), "{part} not in {html}");
            }
        }
        assert_eq!(compose(&webhook(vec![], 0)), None);
    }

    #[test]
    fn annotation_text_is_escaped_and_cannot_open_code() {
        let html = to_html(
            &compose(&webhook(
                vec![alert("firing", "A", "critical", "x < y & ```z")],
                0,
            ))
            .unwrap(),
        );
        assert!(html.contains("x &lt; y &amp; '''z"), "{html}");
        assert!(!html.contains("<pre>"), "{html}");
    }
}
