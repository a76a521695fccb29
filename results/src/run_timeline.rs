//! `timeline.html` for a whole run: every client operation as a bar in its
//! process's lane, over real time, with fault windows shaded and the
//! nemesis's events on a lane of their own.
//!
//! Colours: green `ok`, red `fail`, orange `info` (drawn up to the `info`
//! event; its effect may still come later), grey for operations still open
//! at the end.
//!
//! Every operation is in the page, however many: the data is inline as
//! columnar arrays (delta-encoded numbers, dictionary-encoded names, not one
//! object per operation) and drawn on a canvas, only what is in view, with
//! bars thinner than a few pixels merged per pixel column, so a
//! million-operation history stays responsive. Wheel zooms in time around
//! the pointer, dragging pans, a click shows an operation's details (lines
//! in history.jsonl included). `#lines=12,40` highlights the operations at
//! those lines of history.jsonl and zooms to them: the report's anomalies
//! link here that way. One self-contained file (inline script and CSS, no
//! network). When the history has no times, the x axis is the event order
//! instead, and the page says so.

use crate::ops::{self, OpSpan};
use crate::plots::FaultWindow;
use crate::report::secs;
use crate::timeline::escape;
use faultline_checker::{History, Outcome, Process};
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;

/// Longest value text kept per operation, in characters (details show it;
/// the full value is in history.jsonl at the given line).
const MAX_VALUE: usize = 60;

/// Characters that code a dictionary index in one byte (no JSON escaping).
const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Index of `s` in a dictionary, adding it when new.
fn intern(dict: &mut Vec<String>, index: &mut HashMap<String, u32>, s: &str) -> u32 {
    if let Some(&i) = index.get(s) {
        return i;
    }
    let i = dict.len() as u32;
    dict.push(s.to_string());
    index.insert(s.to_string(), i);
    i
}

/// A JSON string literal that is safe inside `<script>` (no `</script>`).
fn js_str(s: &str) -> String {
    serde_json::to_string(s)
        .unwrap_or_else(|_| "\"\"".into())
        .replace('<', "\\u003c")
}

fn push_list<T: std::fmt::Display>(h: &mut String, name: &str, xs: impl Iterator<Item = T>) {
    let _ = write!(h, "\"{name}\":[");
    for (i, x) in xs.enumerate() {
        if i > 0 {
            h.push(',');
        }
        let _ = write!(h, "{x}");
    }
    h.push_str("],");
}

fn push_strs<'a>(h: &mut String, name: &str, xs: impl Iterator<Item = &'a String>) {
    let _ = write!(h, "\"{name}\":[");
    for (i, x) in xs.enumerate() {
        if i > 0 {
            h.push(',');
        }
        h.push_str(&js_str(x));
    }
    h.push_str("],");
}

/// Renders the run's timeline page.
pub fn render_run_timeline(title: &str, history: &History, windows: &[FaultWindow]) -> String {
    let ev = &history.events;
    let spans: Vec<OpSpan> = ops::spans(history);
    let n = spans.len();
    // Real time when every event has it; event order otherwise (mixing the
    // two would misplace bars). Times are drawn in microseconds.
    let timed = !ev.is_empty() && ev.iter().all(|e| e.time.is_some());
    let at = |pos: usize| -> u64 {
        if timed {
            ev[pos].time.unwrap_or(0) / 1000
        } else {
            pos as u64
        }
    };
    let end = if timed {
        let last = ev.iter().filter_map(|e| e.time).max().unwrap_or(0);
        last.max(windows.iter().map(|w| w.end_ns).max().unwrap_or(0)) / 1000
    } else {
        ev.len() as u64
    }
    .max(1);

    // Lanes: processes in numeric order, each named with the node its
    // operations went to most.
    let mut procs: Vec<&Process> = spans.iter().map(|s| &ev[s.invoke].process).collect();
    procs.sort();
    procs.dedup();
    let lane_of: BTreeMap<&Process, usize> =
        procs.iter().enumerate().map(|(i, p)| (*p, i)).collect();
    let mut node_count: Vec<BTreeMap<&str, usize>> = vec![BTreeMap::new(); procs.len()];

    let mut fs: Vec<String> = Vec::new();
    let mut f_index = HashMap::new();
    let mut keys: Vec<String> = Vec::new();
    let mut key_index = HashMap::new();
    let has_keys = spans.iter().any(|s| ev[s.invoke].key.is_some());
    let mut errors: Vec<(usize, String)> = Vec::new();

    let cap = 64 + n * 40;
    let mut h = String::with_capacity(cap + 16 * 1024);
    let _ = write!(
        h,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>{}</title>\n<style>{CSS}</style></head><body>\n<header><h1>{}</h1>\n",
        escape(title),
        escape(title)
    );
    let _ = writeln!(
        h,
        "<p id=\"about\">{n} client operations, all drawn, in {} lanes{}. <a href=\"report.html\">back to the report</a></p>",
        procs.len(),
        if timed {
            format!(", {} of real time", secs(end * 1000))
        } else {
            String::new()
        }
    );
    if !timed {
        h.push_str(
            "<p class=\"warn\">This history has no <code>time</code> on every event: \
             the x axis is the event order, not real time.</p>\n",
        );
    }
    h.push_str(LEGEND);
    h.push_str(
        "</header><div id=\"wrap\"><canvas id=\"tl\" aria-label=\"operations per process over time\"></canvas>\
         <div id=\"detail\" hidden></div></div>\n",
    );

    // Data, columnar: s = invocation time as deltas from the previous
    // operation's (operations are in invocation order), d = duration (-1:
    // open at the end), l = line as deltas, r = completion line minus
    // invocation line (-1: none), p = lane, o = outcome, f / k = names.
    let mut data = String::with_capacity(cap);
    data.push('{');
    let _ = write!(data, "\"n\":{n},\"end\":{end},\"timed\":{timed},");
    let mut prev_s = 0u64;
    let mut prev_l = 0i64;
    let mut cols: [String; 8] = Default::default();
    for (i, s) in spans.iter().enumerate() {
        let inv = &ev[s.invoke];
        let t0 = at(s.invoke);
        let sep = if i > 0 { "," } else { "" };
        // Delta from the previous start; starts are non-decreasing in a
        // timed history, but clamp anyway (a reordered file).
        let _ = write!(cols[0], "{sep}{}", t0 as i64 - prev_s as i64);
        prev_s = t0;
        match s.complete {
            Some(c) => {
                let _ = write!(cols[1], "{sep}{}", at(c).saturating_sub(t0));
                let _ = write!(cols[3], "{sep}{}", ev[c].line as i64 - inv.line as i64);
            }
            None => {
                let _ = write!(cols[1], "{sep}-1");
                let _ = write!(cols[3], "{sep}-1");
            }
        }
        let _ = write!(cols[2], "{sep}{}", inv.line as i64 - prev_l);
        prev_l = inv.line as i64;
        let lane = lane_of.get(&inv.process).copied().unwrap_or(0);
        let _ = write!(cols[4], "{sep}{lane}");
        if let Some(node) = &inv.node {
            *node_count[lane].entry(node.as_str()).or_default() += 1;
        }
        let o = match (s.outcome, s.complete) {
            (Outcome::Ok, _) => 0,
            (Outcome::Fail, _) => 1,
            (Outcome::Info, Some(_)) => 2,
            (Outcome::Info, None) => 3,
        };
        // One character per op for the small dictionaries (outcome, f):
        // a third of the bytes of a JSON array of numbers.
        cols[5].push(char::from(b'0' + o));
        let fi = intern(&mut fs, &mut f_index, &inv.f);
        match B64.get(fi as usize) {
            Some(&c) if fs.len() <= B64.len() => cols[6].push(char::from(c)),
            _ => {
                let _ = write!(cols[6], "{sep}{fi}");
            }
        }
        if has_keys {
            let k = inv.key.as_deref().map(short_value).unwrap_or_default();
            let ki = intern(&mut keys, &mut key_index, &k);
            let _ = write!(cols[7], "{sep}{ki}");
        }
        let done = s.complete.map(|c| &ev[c]);
        if let Some(err) = done.and_then(|d| d.error.as_ref()) {
            errors.push((i, short_value(err)));
        }
    }
    let f_packed = fs.len() <= B64.len();
    for (name, col) in ["s", "d", "l", "r", "p", "o", "f", "k"].iter().zip(&cols) {
        if *name == "k" && !has_keys {
            continue;
        }
        if *name == "o" || (*name == "f" && f_packed) {
            let _ = write!(data, "\"{name}\":\"{col}\",");
        } else {
            let _ = write!(data, "\"{name}\":[{col}],");
        }
    }
    // Values: invocation value, and `→ result` for ok completions that say
    // something new.
    data.push_str("\"v\":[");
    for (i, s) in spans.iter().enumerate() {
        if i > 0 {
            data.push(',');
        }
        let inv = &ev[s.invoke];
        let mut v = if inv.value.is_null() {
            String::new()
        } else {
            short_value(&inv.value)
        };
        if let (Outcome::Ok, Some(c)) = (s.outcome, s.complete) {
            let out = &ev[c].value;
            if !out.is_null() && *out != inv.value {
                if !v.is_empty() {
                    v.push(' ');
                }
                let _ = write!(v, "→ {}", short_value(out));
            }
        }
        data.push_str(&js_str(&v));
    }
    data.push_str("],");
    push_strs(&mut data, "fs", fs.iter());
    if has_keys {
        push_strs(&mut data, "ks", keys.iter());
    }
    // Lanes: the process, and the node its operations went to most (an
    // index into `nodes`; -1: none).
    let mut nodes: Vec<String> = Vec::new();
    let mut node_index = HashMap::new();
    let lane_node: Vec<i64> = node_count
        .iter()
        .map(|c| match c.iter().max_by_key(|(_, n)| **n) {
            Some((name, _)) => i64::from(intern(&mut nodes, &mut node_index, name)),
            None => -1,
        })
        .collect();
    let lane_proc: Vec<String> = procs.iter().map(|p| p.to_string()).collect();
    push_strs(&mut data, "lp", lane_proc.iter());
    push_list(&mut data, "ln", lane_node.iter());
    push_strs(&mut data, "nodes", nodes.iter());
    push_list(&mut data, "ei", errors.iter().map(|(i, _)| *i));
    push_strs(&mut data, "et", errors.iter().map(|(_, e)| e));
    // Fault windows and nemesis events (few).
    push_list(&mut data, "ws", windows.iter().map(|w| w.start_ns / 1000));
    push_list(&mut data, "we", windows.iter().map(|w| w.end_ns / 1000));
    let wl: Vec<String> = windows.iter().map(|w| w.label.clone()).collect();
    push_strs(&mut data, "wl", wl.iter());
    let nem: Vec<(usize, &faultline_checker::Event)> = ev
        .iter()
        .enumerate()
        .filter(|(_, e)| e.process.is_nemesis())
        .collect();
    push_list(&mut data, "nt", nem.iter().map(|(pos, _)| at(*pos)));
    let nd: Vec<String> = nem
        .iter()
        .map(|(_, e)| {
            let mut d = format!("{} {}", e.kind, e.f);
            if let Some(node) = &e.node {
                let _ = write!(d, " on {node}");
            }
            if !e.value.is_null() {
                let _ = write!(d, ": {}", short_value(&e.value));
            }
            let _ = write!(d, " (line {})", e.line);
            d
        })
        .collect();
    push_strs(&mut data, "nd", nd.iter());
    if data.ends_with(',') {
        data.pop();
    }
    data.push('}');

    h.push_str("<script type=\"application/json\" id=\"data\">");
    h.push_str(&data);
    h.push_str("</script>\n<script>");
    h.push_str(JS);
    h.push_str("</script>\n</body></html>\n");
    h
}

/// A value as compact text, cut to [`MAX_VALUE`] characters.
fn short_value(v: &serde_json::Value) -> String {
    let s = match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if s.chars().count() <= MAX_VALUE {
        s
    } else {
        s.chars().take(MAX_VALUE).chain(['…']).collect()
    }
}

const LEGEND: &str = "<p class=\"legend\"><span class=\"k ok\"></span>ok: it happened \
<span class=\"k fail\"></span>fail: it did not \
<span class=\"k info\"></span>info: unknown, may take effect later or never \
<span class=\"k open\"></span>open at the end \
<span class=\"k fault\"></span>fault active \
<span class=\"k hl\"></span>named by an anomaly. \
<span class=\"hint\">Wheel: zoom · drag: pan · shift+wheel: scroll lanes · click: details</span> \
<button id=\"zin\">+</button><button id=\"zout\">−</button><button id=\"fit\">whole run</button></p>\n";

const CSS: &str = "body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#222}\
header{padding:.4em 1em 0}h1{font-size:1.2em;margin:.2em 0}header p{margin:.2em 0}\
#wrap{position:relative;margin:0 1em}canvas{display:block;border:1px solid #ddd;background:#fcfcfc;cursor:grab;width:100%}\
#detail{position:absolute;right:8px;top:8px;max-width:460px;background:#fff;border:1px solid #888;\
border-radius:6px;padding:.4em .7em;font:12px/1.45 monospace;white-space:pre-wrap;box-shadow:0 2px 8px #0003}\
.warn{background:#fff1d0;border:1px solid #d9a020;padding:.3em .6em;display:inline-block}\
.legend .k{display:inline-block;width:1.6em;height:.9em;border:1px solid #555;margin:0 4px 0 12px;vertical-align:middle}\
.k.ok{background:#9fd898}.k.fail{background:#f29b9b}.k.info{background:#ffc870}\
.k.open{background:#e8e8e8;border-style:dashed}.k.fault{background:#e6dcf4}.k.hl{border:2px solid #000}\
.hint{color:#666;margin-left:1em}button{margin-left:.3em}";

/// The viewer: decodes the columns once, then draws only what is in view.
const JS: &str = r##"(function(){
"use strict";
var T0=performance.now();
var D=JSON.parse(document.getElementById("data").textContent);
var T1=performance.now();
var n=D.n,END=D.end,S=new Float64Array(n),E=new Float64Array(n),L=new Int32Array(n),R=new Int32Array(n);
var P=Int32Array.from(D.p),O=new Uint8Array(n),F=new Int32Array(n);
var B64="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",FI=new Int32Array(128);
for(i=0;i<64;i++)FI[B64.charCodeAt(i)]=i;
for(i=0;i<n;i++)O[i]=D.o.charCodeAt(i)-48;
if(typeof D.f==="string"){for(i=0;i<n;i++)F[i]=FI[D.f.charCodeAt(i)];}else F.set(D.f);
function laneName(l){var nd=D.ln[l];return "process "+D.lp[l]+(nd>=0?" → "+D.nodes[nd]:"");}
var acc=0,la=0,i;
for(i=0;i<n;i++){acc+=D.s[i];S[i]=acc;E[i]=D.d[i]<0?-1:acc+D.d[i];la+=D.l[i];L[i]=la;R[i]=D.r[i]<0?-1:la+D.r[i];}
var T2=performance.now();
var nl=D.lp.length,hasNem=D.nt.length>0,NL=nl+(hasNem?1:0);
// Per lane, its ops in start order: a click finds its op by binary search.
// Built on the first click, not before the first view.
var byLane=null;
function laneIndex(){if(byLane)return byLane;byLane=[];var counts=new Int32Array(nl),j;for(j=0;j<n;j++)counts[P[j]]++;
for(j=0;j<nl;j++)byLane.push(new Int32Array(counts[j]));counts.fill(0);
for(j=0;j<n;j++){byLane[P[j]][counts[P[j]]++]=j;}return byLane;}
var T3=performance.now();
var err={};for(i=0;i<D.ei.length;i++)err[D.ei[i]]=D.et[i];
var COL=["#9fd898","#f29b9b","#ffc870","#e8e8e8"],EDGE=["#3a8a30","#b02020","#b07000","#888"];
var PRI=[1,4,3,2],MERGED=["#7cc872","#e07070","#f0b050","#c8c8c8"];
var cv=document.getElementById("tl"),ctx=cv.getContext("2d"),det=document.getElementById("detail");
var LEFT=170,TOP=26,LH=16,BAR=11;
var t0=0,t1=END,y0=0,W=0,H=0,plotW=0,hl=new Set(),hlOps=[],sel=-1;
function fmt(t){return D.timed?(t/1e6).toFixed(t1-t0<2e6?4:(t1-t0<2e8?3:1))+" s":String(Math.round(t));}
function dur(us){return us<1e3?us.toFixed(0)+" µs":us<1e6?(us/1e3).toPrecision(3)+" ms":(us/1e6).toPrecision(3)+" s";}
function size(){var r=window.devicePixelRatio||1;W=cv.clientWidth;var avail=window.innerHeight-cv.getBoundingClientRect().top-12;
H=Math.max(160,Math.min(TOP+NL*LH+8,avail));cv.style.height=H+"px";cv.width=Math.round(W*r);cv.height=Math.round(H*r);
ctx.setTransform(r,0,0,r,0,0);plotW=Math.max(50,W-LEFT-10);}
function X(t){return LEFT+(t-t0)/(t1-t0)*plotW;}
function laneY(l){return TOP+l*LH-y0;}
function nice(raw){var p=Math.pow(10,Math.floor(Math.log10(raw))),m=raw/p;return (m<=1?1:m<=2?2:m<=5?5:10)*p;}
var cols=null;
var lastDrawMs=0;
function draw(){var d0=performance.now();draw1();lastDrawMs=performance.now()-d0;}
function draw1(){
ctx.clearRect(0,0,W,H);ctx.font="10px monospace";ctx.textBaseline="middle";
var span=t1-t0,step=nice(span/(plotW/110)),t,x;
ctx.fillStyle="#555";ctx.strokeStyle="#e6e6e6";
for(t=Math.ceil(t0/step)*step;t<=t1;t+=step){x=X(t);ctx.beginPath();ctx.moveTo(x+.5,TOP-6);ctx.lineTo(x+.5,H);ctx.stroke();ctx.fillText(fmt(t),x+2,TOP-14);}
ctx.fillText(D.timed?"time →":"event →",4,TOP-14);
// fault bands
for(i=0;i<D.ws.length;i++){var a=X(D.ws[i]),b=X(D.we[i]);if(b<LEFT||a>W)continue;a=Math.max(a,LEFT);b=Math.min(b,W);
ctx.fillStyle="rgba(154,112,208,.15)";ctx.fillRect(a,TOP-4,Math.max(1,b-a),H-TOP);ctx.fillStyle="#5a3090";ctx.fillText(D.wl[i],a+3,TOP+4);}
var off=hasNem?1:0,first=Math.max(0,Math.floor(y0/LH)-off),last=Math.min(nl-1,Math.ceil((y0+H-TOP)/LH));
// lanes
ctx.save();ctx.beginPath();ctx.rect(0,TOP-2,W,H-TOP+2);ctx.clip();
if(hasNem){var ny=laneY(0);ctx.fillStyle="#333";ctx.fillText("nemesis",6,ny+LH/2);ctx.fillStyle="#7a40c0";
for(i=0;i<D.nt.length;i++){x=X(D.nt[i]);if(x>=LEFT&&x<=W)ctx.fillRect(x-1.5,ny+2,3,BAR);}}
for(var l=first;l<=last;l++){var y=laneY(l+off);ctx.fillStyle="#333";ctx.fillText(laneName(l),6,y+LH/2);
ctx.fillStyle="#f0f0f0";ctx.fillRect(LEFT,y+LH-1,plotW,1);}
// ops: wide bars drawn, thin ones merged per pixel column and lane
var pw=Math.ceil(plotW)+1,need=(last-first+1)*pw;if(!cols||cols.length<need)cols=new Uint8Array(Math.max(need,1));else cols.fill(0,0,need);
var sc=plotW/span,a0,b0,e,lane,c;
for(i=0;i<n;i++){lane=P[i];if(lane<first||lane>last)continue;e=E[i]<0?END:E[i];if(e<t0||S[i]>t1)continue;
a0=(S[i]-t0)*sc;b0=(e-t0)*sc;c=O[i];
if(b0-a0<3){var px=Math.max(0,Math.min(pw-1,Math.floor(a0))),k=(lane-first)*pw+px;if(PRI[c]>(cols[k]&7))cols[k]=PRI[c];}
else{a0=Math.max(a0,-2);b0=Math.min(b0,plotW+2);var yy=laneY(lane+off)+2;ctx.fillStyle=COL[c];ctx.fillRect(LEFT+a0,yy,b0-a0,BAR);
ctx.strokeStyle=EDGE[c];ctx.lineWidth=.6;ctx.strokeRect(LEFT+a0+.3,yy+.3,b0-a0-.6,BAR-.6);
if(b0-a0>44){var lab=D.fs[F[i]]+" "+D.v[i],fit=Math.floor((b0-a0-6)/6.1);if(lab.length>fit)lab=lab.slice(0,Math.max(0,fit-1))+"…";ctx.fillStyle="#111";ctx.fillText(lab,LEFT+Math.max(a0,0)+3,yy+BAR/2+.5);}}}
var BYP=[0,0,3,2,1];
for(l=first;l<=last;l++){var base=(l-first)*pw,yl=laneY(l+off)+2,run=0,rc=0;
for(var p=0;p<=pw;p++){var v=p<pw?cols[base+p]:0;if(v!==rc){if(rc)drawRun(p-run,run,rc,yl);rc=v;run=0;}run++;}}
function drawRun(px,len,pri,yl){ctx.fillStyle=MERGED[BYP[pri]];ctx.fillRect(LEFT+px,yl,Math.max(1,len),BAR);}
// highlighted and selected ops on top, at least 5 px wide so they show
ctx.lineWidth=2;
for(var j=0;j<hlOps.length+1;j++){i=j<hlOps.length?hlOps[j]:sel;if(i<0)continue;lane=P[i];if(lane<first||lane>last)continue;e=E[i]<0?END:E[i];
a0=X(S[i]);b0=Math.max(X(e),a0+5);if(b0<LEFT||a0>W)continue;var yh=laneY(lane+off)+1;
ctx.strokeStyle=i===sel?"#0050d0":"#000";ctx.strokeRect(Math.max(a0,LEFT-3),yh,b0-Math.max(a0,LEFT-3),BAR+2);}
ctx.restore();
ctx.fillStyle="#fff";ctx.fillRect(0,0,W,TOP-22);
}
function clampView(){var span=t1-t0,min=D.timed?1:1;if(span<min){var m=(t0+t1)/2;t0=m-min/2;t1=m+min/2;span=min;}
var maxSpan=END*1.05+1;if(span>maxSpan){t0=-END*.025;t1=t0+maxSpan;}
var maxY=Math.max(0,NL*LH-(H-TOP)+4);y0=Math.max(0,Math.min(y0,maxY));}
function zoom(f,at){var t=t0+(at-LEFT)/plotW*(t1-t0);t0=t-(t-t0)*f;t1=t+(t1-t)*f;clampView();schedule();}
var pending=false;function schedule(){if(!pending){pending=true;requestAnimationFrame(function(){pending=false;draw();});}}
cv.addEventListener("wheel",function(ev){ev.preventDefault();var r=cv.getBoundingClientRect();
if(ev.shiftKey){y0+=ev.deltaY||ev.deltaX;clampView();schedule();return;}
if(Math.abs(ev.deltaX)>Math.abs(ev.deltaY)){var d=ev.deltaX/plotW*(t1-t0);t0+=d;t1+=d;clampView();schedule();return;}
zoom(Math.pow(1.0015,ev.deltaY),Math.max(LEFT,ev.clientX-r.left));},{passive:false});
var drag=null;
cv.addEventListener("mousedown",function(ev){drag={x:ev.clientX,y:ev.clientY,t0:t0,t1:t1,y0:y0,moved:false};cv.style.cursor="grabbing";});
window.addEventListener("mousemove",function(ev){if(!drag)return;var dx=ev.clientX-drag.x,dy=ev.clientY-drag.y;if(Math.abs(dx)+Math.abs(dy)>3)drag.moved=true;
var d=dx/plotW*(drag.t1-drag.t0);t0=drag.t0-d;t1=drag.t1-d;y0=drag.y0-dy;clampView();schedule();});
window.addEventListener("mouseup",function(ev){if(!drag)return;var moved=drag.moved;drag=null;cv.style.cursor="";if(!moved)pick(ev);});
function pick(ev){var r=cv.getBoundingClientRect(),x=ev.clientX-r.left,y=ev.clientY-r.top;var off=hasNem?1:0;
var l=Math.floor((y-TOP+y0)/LH)-off;if(x<LEFT||l<0||l>=nl){sel=-1;det.hidden=true;schedule();return;}
var t=t0+(x-LEFT)/plotW*(t1-t0),tol=4/plotW*(t1-t0),ids=laneIndex()[l],lo=0,hi=ids.length-1,best=-1;
while(lo<=hi){var m=(lo+hi)>>1;if(S[ids[m]]<=t+tol){best=m;lo=m+1;}else hi=m-1;}
var found=-1;for(var k=best;k>=0&&k>best-50;k--){var o=ids[k],e=E[o]<0?END:E[o];if(e>=t-tol){found=o;break;}}
sel=found;show(found);schedule();}
function show(o){if(o<0){det.hidden=true;return;}var e=E[o];
var txt=laneName(P[o])+"\n"+D.fs[F[o]]+" "+D.v[o]+"\n"+["ok","fail","info","open at the end (unknown)"][O[o]];
if(D.ks)txt+="\nkey "+D.ks[D.k[o]];
txt+="\ninvoked at "+fmt(S[o])+(e>=0?", completed at "+fmt(e)+(D.timed?" ("+dur(e-S[o])+")":""):"");
txt+="\nhistory.jsonl line "+L[o]+(R[o]>=0?" (completion: line "+R[o]+")":"");
if(err[o]!==undefined)txt+="\nerror "+err[o];
det.textContent=txt;det.hidden=false;}
function fit(){t0=-END*.01;t1=END*1.01;y0=0;clampView();schedule();}
document.getElementById("zin").onclick=function(){zoom(0.5,LEFT+plotW/2);};
document.getElementById("zout").onclick=function(){zoom(2,LEFT+plotW/2);};
document.getElementById("fit").onclick=fit;
window.addEventListener("keydown",function(ev){if(ev.key==="+"||ev.key==="=")zoom(.5,LEFT+plotW/2);else if(ev.key==="-")zoom(2,LEFT+plotW/2);
else if(ev.key==="ArrowLeft"||ev.key==="ArrowRight"){var d=(ev.key==="ArrowLeft"?-.2:.2)*(t1-t0);t0+=d;t1+=d;clampView();schedule();}});
function fromHash(){var m=/lines=([0-9,]+)/.exec(location.hash);hl=new Set();hlOps=[];
if(m){m[1].split(",").forEach(function(s){if(s)hl.add(+s);});
for(var j=0;j<n;j++)if(hl.has(L[j])||(R[j]>=0&&hl.has(R[j])))hlOps.push(j);}
if(hlOps.length){var a=Infinity,b=-Infinity,lmin=nl;hlOps.forEach(function(o){a=Math.min(a,S[o]);b=Math.max(b,E[o]<0?END:E[o]);lmin=Math.min(lmin,P[o]);});
var pad=Math.max((b-a)*.15,D.timed?1000:2);t0=a-pad;t1=b+pad;y0=Math.max(0,(lmin-1)*LH);sel=hlOps[0];show(sel);}
else fit();clampView();}
window.addEventListener("hashchange",function(){fromHash();schedule();});
window.addEventListener("resize",function(){size();clampView();schedule();});
size();fromHash();draw();
var T4=performance.now();
window.faultlineTimeline={ops:n,lanes:nl,firstViewMs:T4,phasesMs:{html:T0,parse:T1-T0,decode:T2-T1,index:T3-T2,draw:T4-T3},view:function(){return [t0,t1];},highlighted:function(){return hlOps.length;},lastDrawMs:function(){return lastDrawMs;},
zoom:function(f){zoom(f,LEFT+plotW/2);draw();return lastDrawMs;},
// The viewport point of an anomaly's first operation, for tests.
firstHighlighted:function(){if(!hlOps.length)return null;var o=hlOps[0],r=cv.getBoundingClientRect(),e=E[o]<0?END:E[o];
return [r.left+Math.max(LEFT,Math.min(W-2,(X(S[o])+Math.max(X(e),X(S[o])+5))/2)),r.top+laneY(P[o]+(hasNem?1:0))+2+BAR/2,L[o]];}};
})();"##;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_strings_cannot_close_the_script() {
        assert_eq!(js_str("</script>"), "\"\\u003c/script>\"");
    }
}
