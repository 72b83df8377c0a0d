//! What the server runs besides requests: one periodic tick (publish maintenance
//! notices to providers, probe the read path, check the firewall-review flag,
//! count access records past retention) and
//! the anomaly subscriber ([`crate::anomaly::AnomalyWatcher::run`]), each until
//! shutdown. Failures are logged and retried at the next tick: monitoring must not
//! take the server down.

use std::future::Future;
use std::sync::Arc;

use mebyo_operations::monitoring::{ProbeEvent, ReviewFlag};
use mebyo_platform::Platform;
use serde::Serialize;

use crate::monitoring::{ProbeTarget, Stopwatch, probe, review_status};
use crate::{NoticePublisher, OpsError, OpsSettings, maintenance};

/// The operational health the dashboard and /metrics show.
#[derive(Debug, Clone, Serialize)]
pub struct Health {
    pub firewall_review: ReviewFlag,
    pub probe: Option<ProbeEvent>,
    pub probe_healthy: Option<bool>,
    pub notices_published: usize,
    /// Access records older than the configured retention (P4.5(2)); filled by
    /// [`run_periodic`], which keeps the count between ticks.
    pub access_records_past_retention: Option<u64>,
}

/// One tick: notices, probe, review flag.
pub async fn tick(
    p: &Platform,
    settings: &OpsSettings,
    publisher: Option<&dyn NoticePublisher>,
    target: Option<&ProbeTarget>,
    stopwatch: &Stopwatch,
) -> Result<Health, OpsError> {
    let notices_published = match publisher {
        Some(publisher) => maintenance::publish_due(p, publisher).await?.len(),
        None => 0,
    };
    let probe = match target {
        Some(t) => Some(probe(p, t, stopwatch).await?),
        None => None,
    };
    let firewall_review = review_status(p, settings).await?;
    if firewall_review.overdue {
        tracing::warn!(due_at = ?firewall_review.due_at, "firewall-log review overdue (P4.4(3))");
    }
    Ok(Health {
        firewall_review,
        probe_healthy: probe
            .as_ref()
            .map(|e| e.healthy(settings.probe_slow_ms * 1000)),
        probe,
        notices_published,
        access_records_past_retention: None,
    })
}

/// Ticks every `every` until `shutdown`, handing each result to `report` (e.g. to
/// update the metrics the web server serves).
pub async fn run_periodic(
    p: Arc<Platform>,
    settings: OpsSettings,
    publisher: Option<Arc<dyn NoticePublisher>>,
    target: Option<ProbeTarget>,
    every: std::time::Duration,
    report: impl Fn(Result<Health, OpsError>) + Send,
    shutdown: impl Future<Output = ()>,
) {
    let stopwatch = crate::monitoring::system_stopwatch();
    let mut retention = crate::monitoring::RetentionWatch::default();
    let mut interval = tokio::time::interval(every);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => return,
            _ = interval.tick() => {
                let mut r = tick(&p, &settings, publisher.as_deref(), target.as_ref(), &stopwatch).await;
                if let Ok(h) = &mut r {
                    match retention.update(&p, &settings).await {
                        Ok(n) => h.access_records_past_retention = Some(n),
                        Err(e) => r = Err(e),
                    }
                }
                if let Err(e) = &r {
                    tracing::error!(%e, "operations tick failed");
                }
                report(r);
            }
        }
    }
}
