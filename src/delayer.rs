//! The NFQUEUE delayer behind the latency fault: runs inside a node (queues
//! are per network namespace), holds each queued packet for a fixed delay,
//! then accepts it. netem is the usual tool, but some kernels lack it.

use std::collections::VecDeque;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

pub fn run(queue_num: u16, delay: Duration) -> Result<ExitCode> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst)).context("signal handler")?;
    let mut q = nfq::Queue::open().context("opening the netfilter queue socket")?;
    q.bind(queue_num)
        .with_context(|| format!("binding queue {queue_num}"))?;
    // On overflow accept rather than drop: this fault delays, it does not lose.
    q.set_fail_open(queue_num, true).context("fail-open")?;
    q.set_nonblocking(true);
    // Fixed delay means FIFO order is also deadline order.
    let mut held: VecDeque<(Instant, nfq::Message)> = VecDeque::new();
    while !stop.load(Ordering::SeqCst) {
        loop {
            match q.recv() {
                Ok(mut msg) => {
                    msg.set_verdict(nfq::Verdict::Accept);
                    held.push_back((Instant::now() + delay, msg));
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e).context("receiving from the queue"),
            }
        }
        let now = Instant::now();
        while held.front().is_some_and(|(t, _)| *t <= now) {
            if let Some((_, msg)) = held.pop_front() {
                q.verdict(msg).context("verdict")?;
            }
        }
        let next = held
            .front()
            .map(|(t, _)| t.saturating_duration_since(now))
            .unwrap_or(Duration::from_millis(1));
        std::thread::sleep(next.min(Duration::from_micros(500)));
    }
    for (_, msg) in held.drain(..) {
        q.verdict(msg).context("verdict")?;
    }
    let _ = q.unbind(queue_num);
    Ok(ExitCode::SUCCESS)
}
