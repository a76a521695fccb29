//! One TCP connection speaking `faultline-node`'s line protocol (one JSON
//! value a line, `faultline_node::shell::api`): connect with a timeout,
//! send a line, read a line with a timeout. The clients built on it
//! ([`crate::line_client::LineClient`], the node target's client) decide
//! what the request was and how to classify a failure; this type only
//! keeps the reconnect policy they share: **any failed send or read drops
//! the connection**, and the next request connects afresh. A late answer
//! to a timed-out request must never be read as the next one's.

use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

/// Why [`LineConn::read_line`] got no line. The connection is dropped
/// either way; the request was sent, so its fate is unknown.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ReadError {
    /// No line within the time allowed.
    Timeout,
    /// The peer closed the connection, or reading failed.
    Lost,
}

/// A lazily opened connection; see the module docs.
#[derive(Default)]
pub(crate) struct LineConn {
    conn: Option<(BufReader<OwnedReadHalf>, OwnedWriteHalf)>,
}

impl LineConn {
    #[cfg(test)]
    fn is_open(&self) -> bool {
        self.conn.is_some()
    }

    /// Drops the connection; the next [`LineConn::open`] reconnects.
    pub(crate) fn close(&mut self) {
        self.conn = None;
    }

    /// Connects to `addr` within `timeout`, unless already connected.
    /// `Err` says why (`connect timed out`, or the OS error); nothing was
    /// sent.
    pub(crate) async fn open(&mut self, addr: &str, timeout: Duration) -> Result<(), String> {
        if self.conn.is_some() {
            return Ok(());
        }
        match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
            Ok(Ok(s)) => {
                // One small request at a time: Nagle would only add latency.
                let _ = s.set_nodelay(true);
                let (r, w) = s.into_split();
                self.conn = Some((BufReader::new(r), w));
                Ok(())
            }
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("connect timed out".into()),
        }
    }

    /// Writes `line` (newline included). On error the connection is
    /// dropped; part of the line may have gone out, so the caller counts
    /// the request as sent.
    pub(crate) async fn send(&mut self, line: &str) -> std::io::Result<()> {
        let Some((_, w)) = self.conn.as_mut() else {
            return Err(std::io::ErrorKind::NotConnected.into());
        };
        let r = w.write_all(line.as_bytes()).await;
        if r.is_err() {
            self.conn = None;
        }
        r
    }

    /// Reads one line within `timeout`; on failure the connection is
    /// dropped (an answer may still be on its way).
    pub(crate) async fn read_line(&mut self, timeout: Duration) -> Result<String, ReadError> {
        let Some((r, _)) = self.conn.as_mut() else {
            return Err(ReadError::Lost);
        };
        let mut buf = String::new();
        let e = match tokio::time::timeout(timeout, r.read_line(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => return Ok(buf),
            Ok(Ok(_) | Err(_)) => ReadError::Lost,
            Err(_) => ReadError::Timeout,
        };
        self.conn = None;
        Err(e)
    }

    /// One request on a fresh connection, the whole exchange within
    /// `timeout`: the answer line, or `None` (status polls, where any
    /// failure just means "not answering").
    pub(crate) async fn once(addr: &str, line: &str, timeout: Duration) -> Option<String> {
        let fut = async {
            let mut c = LineConn::default();
            c.open(addr, timeout).await.ok()?;
            c.send(line).await.ok()?;
            c.read_line(timeout).await.ok()
        };
        tokio::time::timeout(timeout, fut).await.ok().flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    /// A server that answers the first line with `reply` (if any), then
    /// holds the connection open without answering again.
    async fn server(reply: Option<&'static str>) -> String {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            while let Ok((s, _)) = l.accept().await {
                tokio::spawn(async move {
                    let (r, mut w) = s.into_split();
                    let mut r = BufReader::new(r);
                    let mut line = String::new();
                    let _ = r.read_line(&mut line).await;
                    match reply {
                        Some(a) => {
                            let _ = w.write_all(a.as_bytes()).await;
                            tokio::time::sleep(Duration::from_secs(5)).await;
                        }
                        // Hang up without answering.
                        None => drop(w),
                    }
                });
            }
        });
        addr
    }

    #[tokio::test]
    async fn round_trip_then_timeout_drops_the_connection() {
        let addr = server(Some("pong\n")).await;
        let mut c = LineConn::default();
        c.open(&addr, Duration::from_secs(2)).await.unwrap();
        c.send("ping\n").await.unwrap();
        assert_eq!(c.read_line(Duration::from_secs(2)).await.unwrap(), "pong\n");
        assert!(c.is_open());
        // No second answer: a timeout, and the connection is gone.
        let e = c.read_line(Duration::from_millis(50)).await.unwrap_err();
        assert_eq!(e, ReadError::Timeout);
        assert!(!c.is_open());
        assert_eq!(
            c.send("x\n").await.unwrap_err().kind(),
            std::io::ErrorKind::NotConnected
        );
        assert_eq!(
            LineConn::once(&addr, "ping\n", Duration::from_secs(2))
                .await
                .as_deref(),
            Some("pong\n")
        );
    }

    #[tokio::test]
    async fn a_hang_up_is_lost_and_a_refused_connect_says_why() {
        let addr = server(None).await;
        let mut c = LineConn::default();
        c.open(&addr, Duration::from_secs(2)).await.unwrap();
        c.send("ping\n").await.unwrap();
        let e = c.read_line(Duration::from_secs(2)).await.unwrap_err();
        assert_eq!(e, ReadError::Lost);
        assert!(!c.is_open());
        assert_eq!(
            LineConn::once(&addr, "ping\n", Duration::from_secs(1)).await,
            None
        );
        let dead = format!("127.0.0.1:{}", crate::loopback::free_port());
        let e = c.open(&dead, Duration::from_secs(2)).await.unwrap_err();
        assert!(!e.is_empty() && !c.is_open(), "{e}");
    }
}
