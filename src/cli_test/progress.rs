//! The live progress line of a running test.

use super::*;

/// Live progress: an indicatif bar on a terminal, otherwise a plain line
/// every 10 s. Stops when `done` is set.
pub(super) fn spawn_progress(
    progress: Arc<Progress>,
    active: Arc<Mutex<Option<String>>>,
    limit: Duration,
    done: Arc<AtomicBool>,
) -> std::thread::JoinHandle<()> {
    let tty =
        std::io::stderr().is_terminal() && std::env::var("TERM").map_or(true, |t| t != "dumb");
    std::thread::spawn(move || {
        let limit_s = limit.as_secs().max(1);
        let bar = tty.then(|| {
            let pb = indicatif::ProgressBar::new(limit_s);
            let tpl = if std::env::var_os("NO_COLOR").is_some() {
                "[{bar:24}] {pos}/{len} s  {msg}"
            } else {
                "[{bar:24.cyan/blue}] {pos}/{len} s  {msg}"
            };
            if let Ok(style) = indicatif::ProgressStyle::with_template(tpl) {
                pb.set_style(style.progress_chars("=> "));
            }
            pb
        });
        let mut last_line = Instant::now();
        while !done.load(Ordering::SeqCst) {
            let s = progress.snapshot();
            let fault = active
                .lock()
                .ok()
                .and_then(|a| a.clone())
                .unwrap_or_else(|| "none".into());
            let msg = format!(
                "{:.0} ops/s  ok {} fail {} info {}  fault: {fault}",
                s.ops_per_sec, s.ok, s.fail, s.info
            );
            if let Some(pb) = &bar {
                pb.set_position(s.elapsed.as_secs().min(limit_s));
                pb.set_message(msg);
            } else if last_line.elapsed() >= Duration::from_secs(10) && !s.elapsed.is_zero() {
                errln!("[{:>4} s / {limit_s} s] {msg}", s.elapsed.as_secs());
                last_line = Instant::now();
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        if let Some(pb) = bar {
            pb.finish_and_clear();
        }
    })
}
