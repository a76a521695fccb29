//! A headless Chromium driven through chromedriver's W3C WebDriver API (a
//! few HTTP calls over std::net), for tests that look at pages as a person
//! would. Include with `#[path = "common/webdriver.rs"] mod webdriver;`.
#![allow(dead_code)] // each test file uses a different subset

use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// One HTTP/1.1 request; (status, body). The body is read by its
/// Content-Length (or chunks): chromedriver keeps connections open even
/// when asked to close them.
pub fn http(addr: &str, method: &str, path: &str, body: Option<&Value>) -> (u16, Vec<u8>) {
    let mut s = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    let b = body.map(|b| b.to_string()).unwrap_or_default();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{b}",
        b.len()
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut r = BufReader::new(s);
    let mut status_line = String::new();
    r.read_line(&mut status_line)
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
    let status: u16 = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("{method} {path}: bad status line {status_line:?}"));
    let (mut len, mut chunked) = (None, false);
    loop {
        let mut h = String::new();
        r.read_line(&mut h).unwrap();
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let lower = h.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("content-length:") {
            len = v.trim().parse::<usize>().ok();
        }
        if lower.starts_with("transfer-encoding:") && lower.contains("chunked") {
            chunked = true;
        }
    }
    let mut out = Vec::new();
    if chunked {
        loop {
            let mut size = String::new();
            r.read_line(&mut size).unwrap();
            let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
            if n == 0 {
                break;
            }
            let mut chunk = vec![0; n + 2];
            r.read_exact(&mut chunk).unwrap();
            out.extend_from_slice(&chunk[..n]);
        }
    } else if let Some(n) = len {
        out.resize(n, 0);
        r.read_exact(&mut out).unwrap();
    } else if method != "HEAD" {
        r.read_to_end(&mut out).unwrap();
    }
    (status, out)
}

/// Kills a child process when dropped.
pub struct Kill(pub Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A WebDriver session; ends (closing the browser) when dropped, before
/// its chromedriver is killed.
pub struct Driver {
    addr: String,
    session: String,
    _chromedriver: Kill,
}

impl Driver {
    /// Starts chromedriver on a free port and a headless Chromium session
    /// with a `width`×`height` window.
    pub fn start(chromium: &Path, chromedriver: &Path, width: u32, height: u32) -> Driver {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let drv = Kill(
            Command::new(chromedriver)
                .arg(format!("--port={port}"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("starting chromedriver"),
        );
        let addr = format!("127.0.0.1:{port}");
        let t0 = Instant::now();
        loop {
            if TcpStream::connect(&addr).is_ok() {
                let (_, b) = http(&addr, "GET", "/status", None);
                let v: Value = serde_json::from_slice(&b).unwrap_or_default();
                if v["value"]["ready"] == true {
                    break;
                }
            }
            assert!(
                t0.elapsed() < Duration::from_secs(20),
                "chromedriver not ready"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                // --no-sandbox: the tests run as root.
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--hide-scrollbars",
                         format!("--window-size={width},{height}")]
            }
        }}});
        let (st, b) = http(&addr, "POST", "/session", Some(&caps));
        let v: Value = serde_json::from_slice(&b).unwrap_or_default();
        assert_eq!(st, 200, "new session: {v}");
        let session = v["value"]["sessionId"]
            .as_str()
            .expect("sessionId")
            .to_string();
        let d = Driver {
            addr,
            session,
            _chromedriver: drv,
        };
        // --window-size sets the outer window; make the viewport itself
        // width×height, as the assertions about "the first N px" mean.
        let inner = d.script("return [window.innerWidth, window.innerHeight]");
        let (iw, ih) = (
            inner[0].as_i64().unwrap_or(0),
            inner[1].as_i64().unwrap_or(0),
        );
        let rect = d.call("GET", "/window/rect", None);
        let (ow, oh) = (
            rect["width"].as_i64().unwrap_or(0),
            rect["height"].as_i64().unwrap_or(0),
        );
        d.call(
            "POST",
            "/window/rect",
            Some(json!({"width": ow + (width as i64 - iw), "height": oh + (height as i64 - ih)})),
        );
        d
    }

    pub fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let p = format!("/session/{}{path}", self.session);
        let (st, b) = http(&self.addr, method, &p, body.as_ref());
        let v: Value = serde_json::from_slice(&b)
            .unwrap_or_else(|e| panic!("{p}: {e}: {}", String::from_utf8_lossy(&b)));
        assert_eq!(st, 200, "{method} {p}: {v}");
        v["value"].clone()
    }

    pub fn go(&self, url: &str) {
        self.call("POST", "/url", Some(json!({ "url": url })));
    }

    /// An element's WebDriver id.
    pub fn find(&self, using: &str, value: &str) -> String {
        let v = self.call(
            "POST",
            "/element",
            Some(json!({"using": using, "value": value})),
        );
        v.as_object()
            .and_then(|o| o.values().next())
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("no element {value}: {v}"))
            .to_string()
    }

    pub fn click(&self, css: &str) {
        let el = self.find("css selector", css);
        self.call("POST", &format!("/element/{el}/click"), Some(json!({})));
    }

    /// Moves the mouse over the middle of an element, as a person would
    /// hover it.
    pub fn hover(&self, css: &str) {
        // The element reference as WebDriver gave it ({"element-…": id}).
        let origin = self.call(
            "POST",
            "/element",
            Some(json!({"using": "css selector", "value": css})),
        );
        self.call(
            "POST",
            "/actions",
            Some(json!({"actions": [{"type": "pointer", "id": "mouse",
                "parameters": {"pointerType": "mouse"},
                "actions": [{"type": "pointerMove", "duration": 0, "origin": origin, "x": 0, "y": 0}]}]})),
        );
    }

    pub fn script(&self, js: &str) -> Value {
        self.call(
            "POST",
            "/execute/sync",
            Some(json!({"script": js, "args": []})),
        )
    }

    pub fn screenshot(&self, to: &Path) {
        use base64::Engine;
        let b64 = self.call("GET", "/screenshot", None);
        let png = base64::engine::general_purpose::STANDARD
            .decode(b64.as_str().expect("base64"))
            .expect("valid base64");
        assert!(png.starts_with(b"\x89PNG"), "not a PNG");
        std::fs::write(to, &png).unwrap();
        println!("screenshot: {} ({} bytes)", to.display(), png.len());
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = std::panic::catch_unwind(|| {
            http(
                &self.addr,
                "DELETE",
                &format!("/session/{}", self.session),
                None,
            )
        });
    }
}

/// Chromium and chromedriver, when installed.
pub fn browser() -> Option<(PathBuf, PathBuf)> {
    let which = |names: &[&str]| {
        let path = std::env::var_os("PATH")?;
        std::env::split_paths(&path)
            .flat_map(|d| names.iter().map(move |n| d.join(n)))
            .find(|p| p.is_file())
    };
    Some((
        which(&["chromium", "chromium-browser", "google-chrome"])?,
        which(&["chromedriver"])?,
    ))
}

/// Text label boxes of every cycle diagram: (left, top, right, bottom).
pub fn cycle_label_boxes(d: &Driver) -> Vec<Vec<f64>> {
    let v = d.script(
        "return [].map.call(document.querySelectorAll('svg.cycle text'),function(t){\
         var r=t.getBoundingClientRect();return [r.left,r.top,r.right,r.bottom,\
         [].indexOf.call(document.querySelectorAll('svg.cycle'),t.ownerSVGElement)];});",
    );
    v.as_array()
        .expect("a list")
        .iter()
        .map(|b| {
            b.as_array()
                .expect("a box")
                .iter()
                .map(|x| x.as_f64().expect("a number"))
                .collect()
        })
        .collect()
}

/// No two text labels of one cycle diagram (`svg.cycle`) overlap (their
/// bounding boxes), and there are labels to compare.
pub fn assert_no_label_overlaps(d: &Driver, page: &str) {
    let boxes = cycle_label_boxes(d);
    assert!(boxes.len() >= 4, "{page}: too few labels: {boxes:?}");
    for (i, a) in boxes.iter().enumerate() {
        assert!(a[2] > a[0] && a[3] > a[1], "{page}: empty label box {a:?}");
        for b in &boxes[i + 1..] {
            if a[4] != b[4] {
                continue; // different diagrams
            }
            let overlap = a[0] < b[2] && b[0] < a[2] && a[1] < b[3] && b[1] < a[3];
            assert!(!overlap, "{page}: labels overlap: {a:?} and {b:?}");
        }
    }
}
