//! A spinner on stderr while `faultline check` works: which file (of how
//! many), its size, the time so far. Only on a terminal (not `TERM=dumb`),
//! never with `--json`, and only once a check has taken a second, so quick
//! checks and pipes see nothing extra.

use std::io::IsTerminal;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long a check runs before the spinner shows.
const DELAY: Duration = Duration::from_secs(1);

pub(super) struct Spinner {
    msg: Arc<Mutex<String>>,
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Spinner {
    /// A spinner that draws only when stderr is a terminal and `quiet` is
    /// false (`--json`); otherwise a no-op.
    pub(super) fn start(quiet: bool) -> Spinner {
        let msg = Arc::new(Mutex::new(String::new()));
        let tty =
            std::io::stderr().is_terminal() && std::env::var("TERM").map_or(true, |t| t != "dumb");
        if quiet || !tty {
            return Spinner {
                msg,
                stop: None,
                thread: None,
            };
        }
        let (tx, rx) = mpsc::channel::<()>();
        let m = Arc::clone(&msg);
        let thread = std::thread::spawn(move || {
            if rx.recv_timeout(DELAY) != Err(RecvTimeoutError::Timeout) {
                return;
            }
            let pb = indicatif::ProgressBar::new_spinner();
            if let Ok(style) = indicatif::ProgressStyle::with_template("{spinner} {msg}") {
                pb.set_style(style);
            }
            let t0 = Instant::now() - DELAY;
            loop {
                let text = m.lock().map(|s| s.clone()).unwrap_or_default();
                pb.set_message(format!("{text} · {:.0} s", t0.elapsed().as_secs_f64()));
                pb.tick();
                match rx.recv_timeout(Duration::from_millis(120)) {
                    Err(RecvTimeoutError::Timeout) => {}
                    _ => break,
                }
            }
            pb.finish_and_clear();
        });
        Spinner {
            msg,
            stop: Some(tx),
            thread: Some(thread),
        }
    }

    /// What is being checked now, e.g. `checking h.jsonl (2 of 3, 41.2 MB)`.
    pub(super) fn set(&self, text: String) {
        if let Ok(mut m) = self.msg.lock() {
            *m = text;
        }
    }
}

impl Drop for Spinner {
    /// Stops and clears the spinner before anything else is printed.
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
