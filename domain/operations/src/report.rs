//! Incident reports (P4.14): a pure projection of one incident's events into what
//! the system operations administrator hands to the operations manager and the
//! prefecture — the timeline, how the runbook was followed (each step, how long
//! after the report, what is missing), what was affected (counts only), who was
//! notified, and which credentials were rotated. Rendered as JSON or as a
//! self-contained HTML page.

use crate::clause::{jst, role_name};
use crate::incident::{
    Assessment, Incident, IncidentEvent, IncidentKind, Level, Reporter, Rotation, Source, required,
    runbook,
};
use mebyo_domain::{Decider, Timestamp};
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TimelineEntry {
    pub at: String,
    pub at_us: i64,
    pub what: String,
    pub by: Option<String>,
    pub clause: &'static str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StepStatus {
    Done,
    Missing,
    NotRequired,
    /// Depends on an assessment not yet recorded.
    AwaitingAssessment,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepCompliance {
    pub step: &'static str,
    /// The policy's item number (0: the general rule of P4.14(1)).
    pub item: u8,
    pub clause: &'static str,
    pub policy_text: &'static str,
    pub who: &'static str,
    pub status: StepStatus,
    pub done_at: Option<String>,
    pub by: Option<String>,
    pub role: Option<&'static str>,
    /// Minutes from the report to the step (negative: done before it was reported).
    pub minutes_after_report: Option<i64>,
    pub reference: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Notification {
    pub at: String,
    pub to: String,
    pub count: u32,
    pub by: String,
    pub clause: &'static str,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Affected {
    pub assessed: bool,
    pub leak_possible: bool,
    pub individuals_data: bool,
    pub individuals: u32,
    pub records: u32,
    /// From the detector, when a rule raised the incident.
    pub detected_events: Option<u32>,
    pub detected_persons: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IncidentReport {
    pub incident: String,
    pub kind: &'static str,
    pub title: &'static str,
    pub clause: &'static str,
    pub status: &'static str,
    pub reported_at: String,
    pub detected_at: String,
    pub reported_by: String,
    pub source: String,
    pub contractor: Option<String>,
    pub vpn_used: bool,
    pub escalation_level: Option<Level>,
    pub timeline: Vec<TimelineEntry>,
    pub compliance: Vec<StepCompliance>,
    pub missing: Vec<&'static str>,
    /// Every required step done (and every needed assessment made).
    pub compliant: bool,
    pub affected: Affected,
    pub notifications: Vec<Notification>,
    pub credentials_rotated: Vec<Rotation>,
    pub closed_at: Option<String>,
}

fn minutes(from: Timestamp, to: Timestamp) -> i64 {
    (to.0 - from.0).div_euclid(60_000_000)
}

fn reporter(r: &Reporter) -> String {
    match r {
        Reporter::Staff { staff, role } => format!("{staff} ({})", role_name(*role)),
        Reporter::System => "the platform's anomaly detection (P4.4(1))".into(),
    }
}

/// The report of one incident from its events (in stream order). `None` for a
/// stream with no report.
pub fn report(events: &[IncidentEvent]) -> Option<IncidentReport> {
    let state = Incident::fold(events);
    let kind: IncidentKind = state.kind?;
    let Some(IncidentEvent::Reported {
        incident,
        detected_at,
        vpn_used,
        contractor,
        source,
        by,
        at: reported_at,
        ..
    }) = events.first()
    else {
        return None;
    };
    let reported_at = *reported_at;
    let mut timeline = Vec::new();
    let mut notifications = Vec::new();
    let mut rotated = Vec::new();
    for e in events {
        let (at, what, who, clause) = match e {
            IncidentEvent::Reported { at, by, .. } => (
                *at,
                format!("reported as {}", kind.title()),
                Some(reporter(by)),
                mebyo_domain::clause!("P4.14(1)"),
            ),
            IncidentEvent::StepRecorded {
                step,
                done_at,
                by,
                role,
                ..
            } => {
                let line = runbook(kind).iter().find(|l| l.step == *step);
                let clause = line.map_or(kind.clause(), |l| l.clause);
                if step.is_notification() {
                    notifications.push(Notification {
                        at: jst(*done_at),
                        to: step.code().to_string(),
                        count: 0,
                        by: format!("{by} ({})", role_name(*role)),
                        clause,
                    });
                }
                (
                    *done_at,
                    format!("step {} done", step.code()),
                    Some(format!("{by} ({})", role_name(*role))),
                    clause,
                )
            }
            IncidentEvent::Assessed {
                assessment: a,
                at,
                by,
                role,
                ..
            } => (
                *at,
                format!(
                    "assessed: leak possible {}, individuals' data {}, {} individuals, {} records",
                    a.leak_possible, a.individuals_data, a.individuals_affected, a.records_affected
                ),
                Some(format!("{by} ({})", role_name(*role))),
                kind.clause(),
            ),
            IncidentEvent::Escalated {
                from,
                to,
                by,
                role,
                at,
                ..
            } => (
                *at,
                format!("escalated from {from:?} to {to:?}"),
                Some(format!("{by} ({})", role_name(*role))),
                mebyo_domain::clause!("P4.14(1)"),
            ),
            IncidentEvent::Notified {
                target,
                count,
                by,
                role,
                at,
                ..
            } => {
                let to = serde_json::to_value(target)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default();
                notifications.push(Notification {
                    at: jst(*at),
                    to: to.clone(),
                    count: *count,
                    by: format!("{by} ({})", role_name(*role)),
                    clause: kind.clause(),
                });
                (
                    *at,
                    format!(
                        "notified {to}{}",
                        if *count > 0 {
                            format!(" ({count})")
                        } else {
                            String::new()
                        }
                    ),
                    Some(format!("{by} ({})", role_name(*role))),
                    kind.clause(),
                )
            }
            IncidentEvent::CredentialsRotated {
                rotations, by, at, ..
            } => {
                rotated.extend(rotations.iter().cloned());
                (
                    *at,
                    format!("{} credential(s) revoked and reissued", rotations.len()),
                    Some(by.to_string()),
                    mebyo_domain::clause!("P4.14(4)"),
                )
            }
            IncidentEvent::Closed { by, role, at, .. } => (
                *at,
                "closed".into(),
                Some(format!("{by} ({})", role_name(*role))),
                kind.clause(),
            ),
        };
        timeline.push(TimelineEntry {
            at: jst(at),
            at_us: at.0,
            what,
            by: who,
            clause,
        });
    }
    // Stable: equal times keep stream order.
    timeline.sort_by_key(|t| t.at_us);

    let mut compliance = Vec::new();
    let mut missing = Vec::new();
    for line in runbook(kind) {
        let done = state.steps.get(&line.step);
        let status = match (done, required(line, &state)) {
            (Some(_), _) => StepStatus::Done,
            (None, Some(true)) => StepStatus::Missing,
            (None, Some(false)) => StepStatus::NotRequired,
            (None, None) => StepStatus::AwaitingAssessment,
        };
        if matches!(status, StepStatus::Missing | StepStatus::AwaitingAssessment) {
            missing.push(line.step.code());
        }
        compliance.push(StepCompliance {
            step: line.step.code(),
            item: line.item,
            clause: line.clause,
            policy_text: line.policy_text,
            who: line.who.describe(),
            status,
            done_at: done.map(|d| jst(d.done_at)),
            by: done.map(|d| d.by.to_string()),
            role: done.map(|d| role_name(d.role)),
            minutes_after_report: done.map(|d| minutes(reported_at, d.done_at)),
            reference: done.and_then(|d| d.reference.as_ref().map(|r| r.to_string())),
        });
    }
    let a: Assessment = state.assessment.unwrap_or_default();
    let (detected_events, detected_persons, source_text) = match source {
        Source::Staff => (None, None, "reported by staff".to_string()),
        Source::Detected {
            rule,
            provider,
            credential,
            evidence,
        } => (
            Some(evidence.events),
            Some(evidence.persons),
            format!(
                "detected by rule {} ({} events between {} and {}){}{}",
                serde_json::to_value(rule)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default(),
                evidence.events,
                jst(evidence.from),
                jst(evidence.to),
                provider
                    .as_ref()
                    .map(|p| format!(", provider {p}"))
                    .unwrap_or_default(),
                credential
                    .as_ref()
                    .map(|c| format!(", credential {c}"))
                    .unwrap_or_default(),
            ),
        ),
    };
    Some(IncidentReport {
        incident: incident.to_string(),
        kind: kind.code(),
        title: kind.title(),
        clause: kind.clause(),
        status: if state.closed_at.is_some() {
            "closed"
        } else {
            "open"
        },
        reported_at: jst(reported_at),
        detected_at: jst(*detected_at),
        reported_by: reporter(by),
        source: source_text,
        contractor: contractor.as_ref().map(|c| c.to_string()),
        vpn_used: *vpn_used,
        escalation_level: state.level,
        timeline,
        compliant: missing.is_empty(),
        missing,
        compliance,
        affected: Affected {
            assessed: state.assessment.is_some(),
            leak_possible: a.leak_possible,
            individuals_data: a.individuals_data,
            individuals: a.individuals_affected,
            records: a.records_affected,
            detected_events,
            detected_persons,
        },
        notifications,
        credentials_rotated: rotated,
        closed_at: state.closed_at.map(jst),
    })
}

impl IncidentReport {
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("reports serialise")
    }

    /// A self-contained page (no scripts, no external resources), every value
    /// escaped.
    pub fn to_html(&self) -> String {
        let mut h = String::new();
        let e = escape;
        h.push_str("<!doctype html>\n<html lang=\"ja\"><head><meta charset=\"utf-8\">");
        h.push_str(&format!("<title>Incident {}</title>", e(&self.incident)));
        h.push_str(
            "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}\
             td,th{border:1px solid #999;padding:.3em .6em;text-align:left}\
             .missing{background:#fdd}.done{background:#dfd}</style></head><body>\n",
        );
        h.push_str(&format!(
            "<h1>Incident {} — {}</h1>\n<p>Clause {} · status <strong>{}</strong> · runbook {}</p>\n",
            e(&self.incident),
            e(self.title),
            e(self.clause),
            e(self.status),
            if self.compliant {
                "complete"
            } else {
                "INCOMPLETE"
            }
        ));
        h.push_str("<dl>");
        for (k, v) in [
            ("Reported", self.reported_at.clone()),
            ("Detected", self.detected_at.clone()),
            ("Reported by", self.reported_by.clone()),
            ("Source", self.source.clone()),
            (
                "Contractor",
                self.contractor.clone().unwrap_or_else(|| "—".into()),
            ),
            ("VPN used", self.vpn_used.to_string()),
            (
                "Closed",
                self.closed_at.clone().unwrap_or_else(|| "—".into()),
            ),
        ] {
            h.push_str(&format!("<dt>{}</dt><dd>{}</dd>", e(k), e(&v)));
        }
        h.push_str("</dl>\n<h2>Runbook compliance</h2>\n<table><tr><th>step</th><th>clause</th><th>policy</th><th>who</th><th>status</th><th>done</th><th>by</th><th>minutes after report</th></tr>\n");
        for c in &self.compliance {
            let class = match c.status {
                StepStatus::Done => "done",
                StepStatus::Missing | StepStatus::AwaitingAssessment => "missing",
                StepStatus::NotRequired => "",
            };
            let status = serde_json::to_value(c.status)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            h.push_str(&format!(
                "<tr class=\"{class}\"><td>{}</td><td>{}</td><td lang=\"ja\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
                e(c.step),
                e(c.clause),
                e(c.policy_text),
                e(c.who),
                e(&status),
                e(c.done_at.as_deref().unwrap_or("")),
                e(&match (&c.by, c.role) {
                    (Some(b), Some(r)) => format!("{b} ({r})"),
                    _ => String::new(),
                }),
                c.minutes_after_report
                    .map(|m| m.to_string())
                    .unwrap_or_default()
            ));
        }
        h.push_str("</table>\n");
        if !self.missing.is_empty() {
            h.push_str(&format!(
                "<p class=\"missing\">Missing: {}</p>\n",
                e(&self.missing.join(", "))
            ));
        }
        h.push_str("<h2>Affected</h2>\n<ul>");
        let a = &self.affected;
        if a.assessed {
            h.push_str(&format!(
                "<li>leak possible: {}</li><li>individuals' data involved: {}</li><li>individuals affected: {}</li><li>records affected: {}</li>",
                a.leak_possible, a.individuals_data, a.individuals, a.records
            ));
        } else {
            h.push_str("<li>not yet assessed</li>");
        }
        if let (Some(ev), Some(p)) = (a.detected_events, a.detected_persons) {
            h.push_str(&format!(
                "<li>detector: {ev} access events, {p} distinct individuals</li>"
            ));
        }
        h.push_str("</ul>\n<h2>Notifications</h2>\n<ul>");
        if self.notifications.is_empty() {
            h.push_str("<li>none</li>");
        }
        for n in &self.notifications {
            h.push_str(&format!(
                "<li>{} — {}{} by {} ({})</li>",
                e(&n.at),
                e(&n.to),
                if n.count > 0 {
                    format!(" ({})", n.count)
                } else {
                    String::new()
                },
                e(&n.by),
                e(n.clause)
            ));
        }
        h.push_str("</ul>\n<h2>Credentials rotated</h2>\n<ul>");
        if self.credentials_rotated.is_empty() {
            h.push_str("<li>none</li>");
        }
        for r in &self.credentials_rotated {
            h.push_str(&format!(
                "<li>{} revoked, replaced by {}</li>",
                e(r.revoked.as_str()),
                e(r.issued.as_str())
            ));
        }
        h.push_str("</ul>\n<h2>Timeline</h2>\n<table><tr><th>when</th><th>what</th><th>by</th><th>clause</th></tr>\n");
        for t in &self.timeline {
            h.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
                e(&t.at),
                e(&t.what),
                e(t.by.as_deref().unwrap_or("")),
                e(t.clause)
            ));
        }
        h.push_str("</table>\n</body></html>\n");
        h
    }
}

/// HTML text escaping.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}
