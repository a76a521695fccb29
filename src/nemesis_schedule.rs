//! The nemesis schedule: every fault a run started, when, and on which
//! nodes, in the run directory as `nemesis-schedule.json`, so
//! `faultline replay` (through `faultline test --nemesis-schedule FILE`)
//! can start the same faults at the same times on the same nodes.
//!
//! The schedule is the nemesis's *input* — its resolved choices — and the
//! history's `nemesis` events its *outcome* (PIDs, errors). Times are
//! milliseconds since the test started, the clock of the history's `time`
//! field. The driver rewrites the file after every start and heal, so a
//! killed run keeps what it did.
//!
//! ```json
//! {"version": 1, "faults": [
//!   {"start_ms": 2104, "stop_ms": 4101, "fault": "kill", "node": "n2"},
//!   {"start_ms": 6100, "stop_ms": 8102, "fault": "partition",
//!    "grudge": {"n1": ["n2", "n3"], "n2": ["n1"], "n3": ["n1"]}, "one_way": false},
//!   {"start_ms": 10101, "stop_ms": 12100, "fault": "kill-leader", "node": "n3",
//!    "chosen": "leader"}
//! ]}
//! ```
//!
//! Each entry is a [`Choice`] (the nemesis crate's serde form: the
//! `fault` of the history's nemesis `start` values) with its times;
//! `chosen`, `error` and any other field are information only. A replay
//! builds the node faults with the same [`Choice::faults`] a fresh draw
//! uses. Leader-aimed faults name the node that was the leader: a replay
//! hits that node, whoever leads then (a `leader-churn` starts from it and
//! follows the leaders it sees).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use faultline_nemesis::Choice;
use faultline_nemesis::NemesisKind;

/// The file in a run directory.
pub const SCHEDULE_JSON: &str = "nemesis-schedule.json";

/// The format version this build reads and writes.
pub const VERSION: u64 = 1;

/// One fault of the schedule.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// When the nemesis started it, ms since the test started.
    pub start_ms: u64,
    /// When the heal began; absent while the fault is active (or when the
    /// run was killed before healing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_ms: Option<u64>,
    #[serde(flatten)]
    pub choice: Choice,
    /// How a leader-aimed fault found its node ("leader", "random node …").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chosen: Option<String>,
    /// The start's error, when it failed (a replay tries it again).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Serialize)]
struct FileOut<'a> {
    version: u64,
    faults: &'a [Entry],
}

impl faultline_nemesis::shrink::Window for Entry {
    fn start_ms(&self) -> u64 {
        self.start_ms
    }
    fn stop_ms(&self) -> Option<u64> {
        self.stop_ms
    }
    fn set_stop_ms(&mut self, stop: u64) {
        self.stop_ms = Some(stop);
    }
}

/// Writes `faults` as a schedule file (what `test --nemesis-schedule`
/// reads), whole, through a rename.
pub fn write_file(path: &Path, faults: &[Entry]) -> std::io::Result<()> {
    let body = serde_json::to_vec_pretty(&FileOut {
        version: VERSION,
        faults,
    })
    .map_err(std::io::Error::other)?;
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, body)?;
    std::fs::rename(&tmp, path)
}

/// A schedule file that cannot be followed: names the file and the entry.
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduleError {
    pub file: PathBuf,
    /// Index into `faults`, when one entry is at fault.
    pub entry: Option<usize>,
    pub msg: String,
}

impl std::fmt::Display for ScheduleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.entry {
            Some(i) => write!(f, "{}: faults[{i}]: {}", self.file.display(), self.msg),
            None => write!(f, "{}: {}", self.file.display(), self.msg),
        }
    }
}

impl std::error::Error for ScheduleError {}

/// A parsed schedule.
#[derive(Clone, Debug, PartialEq)]
pub struct Schedule {
    pub file: PathBuf,
    pub faults: Vec<Entry>,
}

impl Schedule {
    /// Reads and parses `file`.
    pub fn load(file: &Path) -> Result<Schedule, ScheduleError> {
        let text = std::fs::read_to_string(file).map_err(|e| ScheduleError {
            file: file.to_path_buf(),
            entry: None,
            msg: format!("cannot read: {e}"),
        })?;
        Schedule::parse(&text, file)
    }

    /// Parses a schedule's text; `file` names it in errors. Checks each
    /// entry's values and the order of times, not the nodes (see
    /// [`Schedule::check_against`]).
    pub fn parse(text: &str, file: &Path) -> Result<Schedule, ScheduleError> {
        let err = |entry, msg: String| ScheduleError {
            file: file.to_path_buf(),
            entry,
            msg,
        };
        let v: Value = serde_json::from_str(text).map_err(|e| err(None, format!("{e}")))?;
        match v.get("version").and_then(Value::as_u64) {
            Some(VERSION) => {}
            Some(n) => {
                return Err(err(
                    None,
                    format!("schedule version {n} (this faultline reads version {VERSION})"),
                ));
            }
            None => return Err(err(None, "no `version` (not a nemesis schedule)".into())),
        }
        let Some(list) = v.get("faults").and_then(Value::as_array) else {
            return Err(err(None, "no `faults` list".into()));
        };
        let mut faults: Vec<Entry> = Vec::with_capacity(list.len());
        for (i, e) in list.iter().enumerate() {
            let entry: Entry =
                serde_json::from_value(e.clone()).map_err(|x| err(Some(i), format!("{x}")))?;
            entry.choice.check().map_err(|m| err(Some(i), m))?;
            if let Some(stop) = entry.stop_ms
                && stop < entry.start_ms
            {
                return Err(err(
                    Some(i),
                    format!("stop_ms {stop} is before start_ms {}", entry.start_ms),
                ));
            }
            if let Some(prev) = faults.last() {
                match prev.stop_ms {
                    None => {
                        return Err(err(
                            Some(i - 1),
                            "no stop_ms, but a later fault follows (only the last fault may \
                             end with the run)"
                                .into(),
                        ));
                    }
                    Some(stop) if entry.start_ms < stop => {
                        return Err(err(
                            Some(i),
                            format!(
                                "start_ms {} is before the previous fault's stop_ms {stop} \
                                 (faults run one at a time)",
                                entry.start_ms
                            ),
                        ));
                    }
                    _ => {}
                }
            }
            faults.push(entry);
        }
        Ok(Schedule {
            file: file.to_path_buf(),
            faults,
        })
    }

    fn error(&self, entry: usize, msg: String) -> ScheduleError {
        ScheduleError {
            file: self.file.clone(),
            entry: Some(entry),
            msg,
        }
    }

    /// Checks that every fault is one of `kinds`: the test's `--nemesis`,
    /// which also decides what is set up (libfaketime for clock faults).
    pub fn check_kinds(&self, kinds: &[NemesisKind]) -> Result<(), ScheduleError> {
        for (i, e) in self.faults.iter().enumerate() {
            let k = e.choice.kind();
            if !kinds.contains(&k) {
                let have: Vec<&str> = kinds.iter().map(|k| k.name()).collect();
                let have = if have.is_empty() {
                    "none".to_string()
                } else {
                    have.join(",")
                };
                return Err(self.error(
                    i,
                    format!("a {k} fault, but the test's --nemesis is {have}"),
                ));
            }
        }
        Ok(())
    }

    /// Checks that every fault names only `nodes`.
    pub fn check_nodes(&self, nodes: &[String]) -> Result<(), ScheduleError> {
        for (i, e) in self.faults.iter().enumerate() {
            if let Some(n) = e
                .choice
                .nodes()
                .into_iter()
                .find(|n| !nodes.iter().any(|x| x == n))
            {
                return Err(self.error(
                    i,
                    format!(
                        "unknown node `{n}` (the test's nodes: {})",
                        nodes.join(", ")
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// `faultline test --nemesis-schedule FILE`: the schedule, checked against
/// the test's `--nemesis` (a usage error otherwise).
pub fn load_for_test(
    file: Option<&Path>,
    kinds: &[NemesisKind],
) -> anyhow::Result<Option<Schedule>> {
    let Some(file) = file else {
        return Ok(None);
    };
    let s = Schedule::load(file)
        .and_then(|s| s.check_kinds(kinds).map(|()| s))
        .map_err(|e| crate::usage(format!("--nemesis-schedule {e}")))?;
    Ok(Some(s))
}

/// What [`Log::next_fault`] says the next start does.
#[derive(Debug, PartialEq)]
pub enum Next {
    /// Not replaying: choose afresh.
    Fresh,
    /// Start this recorded fault.
    Replay(Choice),
    /// The recorded schedule has no more faults.
    Done,
}

/// The driver's schedule state: the file it writes as it goes, and the
/// schedule it follows when replaying.
pub struct Log {
    out: PathBuf,
    recorded: Vec<Entry>,
    /// When the test started (derived from the first start's `t`).
    epoch: Option<Instant>,
    follow: Option<Vec<Entry>>,
    /// Position in `follow`: step `2i` starts fault `i`, `2i + 1` heals it.
    step: usize,
    warned: bool,
}

impl Log {
    /// Records into `out` (written at once, so a run that ends before its
    /// first fault replays as one without faults); follows `follow` when
    /// given.
    pub fn new(out: PathBuf, follow: Option<Schedule>) -> Log {
        let mut log = Log {
            out,
            recorded: Vec::new(),
            epoch: None,
            follow: follow.map(|s| s.faults),
            step: 0,
            warned: false,
        };
        log.write();
        log
    }

    /// When the next main-phase call is due (time since the test started):
    /// `None` when not replaying; `Duration::MAX` when the followed
    /// schedule has no further call (the run's final heal does the rest).
    pub fn next_due(&self) -> Option<Duration> {
        let f = self.follow.as_ref()?;
        let ms = match f.get(self.step / 2) {
            Some(e) if self.step.is_multiple_of(2) => Some(e.start_ms),
            Some(e) => e.stop_ms,
            None => None,
        };
        Some(ms.map_or(Duration::MAX, Duration::from_millis))
    }

    /// The fault the start at `t` (since the test started) replays;
    /// advances to its heal.
    pub fn next_fault(&mut self, t: Duration) -> Next {
        let now = Instant::now();
        self.epoch.get_or_insert(now.checked_sub(t).unwrap_or(now));
        let Some(f) = &self.follow else {
            return Next::Fresh;
        };
        if !self.step.is_multiple_of(2) {
            // A start while the recorded fault is still on: the runner
            // alternates, so this only follows a skipped heal.
            self.step += 1;
        }
        match f.get(self.step / 2) {
            Some(e) => {
                self.step += 1;
                Next::Replay(e.choice.clone())
            }
            None => Next::Done,
        }
    }

    /// A start at `t` (since the test started) with the driver's value;
    /// `error` when it failed.
    pub fn started(&mut self, t: Duration, value: &Value, error: Option<&str>) {
        let Some(choice) = Choice::from_info(value) else {
            return;
        };
        self.recorded.push(Entry {
            start_ms: t.as_millis() as u64,
            stop_ms: None,
            choice,
            chosen: value
                .get("chosen")
                .and_then(Value::as_str)
                .map(str::to_string),
            error: error.map(str::to_string),
        });
        self.write();
    }

    /// A heal began: it stops the open fault (and, replaying, passes the
    /// recorded heal).
    pub fn healing(&mut self) {
        if !self.step.is_multiple_of(2) {
            self.step += 1;
        }
        let (Some(epoch), Some(last)) = (self.epoch, self.recorded.last_mut()) else {
            return;
        };
        if last.stop_ms.is_none() {
            let ms = epoch.elapsed().as_millis() as u64;
            last.stop_ms = Some(ms.max(last.start_ms));
            self.write();
        }
    }

    /// Rewrites the file (whole, through a rename, so a reader never sees
    /// half of it). A failure is a warning: the run goes on.
    fn write(&mut self) {
        let r = write_file(&self.out, &self.recorded);
        if let Err(e) = r
            && !self.warned
        {
            self.warned = true;
            errln!(
                "faultline: warning: writing {}: {e} (a replay of this run will draw \
                 faults afresh)",
                self.out.display()
            );
        }
    }
}

#[cfg(test)]
mod tests;
