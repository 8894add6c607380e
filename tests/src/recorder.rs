//! A `metrics` recorder for tests: it keeps every counter, gauge and histogram in
//! `metrics-util`'s registry and reads them back by name and labels, without resetting
//! them (as `metrics-util`'s `DebuggingRecorder` snapshots do, which would break gauges
//! moved by increments).

use std::sync::atomic::Ordering;
use std::sync::Arc;

use metrics::{Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit};
use metrics_util::registry::{AtomicStorage, Registry};

/// A recorder whose values a test reads; install it for the code that registers handles
/// with [`TestRecorder::capture`].
#[derive(Clone)]
pub struct TestRecorder {
    registry: Arc<Registry<Key, AtomicStorage>>,
}

impl std::fmt::Debug for TestRecorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestRecorder").finish_non_exhaustive()
    }
}

impl Default for TestRecorder {
    fn default() -> Self {
        Self::new()
    }
}

impl TestRecorder {
    /// A recorder that has recorded nothing.
    pub fn new() -> Self {
        TestRecorder {
            registry: Arc::new(Registry::atomic()),
        }
    }

    /// Runs `f` with this recorder as the current thread's: the handles it registers (a
    /// client registers its own when it is built) report here for good.
    pub fn capture<T>(&self, f: impl FnOnce() -> T) -> T {
        metrics::with_local_recorder(self, f)
    }

    fn find<V>(
        handles: impl IntoIterator<Item = (Key, V)>,
        name: &str,
        labels: &[(&str, &str)],
    ) -> Vec<V> {
        handles
            .into_iter()
            .filter(|(key, _)| {
                key.name() == name
                    && labels.iter().all(|(label, value)| {
                        key.labels()
                            .any(|l| l.key() == *label && l.value() == *value)
                    })
            })
            .map(|(_, value)| value)
            .collect()
    }

    /// The sum of the counters called `name` whose labels include `labels`.
    pub fn counter(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        Self::find(self.registry.get_counter_handles(), name, labels)
            .iter()
            .map(|counter| counter.load(Ordering::SeqCst))
            .sum()
    }

    /// The sum of the gauges called `name` whose labels include `labels`.
    pub fn gauge(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        Self::find(self.registry.get_gauge_handles(), name, labels)
            .iter()
            .map(|gauge| f64::from_bits(gauge.load(Ordering::SeqCst)))
            .sum()
    }

    /// The values recorded in the histograms called `name` whose labels include `labels`.
    pub fn histogram(&self, name: &str, labels: &[(&str, &str)]) -> Vec<f64> {
        Self::find(self.registry.get_histogram_handles(), name, labels)
            .iter()
            .flat_map(|histogram| histogram.data())
            .collect()
    }

    /// Whether a metric called `name` was registered, of any kind.
    pub fn registered(&self, name: &str) -> bool {
        let named = |key: &Key| key.name() == name;
        self.registry.get_counter_handles().keys().any(named)
            || self.registry.get_gauge_handles().keys().any(named)
            || self.registry.get_histogram_handles().keys().any(named)
    }
}

impl Recorder for TestRecorder {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        self.registry
            .get_or_create_counter(key, |counter| Counter::from_arc(Arc::clone(counter)))
    }

    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        self.registry
            .get_or_create_gauge(key, |gauge| Gauge::from_arc(Arc::clone(gauge)))
    }

    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        self.registry
            .get_or_create_histogram(key, |histogram| Histogram::from_arc(Arc::clone(histogram)))
    }
}
