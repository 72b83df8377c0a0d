//! The operations loop of `mebyo serve` (issue 7 §3, §4): what joins the
//! operations service to the bus and the web server. Maintenance notices go to
//! providers through [`BusNotices`] (P4.3); each tick's [`Health`] becomes the
//! web server's [`OpsHealth`] for `/readyz` and `/metrics` (P4.4).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use mebyo_bus::{BusHandle, MaintenanceNotice};
use mebyo_operations::maintenance::{Notice, NoticePublisher, PublishError};
use mebyo_operations::monitoring::{ProbeEvent, ProbeOutcome};
use mebyo_operations_service::OpsError;
use mebyo_operations_service::background::Health;
use mebyo_web::{OpsHealth, ProbeHealth};

/// Publishes maintenance notices on every approved provider's feed (P4.3). The
/// operations service records the publication only after this returns `Ok`,
/// i.e. after JetStream acknowledged each provider's message.
pub struct BusNotices(pub Arc<BusHandle>);

impl NoticePublisher for BusNotices {
    fn publish<'a>(
        &'a self,
        notice: &'a Notice,
    ) -> Pin<Box<dyn Future<Output = Result<(), PublishError>> + Send + 'a>> {
        Box::pin(async move {
            self.0
                .publish_maintenance_notice(&bus_notice(notice))
                .await
                .map(|_| ())
                .map_err(|e| PublishError {
                    window: notice.window.clone(),
                    reason: e.to_string(),
                })
        })
    }
}

/// The feed message of a window. Its id is the window's, so a notice republished
/// after a crash (published, not yet recorded) is deduplicated by JetStream.
pub fn bus_notice(n: &Notice) -> MaintenanceNotice {
    let affects: Vec<String> = n
        .affects
        .iter()
        .map(|s| {
            serde_json::to_value(s)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default()
        })
        .collect();
    MaintenanceNotice {
        id: n.window.to_string(),
        starts_at: n.starts_at,
        ends_at: n.ends_at,
        message: format!("{} (affects: {})", n.summary, affects.join(", ")),
        providers: None,
    }
}

/// What the web server shows of one tick. `published` is the running total of
/// notices published since start, kept by the caller.
pub fn web_health(
    r: &Result<Health, OpsError>,
    at_us: i64,
    slow_after_us: i64,
    published: u64,
) -> OpsHealth {
    match r {
        Ok(h) => OpsHealth {
            at_us,
            tick_ok: true,
            error: None,
            probe: h.probe.as_ref().map(|p| probe_health(p, slow_after_us)),
            firewall_review_overdue: Some(h.firewall_review.overdue),
            notices_published: published,
            access_records_past_retention: h.access_records_past_retention,
            bus_metrics: None,
        },
        Err(e) => OpsHealth {
            at_us,
            tick_ok: false,
            error: Some(e.to_string()),
            probe: None,
            firewall_review_overdue: None,
            notices_published: published,
            access_records_past_retention: None,
            bus_metrics: None,
        },
    }
}

fn probe_health(p: &ProbeEvent, slow_after_us: i64) -> ProbeHealth {
    let ProbeEvent::Recorded {
        latency_us,
        outcome,
        at,
        ..
    } = p;
    let (outcome_name, code) = match outcome {
        ProbeOutcome::Ok { .. } => ("ok", None),
        ProbeOutcome::Refused { code, .. } => ("refused", Some(code.clone())),
        ProbeOutcome::Failed { .. } => ("failed", None),
    };
    ProbeHealth {
        at_us: at.0,
        latency_us: *latency_us,
        outcome: outcome_name.into(),
        code,
        healthy: p.healthy(slow_after_us),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mebyo_domain::Timestamp;
    use mebyo_operations::maintenance::Service;
    use mebyo_operations::{Reference, WindowId};

    #[test]
    fn p4_3_a_window_becomes_a_feed_notice_with_a_stable_id() {
        let n = Notice {
            window: WindowId::new("w-2027-01").unwrap(),
            starts_at: Timestamp(10),
            ends_at: Timestamp(20),
            affects: [Service::Portal, Service::ProviderGateway].into(),
            summary: "storage upgrade".into(),
            announced_at: Timestamp(1),
        };
        let m = bus_notice(&n);
        assert_eq!(m.id, "w-2027-01");
        assert_eq!((m.starts_at, m.ends_at), (Timestamp(10), Timestamp(20)));
        assert_eq!(
            m.message,
            "storage upgrade (affects: portal, provider-gateway)"
        );
        assert_eq!(m.providers, None, "every approved provider is told");
    }

    #[test]
    fn p4_4_2_a_refused_or_slow_probe_is_unhealthy_in_the_web_health() {
        let probe = |latency_us, outcome| ProbeEvent::Recorded {
            probe: Reference::new("probe-1").unwrap(),
            path: "read_records".into(),
            latency_us,
            outcome,
            at: Timestamp(5_000_000),
        };
        let slow = probe_health(&probe(2_000, ProbeOutcome::Ok { records: 0 }), 1_000);
        assert_eq!((slow.outcome.as_str(), slow.healthy), ("ok", false));
        let refused = probe_health(
            &probe(
                10,
                ProbeOutcome::Refused {
                    code: "credential.revoked".into(),
                    clause: "P4.12".into(),
                },
            ),
            1_000,
        );
        assert_eq!(refused.outcome, "refused");
        assert_eq!(refused.code.as_deref(), Some("credential.revoked"));
        assert!(!refused.healthy);
        let fine = probe_health(&probe(10, ProbeOutcome::Ok { records: 0 }), 1_000);
        assert!(fine.healthy);
        assert_eq!(fine.at_us, 5_000_000);
        let failed = web_health(&Err(OpsError::Probe("x".into())), 7, 1_000, 3);
        assert!(!failed.tick_ok);
        assert_eq!(failed.notices_published, 3);
    }
}
