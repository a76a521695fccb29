//! The three verdicts every checker answers with.

use serde::{Serialize, Serializer};
use std::fmt;

/// `valid`, `invalid`, or `unknown` (the check did not finish: a time or
/// memory budget ran out, or there was nothing to judge). A checker never
/// answers `Valid` for a search it did not complete.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Verdict {
    Valid,
    Unknown,
    Invalid,
}

impl Verdict {
    /// The worse of two verdicts: invalid beats unknown beats valid.
    pub fn worst(self, other: Verdict) -> Verdict {
        self.max(other)
    }

    /// Process exit code per DESIGN.md: 0 valid, 1 invalid, 2 unknown.
    pub fn exit_code(self) -> u8 {
        match self {
            Verdict::Valid => 0,
            Verdict::Invalid => 1,
            Verdict::Unknown => 2,
        }
    }

    /// JSON form: `true`, `false` or `"unknown"` (as Jepsen's `:valid?`).
    pub fn to_json(self) -> serde_json::Value {
        match self {
            Verdict::Valid => serde_json::Value::Bool(true),
            Verdict::Invalid => serde_json::Value::Bool(false),
            Verdict::Unknown => serde_json::Value::from("unknown"),
        }
    }
}

impl Serialize for Verdict {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(s)
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Verdict::Valid => "valid",
            Verdict::Invalid => "invalid",
            Verdict::Unknown => "unknown",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worst_wins() {
        assert_eq!(Verdict::Valid.worst(Verdict::Unknown), Verdict::Unknown);
        assert_eq!(Verdict::Unknown.worst(Verdict::Invalid), Verdict::Invalid);
        assert_eq!(Verdict::Valid.worst(Verdict::Valid), Verdict::Valid);
        assert_eq!(
            serde_json::to_string(&Verdict::Unknown).unwrap(),
            "\"unknown\""
        );
    }
}
