//! The recorder: stamps every event with its index and time under one
//! lock, so both increase in file order, and hands it to the sink.

use super::*;

/// Serialises events into the sink: one lock gives each event its index
/// and its time, so both increase in file order.
pub(super) struct Recorder {
    pub(super) start: Instant,
    pub(super) inner: Mutex<RecorderInner>,
    pub(super) cancel: Cancel,
    /// Client processes map to worker slots modulo this.
    pub(super) concurrency: u64,
}

pub(super) struct RecorderInner {
    pub(super) sink: Box<dyn HistorySink>,
    pub(super) next_index: u64,
    pub(super) error: Option<io::Error>,
    pub(super) fails: FailWindows,
}

impl Recorder {
    /// Stamps `event` with its index and time and hands it to the sink.
    pub(super) fn record(&self, mut event: Event) {
        let Ok(mut inner) = self.inner.lock() else {
            self.cancel.cancel();
            return;
        };
        if inner.error.is_some() {
            return;
        }
        let index = inner.next_index;
        event.index = Some(index).into();
        // Taken under the lock, so times increase in file order.
        event.time = Some(self.start.elapsed().as_nanos() as u64);
        event.line = index as usize + 1;
        if let (EventType::Fail | EventType::Info, Process::Client(p)) =
            (event.kind, &event.process)
        {
            let slot = (p % self.concurrency.max(1)) as usize;
            inner.fails.note(slot, event.time.unwrap_or(0));
        }
        match inner.sink.record(&event) {
            Ok(()) => inner.next_index += 1,
            Err(e) => {
                // Without a complete history the run is worthless: stop.
                inner.error = Some(e);
                self.cancel.cancel();
            }
        }
    }

    /// Events recorded, the history's size and the failure windows.
    pub(super) fn finish(&self) -> Result<(u64, Option<u64>, FailWindows), RunError> {
        let mut inner = self
            .inner
            .lock()
            .map_err(|_| RunError::Sink(io::Error::other("recorder poisoned")))?;
        match inner.error.take() {
            Some(e) => Err(RunError::Sink(e)),
            None => Ok((
                inner.next_index,
                inner.sink.bytes_written(),
                inner.fails.clone(),
            )),
        }
    }
}

/// An event without index and time (the recorder adds those).
pub(super) fn event(
    process: Process,
    kind: EventType,
    f: &str,
    key: Option<&Value>,
    value: &Value,
    node: Option<&str>,
    error: Option<&str>,
) -> Event {
    Event {
        index: Default::default(),
        time: None,
        process,
        kind,
        f: f.into(),
        key: key.cloned().map(Box::new),
        value: value.clone(),
        node: node.map(Into::into),
        error: error.map(|e| Box::new(Value::from(e))),
        line: 0,
    }
}
