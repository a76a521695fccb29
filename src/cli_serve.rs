//! `faultline serve`: a small HTTP/1.1 server over the store, for reading
//! nightly results in a browser. What it answers is decided by
//! `faultline_results::serve` (routes, path checks, index, zip); this file
//! is only sockets: one thread per connection, one request per connection
//! (`Connection: close`), GET and HEAD.
//!
//! It binds to 127.0.0.1 by default: there is no authentication, and the
//! store holds node logs.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use clap::Args;

use crate::usage;
use faultline_results::Store;
use faultline_results::serve::{self, IndexCache, PathError, Route, html, zip::ZipPlan};

#[derive(Args, Debug, Clone)]
#[command(after_long_help = "\
Pages: / (every run; filters in the query string, e.g. /?verdict=invalid&q=G1c),
/index.json, /runs/<test>/<time>/report.html (any file of a run),
/zip/<test>/<time>.zip (the whole run).

Example:
  faultline serve --store store --bind 127.0.0.1:8080")]
pub struct ServeArgs {
    /// Store directory to serve (as written by `faultline test --store`)
    #[arg(long, default_value = "store", value_name = "DIR")]
    pub store: PathBuf,

    /// Address to listen on; port 0 picks a free port (the address is
    /// printed). Anything but loopback exposes the store unauthenticated.
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR")]
    pub bind: String,
}

/// Connections served at once; more wait in the kernel's backlog.
const MAX_CONNECTIONS: usize = 64;
/// Longest request head read.
const MAX_HEAD: usize = 16 * 1024;

struct State {
    root: PathBuf,
    label: String,
    cache: Mutex<IndexCache>,
    active: AtomicUsize,
}

pub fn run(a: ServeArgs) -> Result<ExitCode> {
    let addrs: Vec<SocketAddr> = a
        .bind
        .to_socket_addrs()
        .map_err(|e| usage(format!("--bind {}: {e} (expected HOST:PORT)", a.bind)))?
        .collect();
    let listener = TcpListener::bind(&addrs[..]).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AddrInUse {
            anyhow!(
                "cannot listen on {}: the port is already in use (another `faultline serve`?); \
                 choose another with --bind, e.g. --bind 127.0.0.1:0 for any free port",
                a.bind
            )
        } else {
            anyhow!("cannot listen on {}: {e}", a.bind)
        }
    })?;
    let local = listener.local_addr().context("reading the bound address")?;
    if !a.store.is_dir() {
        errln!(
            "faultline: warning: the store {} does not exist yet; the index is empty until a \
             run writes to it",
            a.store.display()
        );
    }
    if !local.ip().is_loopback() {
        errln!(
            "faultline: warning: serving {} on {local} without authentication: anyone who can \
             reach it can read every run and node log",
            a.store.display()
        );
    }
    outln!(
        "faultline serve: {} at http://{local}/ (Ctrl-C stops)",
        a.store.display()
    );
    crate::out::stdout().flush()?;
    let state = Arc::new(State {
        root: a.store.clone(),
        label: a.store.display().to_string(),
        cache: Mutex::new(IndexCache::default()),
        active: AtomicUsize::new(0),
    });
    for conn in listener.incoming() {
        let stream = match conn {
            Ok(s) => s,
            Err(e) => {
                errln!("faultline: accept: {e}");
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        if state.active.load(Ordering::SeqCst) >= MAX_CONNECTIONS {
            let mut s = stream;
            let _ = respond(&mut s, 503, "text/plain", b"busy, retry\n", false, &[]);
            continue;
        }
        state.active.fetch_add(1, Ordering::SeqCst);
        let st = Arc::clone(&state);
        std::thread::spawn(move || {
            if let Err(e) = handle(stream, &st) {
                // A client that goes away mid-answer is not our error.
                if !is_disconnect(&e) {
                    errln!("faultline: serve: {e:#}");
                }
            }
            st.active.fetch_sub(1, Ordering::SeqCst);
        });
    }
    Ok(ExitCode::SUCCESS)
}

fn is_disconnect(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>().is_some_and(|io| {
            matches!(
                io.kind(),
                std::io::ErrorKind::BrokenPipe
                    | std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::ConnectionAborted
            )
        })
    })
}

/// Reads the request line and headers; returns (method, target).
fn read_head(stream: &TcpStream) -> Result<Option<(String, String)>> {
    let mut r = BufReader::new(stream.take(MAX_HEAD as u64));
    let mut line = String::new();
    if r.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    let mut parts = line.split_whitespace();
    let (Some(method), Some(target)) = (parts.next(), parts.next()) else {
        return Ok(Some((String::new(), String::new())));
    };
    let (method, target) = (method.to_string(), target.to_string());
    // Skip the headers: nothing in them changes the answer.
    loop {
        let mut h = String::new();
        if r.read_line(&mut h)? == 0 || h == "\r\n" || h == "\n" {
            break;
        }
    }
    Ok(Some((method, target)))
}

fn respond(
    s: &mut TcpStream,
    status: u16,
    ctype: &str,
    body: &[u8],
    head_only: bool,
    extra: &[(&str, String)],
) -> std::io::Result<()> {
    write_head(s, status, ctype, body.len() as u64, extra)?;
    if !head_only {
        s.write_all(body)?;
    }
    s.flush()
}

fn write_head(
    s: &mut TcpStream,
    status: u16,
    ctype: &str,
    len: u64,
    extra: &[(&str, String)],
) -> std::io::Result<()> {
    let reason = match status {
        200 => "OK",
        301 => "Moved Permanently",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        503 => "Service Unavailable",
        _ => "Internal Server Error",
    };
    let mut head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {ctype}\r\nContent-Length: {len}\r\n\
         Connection: close\r\nCache-Control: no-cache\r\nX-Content-Type-Options: nosniff\r\n"
    );
    for (k, v) in extra {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes())
}

fn handle(mut s: TcpStream, st: &State) -> Result<()> {
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    s.set_write_timeout(Some(Duration::from_secs(60)))?;
    let Some((method, target)) = read_head(&s)? else {
        return Ok(());
    };
    let head_only = method == "HEAD";
    if method != "GET" && !head_only {
        respond(
            &mut s,
            405,
            "text/plain",
            b"only GET and HEAD\n",
            false,
            &[("Allow", "GET, HEAD".into())],
        )?;
        return Ok(());
    }
    let text = "text/plain; charset=utf-8";
    let route = match serve::route(&target) {
        Ok(r) => r,
        Err(e) => {
            let code = match e {
                PathError::Traversal => 403,
                PathError::NotFound => 404,
                _ => 400,
            };
            respond(
                &mut s,
                code,
                text,
                format!("{e}\n").as_bytes(),
                head_only,
                &[],
            )?;
            return Ok(());
        }
    };
    match route {
        Route::Index | Route::IndexJson => {
            let idx = {
                let mut cache = st
                    .cache
                    .lock()
                    .map_err(|_| anyhow!("index cache poisoned"))?;
                serve::index(&Store::new(&st.root), &mut cache)
            };
            let idx = match idx {
                Ok(i) => i,
                Err(e) => {
                    respond(
                        &mut s,
                        500,
                        text,
                        format!("{e}\n").as_bytes(),
                        head_only,
                        &[],
                    )?;
                    return Ok(());
                }
            };
            if route == Route::Index {
                let page = html::render_index(&idx, &st.label);
                respond(
                    &mut s,
                    200,
                    "text/html; charset=utf-8",
                    page.as_bytes(),
                    head_only,
                    &[],
                )?;
            } else {
                let body = serde_json::to_vec_pretty(&idx)?;
                respond(&mut s, 200, "application/json", &body, head_only, &[])?;
            }
        }
        Route::File(rel) => serve_file(&mut s, st, &rel, &target, head_only)?,
        Route::Zip(rel) => serve_zip(&mut s, st, &rel, head_only)?,
        Route::NotFound => respond(&mut s, 404, text, b"not found\n", head_only, &[])?,
    }
    Ok(())
}

fn not_found(s: &mut TcpStream, e: PathError, head_only: bool) -> std::io::Result<()> {
    let code = if e == PathError::Traversal { 403 } else { 404 };
    respond(
        s,
        code,
        "text/plain; charset=utf-8",
        format!("{e}\n").as_bytes(),
        head_only,
        &[],
    )
}

fn serve_file(
    s: &mut TcpStream,
    st: &State,
    rel: &Path,
    target: &str,
    head_only: bool,
) -> Result<()> {
    let p = match serve::resolve(&st.root, rel) {
        Ok(p) => p,
        Err(e) => return Ok(not_found(s, e, head_only)?),
    };
    if p.is_dir() {
        let path = target.split(['?', '#']).next().unwrap_or("");
        if !path.ends_with('/') {
            respond(
                s,
                301,
                "text/plain",
                b"",
                head_only,
                &[("Location", format!("{path}/"))],
            )?;
            return Ok(());
        }
        let mut entries = Vec::new();
        for e in std::fs::read_dir(&p).with_context(|| format!("listing {}", p.display()))? {
            let e = e?;
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            let md = e.metadata()?;
            entries.push((name, md.is_dir(), md.len()));
        }
        entries.sort();
        let page = html::render_dir_listing(&rel.display().to_string(), &entries);
        respond(
            s,
            200,
            "text/html; charset=utf-8",
            page.as_bytes(),
            head_only,
            &[],
        )?;
        return Ok(());
    }
    let mut f = match std::fs::File::open(&p) {
        Ok(f) => f,
        Err(_) => return Ok(not_found(s, PathError::NotFound, head_only)?),
    };
    let len = f.metadata()?.len();
    write_head(s, 200, serve::content_type(&p), len, &[])?;
    if !head_only {
        // A file still being appended to (history.jsonl of a live run) is
        // sent up to the length announced.
        std::io::copy(&mut (&mut f).take(len), s)?;
    }
    s.flush()?;
    Ok(())
}

fn serve_zip(s: &mut TcpStream, st: &State, rel: &Path, head_only: bool) -> Result<()> {
    let dir = match serve::resolve(&st.root, rel) {
        Ok(p) if p.is_dir() => p,
        Ok(_) => return Ok(not_found(s, PathError::NotFound, head_only)?),
        Err(e) => return Ok(not_found(s, e, head_only)?),
    };
    let prefix = rel
        .iter()
        .map(|c| c.to_string_lossy())
        .collect::<Vec<_>>()
        .join("-");
    let plan = match ZipPlan::of_dir(&dir, &prefix) {
        Ok(p) => p,
        Err(e) => {
            let msg = format!("cannot zip {}: {e}\n", rel.display());
            respond(
                s,
                500,
                "text/plain; charset=utf-8",
                msg.as_bytes(),
                head_only,
                &[],
            )?;
            return Ok(());
        }
    };
    write_head(
        s,
        200,
        "application/zip",
        plan.len(),
        &[(
            "Content-Disposition",
            format!("attachment; filename=\"{prefix}.zip\""),
        )],
    )?;
    if !head_only {
        // After the head, an error can only cut the connection short; the
        // client sees a truncated download (Content-Length says so).
        let mut w = std::io::BufWriter::with_capacity(64 * 1024, &mut *s);
        plan.write_to(&mut w)
            .with_context(|| format!("zipping {}", dir.display()))?;
        w.flush()?;
    }
    Ok(())
}
