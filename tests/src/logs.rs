//! Capturing the `tracing` events the code under test emits, to count its log lines.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

/// One captured event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// Its level.
    pub level: Level,
    /// Its target (the module path, `memcache_core::...`).
    pub target: String,
    /// Its message and fields, `message field=value ...`.
    pub text: String,
}

/// A `tracing` subscriber that keeps every event, for a test to look at. Install it on the
/// current thread with [`LogCapture::install`]; on a current-thread runtime every task of
/// the test then reports to it.
#[derive(Debug, Clone, Default)]
pub struct LogCapture {
    lines: Arc<Mutex<Vec<LogLine>>>,
    spans: Arc<AtomicU64>,
}

impl LogCapture {
    /// A capture that has seen nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The capture that is the process's global subscriber (installed on first use): it sees
    /// the events of every thread, so a test picks its own out, by its server's address.
    pub fn global() -> &'static LogCapture {
        static GLOBAL: OnceLock<LogCapture> = OnceLock::new();
        GLOBAL.get_or_init(|| {
            let capture = LogCapture::new();
            // Fails only when another global subscriber was set first (not in these tests).
            let _ = tracing::subscriber::set_global_default(capture.clone());
            capture
        })
    }

    /// Makes this the current thread's subscriber until the guard is dropped.
    pub fn install(&self) -> tracing::subscriber::DefaultGuard {
        tracing::subscriber::set_default(self.clone())
    }

    /// Every event so far.
    pub fn lines(&self) -> Vec<LogLine> {
        self.lock().clone()
    }

    /// The events at `level` whose target starts with `target`.
    pub fn at(&self, level: Level, target: &str) -> Vec<LogLine> {
        self.lock()
            .iter()
            .filter(|line| line.level == level && line.target.starts_with(target))
            .cloned()
            .collect()
    }

    /// Whether some event's text contains `text`.
    pub fn contains(&self, text: &str) -> bool {
        self.lock().iter().any(|line| line.text.contains(text))
    }

    fn lock(&self) -> MutexGuard<'_, Vec<LogLine>> {
        self.lines
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Writes an event's fields as `message name=value ...`.
struct Text(String);

impl Visit for Text {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.0, "{value:?} ");
        } else {
            let _ = write!(self.0, "{}={value:?} ", field.name());
        }
    }
}

impl Subscriber for LogCapture {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }

    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(self.spans.fetch_add(1, Ordering::Relaxed) + 1)
    }

    fn record(&self, _: &Id, _: &Record<'_>) {}

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut text = Text(String::new());
        event.record(&mut text);
        let metadata = event.metadata();
        self.lock().push(LogLine {
            level: *metadata.level(),
            target: metadata.target().to_owned(),
            text: text.0.trim_end().to_owned(),
        });
    }

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}
