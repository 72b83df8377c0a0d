//! Panics caught and counted instead of taking the process down (issue 22 §1).
//!
//! The release profile unwinds (root `Cargo.toml`), so a panic ends only the task
//! it happened in. The web answers a handler's panic as a bare 500 in the API's
//! error shape ([`answer`], through `CatchPanicLayer`), and every interface that
//! catches one counts it with [`count_panic`] in `mebyo_panics_total{interface}`,
//! which `/metrics` serves. The panic's message is never logged or answered: it
//! may hold the input that caused it.

use std::sync::LazyLock;

use axum::response::{IntoResponse, Response};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

type Labels = Vec<(String, String)>;

/// Process-wide, so that the bus (or any other interface) counts into the same
/// family the web's `/metrics` encodes.
static PANICS: LazyLock<Family<Labels, Counter>> = LazyLock::new(Family::default);

fn labels(interface: &str) -> Labels {
    vec![("interface".to_string(), interface.to_string())]
}

/// Counts one caught panic of `interface` (`web`, `bus`, …; a fixed word, never
/// input) in `mebyo_panics_total`.
pub fn count_panic(interface: &str) {
    PANICS.get_or_create(&labels(interface)).inc();
}

/// Panics counted so far for `interface`.
pub fn panics_counted(interface: &str) -> u64 {
    PANICS.get_or_create(&labels(interface)).get()
}

/// Adds `panics_total` to a `/metrics` registry (prefix `mebyo`), with the web's
/// own series present from the start so that an alert can rely on it.
pub(crate) fn register(registry: &mut Registry) {
    let _ = PANICS.get_or_create(&labels("web"));
    registry.register(
        "panics",
        "Panics caught and answered instead of ending the process (issue 22)",
        PANICS.clone(),
    );
}

/// The answer to a request whose handler panicked: the API's 500, counted. Its
/// headers come from the layers outside the catch (security headers included).
pub(crate) fn answer(_payload: Box<dyn std::any::Any + Send + 'static>) -> Response {
    count_panic("web");
    tracing::error!(
        target: "mebyo_web::panic",
        "a request handler panicked; answered 500"
    );
    crate::error::ApiError::internal().into_response()
}

/// A panic hook that prints where a panic happened but not its message, which
/// may hold the input that caused it (no plaintext personal data in logs). For
/// the server binary; tests keep the default hook.
pub fn install_location_only_hook() {
    std::panic::set_hook(Box::new(|info| {
        let at = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_else(|| "unknown location".into());
        let thread = std::thread::current();
        eprintln!(
            "panic in thread {} at {at} (message withheld)",
            thread.name().unwrap_or("unnamed")
        );
    }));
}
