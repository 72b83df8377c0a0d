//! Operations settings, kept in `DATA/operations.json` beside the platform's own
//! `mebyo.json` (which belongs to the platform). Absent file: the defaults.

use std::path::Path;

use mebyo_domain::Duration;
use mebyo_operations::anomaly::Rules;
use serde::{Deserialize, Serialize};

use crate::OpsError;

pub const FILE: &str = "operations.json";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct OpsSettings {
    /// How long before a maintenance window users must be told (P4.3), in hours.
    pub maintenance_lead_hours: i64,
    /// Interval of the firewall-log review (P4.4(3)), in days.
    pub firewall_review_interval_days: i64,
    /// How long access records are kept (P4.5(2)), in days.
    pub access_retention_days: i64,
    /// A probe slower than this is unhealthy (P4.4(2)), in milliseconds.
    pub probe_slow_ms: i64,
    /// Anomaly thresholds (P4.4(1)).
    pub anomaly: Rules,
}

impl Default for OpsSettings {
    fn default() -> Self {
        Self {
            // A week: enough for users to plan around a service outage.
            maintenance_lead_hours: 7 * 24,
            firewall_review_interval_days: 7,
            // Five years, the span Japanese medical-record rules keep records for.
            access_retention_days: 5 * 365,
            probe_slow_ms: 1000,
            anomaly: Rules::default(),
        }
    }
}

impl OpsSettings {
    pub fn maintenance_lead(&self) -> Duration {
        Duration(self.maintenance_lead_hours * 3600 * 1_000_000)
    }
    pub fn firewall_review_interval(&self) -> Duration {
        Duration::days(self.firewall_review_interval_days)
    }
    pub fn access_retention(&self) -> Duration {
        Duration::days(self.access_retention_days)
    }

    /// Reads `DATA/operations.json`, or the defaults if there is none. Nonsense
    /// (a negative lead time, a zero interval) is refused rather than used.
    pub fn load(data: &Path) -> Result<Self, OpsError> {
        let path = data.join(FILE);
        let s: OpsSettings = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| OpsError::Settings(format!("{}: {e}", path.display())))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Self::default(),
            Err(e) => return Err(OpsError::Settings(format!("{}: {e}", path.display()))),
        };
        let r = &s.anomaly;
        if s.maintenance_lead_hours < 0
            || s.firewall_review_interval_days <= 0
            || s.access_retention_days <= 0
            || s.probe_slow_ms <= 0
            || r.burst_refusals == 0
            || r.burst_window.0 <= 0
            || r.spike_bucket.0 <= 0
            || r.spike_factor == 0
        {
            return Err(OpsError::Settings(format!(
                "{}: values must be positive",
                path.display()
            )));
        }
        Ok(s)
    }
}
