//! Capturing the `tracing` events and spans the code under test emits, to count its log
//! lines and look at its spans' fields.

use std::collections::BTreeMap;
use std::fmt::Write as _;
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
    /// The span it was emitted in (the thread's innermost entered span), if any: its
    /// index in [`LogCapture::spans`].
    pub span: Option<usize>,
}

/// One captured span.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpanLine {
    /// Its name.
    pub name: String,
    /// Its level.
    pub level: Level,
    /// Its target.
    pub target: String,
    /// The fields recorded on it (at creation or later), each as its `Debug` form.
    pub fields: BTreeMap<String, String>,
}

impl SpanLine {
    /// The recorded value of `field`, if any.
    pub fn field(&self, field: &str) -> Option<&str> {
        self.fields.get(field).map(String::as_str)
    }
}

/// A `tracing` subscriber that keeps every event, for a test to look at. Install it on the
/// current thread with [`LogCapture::install`]; on a current-thread runtime every task of
/// the test then reports to it.
#[derive(Debug, Clone, Default)]
pub struct LogCapture {
    lines: Arc<Mutex<Vec<LogLine>>>,
    spans: Arc<Mutex<Vec<SpanLine>>>,
    /// Each span's metadata, by index, for `current_span`.
    metadata: Arc<Mutex<Vec<&'static Metadata<'static>>>>,
    /// The most verbose level it is interested in (`None`: every level).
    max_level: Option<Level>,
}

thread_local! {
    /// The spans entered on this thread, innermost last (their ids).
    static ENTERED: std::cell::RefCell<Vec<u64>> = const { std::cell::RefCell::new(Vec::new()) };
}

impl LogCapture {
    /// A capture that has seen nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// A capture interested only in what is at `level` or less verbose (so that code
    /// asking `tracing::enabled!` for a more verbose level is told no).
    pub fn up_to(level: Level) -> Self {
        LogCapture {
            max_level: Some(level),
            ..Self::default()
        }
    }

    /// Every span so far, in the order they were created.
    pub fn spans(&self) -> Vec<SpanLine> {
        self.span_lock().clone()
    }

    fn span_lock(&self) -> MutexGuard<'_, Vec<SpanLine>> {
        self.spans
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
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

/// Collects fields into a map, each as its `Debug` form.
struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

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
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        match self.max_level {
            Some(max) => *metadata.level() <= max,
            None => true,
        }
    }

    fn new_span(&self, attributes: &Attributes<'_>) -> Id {
        let metadata = attributes.metadata();
        self.metadata
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(metadata);
        let mut fields = BTreeMap::new();
        attributes.record(&mut Fields(&mut fields));
        let mut spans = self.span_lock();
        spans.push(SpanLine {
            name: metadata.name().to_owned(),
            level: *metadata.level(),
            target: metadata.target().to_owned(),
            fields,
        });
        Id::from_u64(spans.len() as u64)
    }

    fn record(&self, span: &Id, values: &Record<'_>) {
        let mut spans = self.span_lock();
        if let Some(line) = usize::try_from(span.into_u64() - 1)
            .ok()
            .and_then(|at| spans.get_mut(at))
        {
            values.record(&mut Fields(&mut line.fields));
        }
    }

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut text = Text(String::new());
        event.record(&mut text);
        let metadata = event.metadata();
        self.lock().push(LogLine {
            level: *metadata.level(),
            target: metadata.target().to_owned(),
            text: text.0.trim_end().to_owned(),
            span: ENTERED.with(|entered| entered.borrow().last().map(|id| (*id - 1) as usize)),
        });
    }

    fn current_span(&self) -> tracing_core::span::Current {
        let metadata = self
            .metadata
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        ENTERED.with(|entered| {
            let id = entered.borrow().last().copied();
            match id.and_then(|id| Some((id, *metadata.get(usize::try_from(id - 1).ok()?)?))) {
                Some((id, meta)) => tracing_core::span::Current::new(Id::from_u64(id), meta),
                None => tracing_core::span::Current::none(),
            }
        })
    }

    fn enter(&self, span: &Id) {
        ENTERED.with(|entered| entered.borrow_mut().push(span.into_u64()));
    }

    fn exit(&self, span: &Id) {
        ENTERED.with(|entered| {
            let mut entered = entered.borrow_mut();
            if let Some(at) = entered.iter().rposition(|id| *id == span.into_u64()) {
                entered.remove(at);
            }
        });
    }
}
