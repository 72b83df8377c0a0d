//! The anomaly subscriber (P4.4(1), P4.5(1)): follows the log, decodes every
//! `access.recorded` event (sealed under the platform audit key), runs the pure
//! rules, and reports an incident on its own as the platform for each decision.
//!
//! Idempotent: decisions carry ids derived from what fired, and the incident
//! decider refuses a second report of the same id, so a restart that replays the
//! log from the start, or two subscribers running at once, opens nothing twice.
//! The rules' windows are rebuilt by that replay, which is why the subscriber
//! starts from position 0 unless told otherwise.

use std::future::Future;
use std::sync::Arc;

use futures::StreamExt;
use mebyo_domain::{AccessEvent, Actor};
use mebyo_operations::IncidentId;
use mebyo_operations::anomaly::{Detector, Observation, Rules};
use mebyo_platform::Platform;
use mebyo_platform::codec::{self, Decoded};
use mebyo_store::{Envelope, EventStore};

use crate::OpsError;
use crate::incidents::incident;

pub struct AnomalyWatcher {
    detector: Detector,
    /// The next log position to look at.
    pub next: u64,
    /// Incidents this watcher opened (not those another run had already opened).
    pub opened: Vec<IncidentId>,
}

impl AnomalyWatcher {
    pub fn new(rules: Rules) -> Self {
        Self {
            detector: Detector::new(rules),
            next: 0,
            opened: Vec::new(),
        }
    }

    /// Looks at one envelope; opens incidents if a rule fires.
    pub async fn handle(&mut self, p: &Platform, env: &Envelope) -> Result<(), OpsError> {
        self.next = self.next.max(env.position + 1);
        if env.event_type != "access.recorded" {
            return Ok(());
        }
        let Decoded::Event(event) = codec::decode::<AccessEvent>(env, p.keys())? else {
            return Ok(());
        };
        for decision in self.detector.observe(&Observation::from_access(&event)) {
            match incident(p, &Actor::System, &decision.incident, decision.command()).await? {
                Ok(_) => {
                    tracing::warn!(
                        incident = %decision.incident,
                        rule = ?decision.rule,
                        "anomaly: incident opened (P4.4(1))"
                    );
                    self.opened.push(decision.incident);
                }
                Err(r) if r.code == "incident.already_reported" => {}
                Err(r) => {
                    tracing::error!(incident = %decision.incident, %r, "anomaly report refused")
                }
            }
        }
        Ok(())
    }

    /// Processes everything durable now, then returns (a one-shot scan: tests,
    /// `mebyo ops anomalies scan`).
    pub async fn catch_up(&mut self, p: &Platform) -> Result<(), OpsError> {
        loop {
            let page = p.store().read_all(self.next, 512).await?;
            if page.is_empty() {
                return Ok(());
            }
            for env in &page {
                self.handle(p, env).await?;
            }
        }
    }

    /// Follows the log until `shutdown` resolves (the server's background task).
    pub async fn run(
        mut self,
        p: Arc<Platform>,
        shutdown: impl Future<Output = ()>,
    ) -> Result<Self, OpsError> {
        let mut events = p.store().subscribe_all(self.next);
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => return Ok(self),
                next = events.next() => match next {
                    Some(env) => self.handle(&p, &env?).await?,
                    None => return Ok(self),
                },
            }
        }
    }
}
