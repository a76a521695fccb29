//! Performance plots of a run: `latency-raw.png`, `latency-quantiles.png`,
//! `rate.png` (and the same as SVG strings for HTML).
//!
//! Time on the x axis is the history's `time` (nanoseconds since the test
//! started, drawn in seconds). Fault windows are shaded on every plot, so a
//! latency spike can be read against the partition that caused it.
//!
//! Text is drawn with DejaVu Sans compiled into the binary (plotters'
//! `ab_glyph` feature plus the `dejavu` crate), so plotting needs no system
//! fonts or fontconfig (DEPENDENCIES.md §2). Never enable plotters' `ttf`.
//!
//! Encoding, shared by all three plots: colour is the operation's `f`;
//! marker shape is its outcome (● ok, ✕ fail, ▲ info) or, in the quantile
//! plot, the quantile. The legend sits in its own column to the right so it
//! never hides data.

use crate::ops::{self, OpSpan};
use faultline_checker::{EventType, History, Outcome};
use plotters::coord::Shift;
use plotters::prelude::*;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::OnceLock;

/// Image size of every PNG (and SVG), in pixels.
pub const WIDTH: u32 = 1200;
pub const HEIGHT: u32 = 600;
/// Width of the legend column on the right.
const LEGEND_W: u32 = 210;

/// A span of time during which a fault was active.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FaultWindow {
    /// Nanoseconds since the test started.
    pub start_ns: u64,
    pub end_ns: u64,
    /// The fault's name, e.g. `partition`.
    pub label: String,
}

/// What can go wrong while plotting.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    #[error("the embedded DejaVu Sans font could not be registered")]
    Font,
    #[error("drawing {plot}: {message}")]
    Draw { plot: &'static str, message: String },
}

/// The three plots.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlotKind {
    LatencyRaw,
    LatencyQuantiles,
    Rate,
}

impl PlotKind {
    pub const ALL: [PlotKind; 3] = [
        PlotKind::LatencyRaw,
        PlotKind::LatencyQuantiles,
        PlotKind::Rate,
    ];

    /// The PNG's file name in a run directory.
    pub fn file_name(self) -> &'static str {
        match self {
            PlotKind::LatencyRaw => crate::store::LATENCY_RAW_PNG,
            PlotKind::LatencyQuantiles => crate::store::LATENCY_QUANTILES_PNG,
            PlotKind::Rate => crate::store::RATE_PNG,
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            PlotKind::LatencyRaw => "Latency of each operation",
            PlotKind::LatencyQuantiles => "Latency quantiles",
            PlotKind::Rate => "Throughput: completions per second",
        }
    }
}

/// Derives fault windows from the nemesis's `info` events: an `f` starting
/// with `start` opens a window, one starting with `stop` or `heal` closes the
/// window with the same suffix (`start-partition` … `stop-partition`). A
/// bare `stop`/`heal` closes every open window. A
/// window still open at the end runs to the last event's time. Events
/// without `time` are ignored.
pub fn fault_windows(history: &History) -> Vec<FaultWindow> {
    let last = history.events.iter().filter_map(|e| e.time).max();
    let mut open: BTreeMap<String, (u64, String)> = BTreeMap::new();
    let mut out = Vec::new();
    for ev in &history.events {
        let (true, EventType::Info, Some(t)) = (ev.process.is_nemesis(), ev.kind, ev.time) else {
            continue;
        };
        let f = ev.f.trim_start_matches(':');
        if let Some(rest) = f.strip_prefix("start") {
            let suffix = trim_sep(rest);
            let label = if !suffix.is_empty() {
                suffix.to_string()
            } else if let Some(s) = ev.value.as_str() {
                // Jepsen's plain `start` often names the fault in its value.
                s.to_string()
            } else if let Some(s) = ev.value.get("fault").and_then(|f| f.as_str()) {
                // faultline's runner: `{"fault":"partition",…}`, after a
                // `start` with a null value recorded before the call.
                s.to_string()
            } else {
                "fault".to_string()
            };
            // A second start of an open fault extends it; keep the first
            // time, but take a name when the first had none.
            open.entry(suffix.to_string())
                .and_modify(|(_, l)| {
                    if l == "fault" {
                        l.clone_from(&label);
                    }
                })
                .or_insert((t, label));
        } else if let Some(rest) = f.strip_prefix("stop").or_else(|| f.strip_prefix("heal")) {
            let suffix = trim_sep(rest);
            // A bare `stop`/`heal` ends every fault; otherwise only its own.
            let keys: Vec<String> = if suffix.is_empty() {
                open.keys().cloned().collect()
            } else {
                vec![suffix.to_string()]
            };
            for k in keys {
                if let Some((s, label)) = open.remove(&k) {
                    out.push(FaultWindow {
                        start_ns: s,
                        end_ns: t.max(s),
                        label,
                    });
                }
            }
        }
    }
    let end = last.unwrap_or(0);
    for (_, (s, label)) in open {
        out.push(FaultWindow {
            start_ns: s,
            end_ns: end.max(s),
            label,
        });
    }
    out.sort_by_key(|w| (w.start_ns, w.end_ns));
    out
}

fn trim_sep(s: &str) -> &str {
    s.trim_start_matches(['-', '_', ':', ' '])
}

/// One completed operation, ready to plot.
#[derive(Clone, Copy, Debug)]
struct Point {
    f: usize,
    outcome: Outcome,
    /// Invocation time, seconds.
    start_s: f64,
    /// Completion time, seconds.
    end_s: f64,
    latency_ms: f64,
}

/// Everything the plots need, extracted from a history once.
#[derive(Clone, Debug)]
pub struct PlotData {
    points: Vec<Point>,
    /// Distinct `f`s, sorted; `Point::f` indexes this.
    fs: Vec<String>,
    windows: Vec<FaultWindow>,
    /// End of the x axis, seconds.
    t_end_s: f64,
}

const NS_PER_S: f64 = 1e9;

impl PlotData {
    /// Operations whose invocation and completion both carry `time`; open
    /// operations (no completion) have no latency and are left out.
    pub fn new(history: &History, windows: Vec<FaultWindow>) -> PlotData {
        Self::from_spans(history, &ops::spans(history), windows)
    }

    pub(crate) fn from_spans(
        history: &History,
        spans: &[OpSpan],
        windows: Vec<FaultWindow>,
    ) -> PlotData {
        let ev = &history.events;
        let fs: Vec<String> = spans
            .iter()
            .map(|s| ev[s.invoke].f.as_str())
            .collect::<std::collections::BTreeSet<&str>>()
            .into_iter()
            .map(str::to_string)
            .collect();
        let mut points = Vec::with_capacity(spans.len());
        for s in spans {
            let Some(c) = s.complete else { continue };
            let (Some(t0), Some(t1)) = (ev[s.invoke].time, ev[c].time) else {
                continue;
            };
            let f = fs
                .binary_search_by(|x| x.as_str().cmp(ev[s.invoke].f.as_str()))
                .unwrap_or(0);
            points.push(Point {
                f,
                outcome: s.outcome,
                start_s: t0 as f64 / NS_PER_S,
                end_s: t1 as f64 / NS_PER_S,
                latency_ms: t1.saturating_sub(t0) as f64 / 1e6,
            });
        }
        let t_last = ev.iter().filter_map(|e| e.time).max().unwrap_or(0);
        let w_last = windows.iter().map(|w| w.end_ns).max().unwrap_or(0);
        let t_end_s = (t_last.max(w_last) as f64 / NS_PER_S).max(1e-3);
        PlotData {
            points,
            fs,
            windows,
            t_end_s,
        }
    }

    /// Number of operations with a latency.
    pub fn len(&self) -> usize {
        self.points.len()
    }

    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    pub fn windows(&self) -> &[FaultWindow] {
        &self.windows
    }
}

/// Registers DejaVu Sans as `sans-serif`, once per process.
fn ensure_font() -> Result<(), PlotError> {
    static FONT: OnceLock<bool> = OnceLock::new();
    let ok = *FONT.get_or_init(|| {
        plotters::style::register_font("sans-serif", FontStyle::Normal, dejavu::sans::regular())
            .is_ok()
    });
    if ok { Ok(()) } else { Err(PlotError::Font) }
}

/// Writes one plot as a PNG of [`WIDTH`]×[`HEIGHT`].
pub fn render_png(kind: PlotKind, data: &PlotData, path: &Path) -> Result<(), PlotError> {
    ensure_font()?;
    let root = BitMapBackend::new(path, (WIDTH, HEIGHT)).into_drawing_area();
    draw(kind, &root, data).map_err(|message| PlotError::Draw {
        plot: kind.file_name(),
        message,
    })
}

/// The same plot as an SVG document (text is `<text>`; the browser picks
/// the font).
pub fn render_svg(kind: PlotKind, data: &PlotData) -> Result<String, PlotError> {
    ensure_font()?;
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (WIDTH, HEIGHT)).into_drawing_area();
        draw(kind, &root, data).map_err(|message| PlotError::Draw {
            plot: kind.file_name(),
            message,
        })?;
    }
    Ok(out)
}

/// Writes all three PNGs into `dir`.
pub fn render_all_png(data: &PlotData, dir: &Path) -> Result<(), PlotError> {
    for kind in PlotKind::ALL {
        render_png(kind, data, &dir.join(kind.file_name()))?;
    }
    Ok(())
}

type DrawResult = Result<(), String>;
/// Points of one line series, in chart coordinates.
type Line = Vec<(f64, f64)>;

fn draw<DB: DrawingBackend>(
    kind: PlotKind,
    root: &DrawingArea<DB, Shift>,
    data: &PlotData,
) -> DrawResult {
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    root.fill(&WHITE).map_err(e)?;
    let (chart_area, legend_area) = root.split_horizontally(WIDTH - LEGEND_W);
    let mut legend = Vec::new();
    match kind {
        PlotKind::LatencyRaw => draw_latency_raw(&chart_area, data, &mut legend)?,
        PlotKind::LatencyQuantiles => draw_quantiles(&chart_area, data, &mut legend)?,
        PlotKind::Rate => draw_rate(&chart_area, data, &mut legend)?,
    }
    draw_legend(&legend_area, &legend).map_err(e)?;
    root.present().map_err(e)
}

// Tableau 10: distinguishable, and readable on white.
const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

const FAULT_COLOURS: [RGBColor; 5] = [
    RGBColor(255, 160, 0),
    RGBColor(150, 80, 220),
    RGBColor(0, 150, 220),
    RGBColor(220, 60, 60),
    RGBColor(80, 170, 80),
];

fn f_colour(f: usize) -> RGBColor {
    PALETTE[f % PALETTE.len()]
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Marker {
    Circle,
    Cross,
    Triangle,
    Square,
}

fn outcome_marker(o: Outcome) -> Marker {
    match o {
        Outcome::Ok => Marker::Circle,
        Outcome::Fail => Marker::Cross,
        Outcome::Info => Marker::Triangle,
    }
}

/// One row of the legend column.
enum Swatch {
    Marker(Marker, RGBColor, bool),
    Band(RGBColor),
    Heading,
}

struct LegendEntry {
    swatch: Swatch,
    text: String,
}

/// Draws `pts` as markers of one kind. (One match outside the loop keeps
/// each series a concrete element type: no boxing per point.)
fn draw_markers<DB, X, Y, I>(
    chart: &mut ChartContext<'_, DB, Cartesian2d<X, Y>>,
    m: Marker,
    pts: I,
    size: i32,
    c: RGBColor,
) -> DrawResult
where
    DB: DrawingBackend,
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
    I: Iterator<Item = (f64, f64)>,
{
    let r = match m {
        Marker::Circle => chart
            .draw_series(pts.map(|p| Circle::new(p, size, c.filled())))
            .map(|_| ()),
        Marker::Cross => chart
            .draw_series(pts.map(|p| Cross::new(p, size, c.stroke_width(2))))
            .map(|_| ()),
        Marker::Triangle => chart
            .draw_series(pts.map(|p| TriangleMarker::new(p, size + 1, c.filled())))
            .map(|_| ()),
        Marker::Square => chart
            .draw_series(pts.map(|p| {
                EmptyElement::at(p) + Rectangle::new([(-size, -size), (size, size)], c.filled())
            }))
            .map(|_| ()),
    };
    r.map_err(|e| e.to_string())
}

/// A marker at a pixel position of a plain drawing area (the legend).
fn draw_marker_px<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    m: Marker,
    at: (i32, i32),
    size: i32,
    c: RGBColor,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    match m {
        Marker::Circle => area.draw(&Circle::new(at, size, c.filled())),
        Marker::Cross => area.draw(&Cross::new(at, size, c.stroke_width(2))),
        Marker::Triangle => area.draw(&TriangleMarker::new(at, size + 1, c.filled())),
        Marker::Square => area.draw(&Rectangle::new(
            [(at.0 - size, at.1 - size), (at.0 + size, at.1 + size)],
            c.filled(),
        )),
    }
}

fn draw_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    entries: &[LegendEntry],
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let font = ("sans-serif", 14).into_font();
    let bold = ("sans-serif", 14).into_font().color(&RGBColor(60, 60, 60));
    let mut y = 70;
    for e in entries {
        if y > HEIGHT as i32 - 20 {
            area.draw(&Text::new("…", (12, y), font.clone()))?;
            break;
        }
        match e.swatch {
            Swatch::Heading => {
                y += 6;
                area.draw(&Text::new(e.text.clone(), (8, y - 8), bold.clone()))?;
                y += 14;
                continue;
            }
            Swatch::Marker(m, c, line) => {
                if line {
                    area.draw(&PathElement::new(vec![(8, y), (36, y)], c.stroke_width(2)))?;
                }
                draw_marker_px(area, m, (22, y), 4, c)?;
            }
            Swatch::Band(c) => {
                area.draw(&Rectangle::new(
                    [(10, y - 7), (34, y + 7)],
                    c.mix(0.25).filled(),
                ))?;
            }
        }
        area.draw(&Text::new(e.text.clone(), (42, y - 8), font.clone()))?;
        y += 20;
    }
    Ok(())
}

/// Draws the shaded fault bands with their names, and adds them to the
/// legend. `y_lo`/`y_hi` are the chart's y range.
fn draw_faults<DB, X, Y>(
    chart: &mut ChartContext<'_, DB, Cartesian2d<X, Y>>,
    windows: &[FaultWindow],
    y_lo: f64,
    y_hi: f64,
    legend: &mut Vec<LegendEntry>,
) -> DrawResult
where
    DB: DrawingBackend,
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    let mut labels: Vec<&str> = windows.iter().map(|w| w.label.as_str()).collect();
    labels.sort_unstable();
    labels.dedup();
    if !labels.is_empty() {
        legend.push(LegendEntry {
            swatch: Swatch::Heading,
            text: "faults".into(),
        });
    }
    let font = ("sans-serif", 13).into_font().color(&RGBColor(90, 60, 0));
    for (i, label) in labels.iter().enumerate() {
        let c = FAULT_COLOURS[i % FAULT_COLOURS.len()];
        let bands = windows.iter().filter(|w| w.label == *label);
        let x = |ns: u64| ns as f64 / NS_PER_S;
        chart
            .draw_series(bands.clone().map(|w| {
                Rectangle::new(
                    [(x(w.start_ns), y_lo), (x(w.end_ns), y_hi)],
                    c.mix(0.18).filled(),
                )
            }))
            .map_err(|e| e.to_string())?;
        chart
            .draw_series(
                bands.map(|w| {
                    Text::new(format!(" {}", w.label), (x(w.start_ns), y_hi), font.clone())
                }),
            )
            .map_err(|e| e.to_string())?;
        legend.push(LegendEntry {
            swatch: Swatch::Band(c),
            text: label.to_string(),
        });
    }
    Ok(())
}

fn caption(kind: PlotKind, data: &PlotData) -> String {
    format!("{} ({} operations)", kind.title(), data.points.len())
}

/// Log-axis bounds covering `values` (ms), with a little room.
fn log_bounds(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (mut lo, mut hi) = (f64::INFINITY, 0f64);
    for v in values {
        let v = v.max(1e-3);
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if !lo.is_finite() {
        return (0.1, 10.0);
    }
    let lo = 10f64.powf(lo.log10().floor());
    let hi = 10f64.powf((hi * 1.5).log10().ceil()).max(lo * 10.0);
    (lo, hi)
}

fn ms_label(v: &f64) -> String {
    if *v >= 1.0 {
        format!("{v:.0}")
    } else {
        // 0.1, 0.01, … without float noise
        let s = format!("{v:.6}");
        s.trim_end_matches('0').to_string()
    }
}

fn secs_label(v: &f64) -> String {
    if v.fract().abs() < 1e-9 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}").trim_end_matches('0').to_string()
    }
}

fn no_data_note<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, data: &PlotData) -> DrawResult {
    if data.points.is_empty() {
        area.draw(&Text::new(
            "no completed operations with times in this history",
            (140, HEIGHT as i32 / 2),
            ("sans-serif", 18).into_font(),
        ))
        .map_err(|e| e.to_string())?;
    }
    Ok(())
}

fn draw_latency_raw<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    data: &PlotData,
    legend: &mut Vec<LegendEntry>,
) -> DrawResult {
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    let (y_lo, y_hi) = log_bounds(data.points.iter().map(|p| p.latency_ms));
    let mut chart = ChartBuilder::on(area)
        .caption(caption(PlotKind::LatencyRaw, data), ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..data.t_end_s, (y_lo..y_hi).log_scale())
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("time since test start (s)")
        .y_desc("latency (ms, log scale)")
        .x_label_formatter(&secs_label)
        .y_label_formatter(&ms_label)
        .label_style(("sans-serif", 14))
        .axis_desc_style(("sans-serif", 15))
        .light_line_style(RGBColor(238, 238, 238))
        .draw()
        .map_err(err)?;
    draw_faults(&mut chart, &data.windows, y_lo, y_hi, legend)?;
    legend.push(LegendEntry {
        swatch: Swatch::Heading,
        text: "operation  outcome".into(),
    });
    // ok first, then fail and info on top: the rarer outcomes stay visible.
    for outcome in [Outcome::Ok, Outcome::Fail, Outcome::Info] {
        for (fi, f) in data.fs.iter().enumerate() {
            let pts = data
                .points
                .iter()
                .filter(|p| p.f == fi && p.outcome == outcome);
            let mut any = false;
            let c = f_colour(fi);
            let m = outcome_marker(outcome);
            let xy = pts.map(|p| {
                any = true;
                (p.start_s, p.latency_ms.max(y_lo))
            });
            draw_markers(&mut chart, m, xy, 2, c)?;
            if any {
                legend.push(LegendEntry {
                    swatch: Swatch::Marker(m, c, false),
                    text: format!("{f} {}", ops::outcome_str(outcome)),
                });
            }
        }
    }
    no_data_note(area, data)
}

/// A round bucket width (1, 2 or 5 × 10^k seconds) giving about `n` buckets.
fn bucket_width(t_end_s: f64, n: f64) -> f64 {
    let raw = (t_end_s / n).max(1e-6);
    let p = 10f64.powf(raw.log10().floor());
    let m = raw / p;
    let nice = if m <= 1.0 {
        1.0
    } else if m <= 2.0 {
        2.0
    } else if m <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * p
}

const QUANTILES: [(f64, &str, Marker); 4] = [
    (0.5, "p50", Marker::Circle),
    (0.95, "p95", Marker::Triangle),
    (0.99, "p99", Marker::Square),
    (1.0, "max", Marker::Cross),
];

fn draw_quantiles<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    data: &PlotData,
    legend: &mut Vec<LegendEntry>,
) -> DrawResult {
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    let w = bucket_width(data.t_end_s, 40.0);
    // f -> bucket -> latencies of every completed operation invoked in it
    let mut by_f: Vec<BTreeMap<u64, Vec<f64>>> = vec![BTreeMap::new(); data.fs.len()];
    for p in &data.points {
        let b = (p.start_s / w).floor().max(0.0) as u64;
        by_f[p.f].entry(b).or_default().push(p.latency_ms);
    }
    // series: (f, quantile index) -> points at bucket midpoints
    let mut series: Vec<(usize, usize, Line)> = Vec::new();
    for (fi, buckets) in by_f.iter_mut().enumerate() {
        let mut per_q = vec![Vec::new(); QUANTILES.len()];
        for (b, lat) in buckets.iter_mut() {
            lat.sort_unstable_by(f64::total_cmp);
            let x = (*b as f64 + 0.5) * w;
            for (qi, (q, _, _)) in QUANTILES.iter().enumerate() {
                let idx = ((lat.len() - 1) as f64 * q).round() as usize;
                per_q[qi].push((x, lat[idx.min(lat.len() - 1)]));
            }
        }
        for (qi, pts) in per_q.into_iter().enumerate() {
            if !pts.is_empty() {
                series.push((fi, qi, pts));
            }
        }
    }
    let (y_lo, y_hi) = log_bounds(series.iter().flat_map(|s| s.2.iter().map(|p| p.1)));
    let mut chart = ChartBuilder::on(area)
        .caption(
            format!(
                "{} per {} s bucket ({} operations)",
                PlotKind::LatencyQuantiles.title(),
                secs_label(&w),
                data.points.len()
            ),
            ("sans-serif", 22),
        )
        .margin(12)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..data.t_end_s, (y_lo..y_hi).log_scale())
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("time since test start (s)")
        .y_desc("latency (ms, log scale)")
        .x_label_formatter(&secs_label)
        .y_label_formatter(&ms_label)
        .label_style(("sans-serif", 14))
        .axis_desc_style(("sans-serif", 15))
        .light_line_style(RGBColor(238, 238, 238))
        .draw()
        .map_err(err)?;
    draw_faults(&mut chart, &data.windows, y_lo, y_hi, legend)?;
    legend.push(LegendEntry {
        swatch: Swatch::Heading,
        text: "operation  quantile".into(),
    });
    for (fi, qi, pts) in &series {
        let c = f_colour(*fi);
        let (_, qname, m) = QUANTILES[*qi];
        let width = if *qi == 0 { 2 } else { 1 };
        chart
            .draw_series(LineSeries::new(pts.iter().copied(), c.stroke_width(width)))
            .map_err(err)?;
        draw_markers(&mut chart, m, pts.iter().copied(), 3, c)?;
        legend.push(LegendEntry {
            swatch: Swatch::Marker(m, c, true),
            text: format!("{} {qname}", data.fs[*fi]),
        });
    }
    no_data_note(area, data)
}

fn draw_rate<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    data: &PlotData,
    legend: &mut Vec<LegendEntry>,
) -> DrawResult {
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    let w = bucket_width(data.t_end_s, 50.0);
    let nb = (data.t_end_s / w).ceil().max(1.0) as usize;
    // (f, outcome) -> completions per bucket, by completion time
    let mut counts: BTreeMap<(usize, u8), Vec<u32>> = BTreeMap::new();
    let code = |o: Outcome| match o {
        Outcome::Ok => 0u8,
        Outcome::Fail => 1,
        Outcome::Info => 2,
    };
    for p in &data.points {
        let b = ((p.end_s / w).floor().max(0.0) as usize).min(nb - 1);
        counts
            .entry((p.f, code(p.outcome)))
            .or_insert_with(|| vec![0; nb])[b] += 1;
    }
    let y_hi = counts
        .values()
        .flat_map(|v| v.iter())
        .map(|&c| f64::from(c) / w)
        .fold(0f64, f64::max)
        .max(1.0)
        * 1.1;
    let mut chart = ChartBuilder::on(area)
        .caption(
            format!(
                "{} ({} s buckets, {} operations)",
                PlotKind::Rate.title(),
                secs_label(&w),
                data.points.len()
            ),
            ("sans-serif", 22),
        )
        .margin(12)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..data.t_end_s, 0f64..y_hi)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("time since test start (s)")
        .y_desc("completions per second")
        .x_label_formatter(&secs_label)
        .y_label_formatter(&|v| format!("{v:.0}"))
        .label_style(("sans-serif", 14))
        .axis_desc_style(("sans-serif", 15))
        .light_line_style(RGBColor(238, 238, 238))
        .draw()
        .map_err(err)?;
    draw_faults(&mut chart, &data.windows, 0.0, y_hi, legend)?;
    legend.push(LegendEntry {
        swatch: Swatch::Heading,
        text: "operation  outcome".into(),
    });
    let outcomes = [Outcome::Ok, Outcome::Fail, Outcome::Info];
    for ((fi, oc), per_bucket) in &counts {
        let outcome = outcomes[*oc as usize];
        let c = f_colour(*fi);
        let m = outcome_marker(outcome);
        let pts: Vec<(f64, f64)> = per_bucket
            .iter()
            .enumerate()
            .map(|(b, &n)| ((b as f64 + 0.5) * w, f64::from(n) / w))
            .collect();
        let width = if outcome == Outcome::Ok { 2 } else { 1 };
        chart
            .draw_series(LineSeries::new(pts.iter().copied(), c.stroke_width(width)))
            .map_err(err)?;
        draw_markers(&mut chart, m, pts.iter().copied(), 3, c)?;
        legend.push(LegendEntry {
            swatch: Swatch::Marker(m, c, true),
            text: format!("{} {}", data.fs[*fi], ops::outcome_str(outcome)),
        });
    }
    no_data_note(area, data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use faultline_checker::{Event, Process};
    use serde_json::{Value, json};

    fn nem(f: &str, t: u64) -> Event {
        Event {
            index: Default::default(),
            time: Some(t),
            process: Process::Nemesis,
            kind: EventType::Info,
            f: f.into(),
            key: None,
            value: Value::Null,
            node: None,
            error: None,
            line: 0,
        }
    }

    #[test]
    fn windows_pair_by_suffix_and_stay_open_to_the_end() {
        let mut invoke = nem("start-partition", 5);
        invoke.kind = EventType::Invoke; // only info events count
        let mut plain = nem("start", 40);
        plain.value = json!("pause");
        let h = History {
            events: vec![
                invoke,
                nem("start-partition", 10),
                nem("start-kill", 12),
                nem("stop-partition", 20),
                nem("heal-kill", 30),
                plain,
                nem("start-clock", 45),
                nem("stop", 50),
                nem("start-loss", 60),
                Event {
                    process: Process::Client(0),
                    kind: EventType::Ok,
                    ..nem("read", 99)
                },
            ],
        };
        let w = fault_windows(&h);
        let got: Vec<(u64, u64, &str)> = w
            .iter()
            .map(|w| (w.start_ns, w.end_ns, w.label.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                (10, 20, "partition"),
                (12, 30, "kill"),
                (40, 50, "pause"),
                (45, 50, "clock"),
                (60, 99, "loss"),
            ]
        );
    }

    #[test]
    fn runner_windows_take_the_name_from_the_value() {
        // The runner records `start` (null) before the call and `start`
        // with what was done after it.
        let mut done = nem("start", 12);
        done.value = json!({"fault": "kill", "node": "n2"});
        let h = History {
            events: vec![nem("start", 10), done, nem("heal", 20), nem("heal", 21)],
        };
        let w = fault_windows(&h);
        assert_eq!(w.len(), 1);
        assert_eq!(
            (w[0].start_ns, w[0].end_ns, w[0].label.as_str()),
            (10, 20, "kill")
        );
    }

    #[test]
    fn buckets_are_round() {
        assert_eq!(bucket_width(60.0, 50.0), 2.0);
        assert_eq!(bucket_width(10.0, 40.0), 0.5);
        assert!((bucket_width(0.03, 50.0) - 0.001).abs() < 1e-12);
    }
}
