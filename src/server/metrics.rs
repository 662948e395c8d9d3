//! Prometheus metrics, served at `GET /metrics`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Label naming a webhook route.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabel {
    /// The route's step name (`incoming`, `pin`, …).
    pub route: &'static str,
}

/// Label naming an outcome.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabel {
    /// `succeeded` or `failed`.
    pub outcome: &'static str,
}

/// Label naming what a failure-rate alert watched.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ScopeLabel {
    /// `all` (every caller) or `caller` (one calling number).
    pub scope: &'static str,
}

/// Every metric pinline exports.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Calls that reached `/voice/incoming`.
    pub calls: Counter,
    /// PIN checks by outcome.
    pub verifications: Family<OutcomeLabel, Counter>,
    /// PINs locked by too many failures.
    pub lockouts: Counter,
    /// Times failures crossed a per-hour limit.
    pub failure_rate_alerts: Family<ScopeLabel, Counter>,
    /// PIN entries refused unchecked because the calling number is
    /// throttled.
    pub throttled: Counter,
    /// Webhook handling time by route.
    pub webhook_seconds: Family<RouteLabel, Histogram>,
    /// Callers waiting or claimed, per class.
    pub queue_depth: Family<ClassLabel, Gauge>,
    /// How long callers waited before an agent connected.
    pub queue_wait_seconds: Histogram,
}

/// Label naming a queue class.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ClassLabel {
    /// `verified`, `approval_pending` or `unverified`.
    pub class: String,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh set of metrics, all zero.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("pinline");
        let calls = Counter::default();
        let verifications = Family::<OutcomeLabel, Counter>::default();
        let lockouts = Counter::default();
        let failure_rate_alerts = Family::<ScopeLabel, Counter>::default();
        let throttled = Counter::default();
        // 0.5 ms to about 4 s: a webhook that takes longer has failed the
        // caller anyway.
        let webhook_seconds = Family::<RouteLabel, Histogram>::new_with_constructor(
            (|| Histogram::new(exponential_buckets(0.0005, 2.0, 14))) as fn() -> Histogram,
        );
        registry.register("calls", "Calls answered", calls.clone());
        registry.register(
            "verifications",
            "Support PIN checks by outcome",
            verifications.clone(),
        );
        registry.register(
            "lockouts",
            "Support PINs locked by failures",
            lockouts.clone(),
        );
        registry.register(
            "failure_rate_alerts",
            "Verification failures past the per-hour limit",
            failure_rate_alerts.clone(),
        );
        registry.register(
            "throttled_attempts",
            "PIN entries refused from throttled numbers",
            throttled.clone(),
        );
        registry.register(
            "webhook_duration_seconds",
            "Webhook handling time",
            webhook_seconds.clone(),
        );
        let queue_depth = Family::<ClassLabel, Gauge>::default();
        // 5 s to about 40 minutes.
        let queue_wait_seconds = Histogram::new(exponential_buckets(5.0, 2.0, 10));
        registry.register(
            "queue_depth",
            "Callers waiting or claimed, per class",
            queue_depth.clone(),
        );
        registry.register(
            "queue_wait_seconds",
            "Wait before an agent connected",
            queue_wait_seconds.clone(),
        );
        Self {
            registry,
            calls,
            verifications,
            lockouts,
            failure_rate_alerts,
            throttled,
            webhook_seconds,
            queue_depth,
            queue_wait_seconds,
        }
    }

    /// Sets the queue depth gauges; classes not listed read 0.
    pub fn set_queue_depth(&self, depth: &[(String, u32)]) {
        for class in ["verified", "approval_pending", "unverified"] {
            let n = depth
                .iter()
                .find(|(c, _)| c == class)
                .map_or(0, |(_, n)| *n);
            self.queue_depth
                .get_or_create(&ClassLabel {
                    class: class.to_owned(),
                })
                .set(i64::from(n));
        }
    }

    /// The metrics in Prometheus' text format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
