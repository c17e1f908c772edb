//! What a member process and the testbed say to each other: commands on the member's stdin
//! (one word a line, see [`Command`]) and JSON lines on its stdout ([`Line`]), each stamped
//! with the member's wall clock so the testbed times events where they happened, not where
//! it read them.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// Microseconds since the Unix epoch: one clock for every process on the machine.
pub fn wall_micros() -> u64 {
    let since = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    u64::try_from(since.as_micros()).unwrap_or(u64::MAX)
}

/// One line a member prints: when, and what.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Line {
    /// Wall clock of the member when it printed the line, µs since the Unix epoch.
    pub t: u64,
    /// What happened.
    #[serde(flatten)]
    pub what: What,
}

impl Line {
    /// `what`, stamped now.
    pub fn now(what: What) -> Self {
        Line { t: wall_micros(), what }
    }
}

/// A membership change a member reports about another member.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    /// Seen for the first time.
    Joined,
    /// Suspected.
    Suspect,
    /// Declared offline.
    Offline,
    /// Left gracefully.
    Left,
    /// Online again after being suspect, offline or left.
    Alive,
    /// Forgotten.
    Reaped,
}

/// The traffic counters of a member's node (swim-core's `Counters`, the part the testbed
/// compares with the simulator).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Traffic {
    /// Datagrams sent.
    pub datagrams_out: u64,
    /// Bytes sent (UDP payload).
    pub bytes_out: u64,
    /// Datagrams received.
    pub datagrams_in: u64,
    /// Bytes received (UDP payload).
    pub bytes_in: u64,
    /// Accusations about itself this member refuted.
    pub refutations: u64,
    /// Suspicions this member raised itself (its own probes failed).
    #[serde(default)]
    pub suspicions: u64,
    /// Datagrams dropped, any reason.
    pub dropped: u64,
}

/// The body of a [`Line`], tagged by `ev`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "ev", rename_all = "snake_case")]
pub enum What {
    /// The socket is bound and the node is joining.
    Bound,
    /// The node heard from the cluster for the first time.
    Ready,
    /// A change about another member.
    Member {
        /// What changed.
        change: Change,
        /// The member's name.
        member: String,
        /// The incarnation the change is about.
        inc: u64,
    },
    /// Another member's (or this member's own) metadata changed.
    Metadata {
        /// Whose.
        member: String,
        /// Its new metadata version.
        version: u64,
    },
    /// The cluster accused this member (`suspect`, `offline` or `left`).
    Accused {
        /// The accusation.
        accusation: String,
        /// The incarnation it was about.
        inc: u64,
    },
    /// This member refuted an accusation.
    Refuted {
        /// Its new incarnation.
        inc: u64,
    },
    /// The event stream fell behind and lost this many events.
    Lagged {
        /// Events lost.
        missed: u64,
    },
    /// The answer to `counters`.
    Counters(Traffic),
    /// The answer to `view`: the member's table by status, itself excluded.
    View {
        /// Online members.
        online: Vec<String>,
        /// Suspect members.
        suspect: Vec<String>,
        /// Offline or left members still held.
        gone: Vec<String>,
    },
    /// The answer to `set KEY VALUE`.
    Set {
        /// Whether the node accepted the value.
        ok: bool,
    },
    /// The node left gracefully and the process is about to exit.
    Left,
}

/// A command the testbed writes to a member's stdin.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// Print [`What::Counters`].
    Counters,
    /// Print [`What::View`].
    View,
    /// Set a metadata value, then print [`What::Set`].
    Set(String, String),
    /// Leave gracefully, print [`What::Left`] and exit.
    Leave,
}

impl Command {
    /// The command as a line (without the newline).
    pub fn to_line(&self) -> String {
        match self {
            Command::Counters => "counters".into(),
            Command::View => "view".into(),
            Command::Set(key, value) => format!("set {key} {value}"),
            Command::Leave => "leave".into(),
        }
    }

    /// Parses a line written by [`Self::to_line`]; `None` for anything else.
    pub fn parse(line: &str) -> Option<Self> {
        let mut words = line.split_whitespace();
        let command = match words.next()? {
            "counters" => Command::Counters,
            "view" => Command::View,
            "leave" => Command::Leave,
            "set" => Command::Set(words.next()?.into(), words.next()?.into()),
            _ => return None,
        };
        words.next().is_none().then_some(command)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_round_trip_through_json() {
        let line = Line {
            t: 7,
            what: What::Member { change: Change::Offline, member: "10.0.0.3:7946".into(), inc: 2 },
        };
        let text = serde_json::to_string(&line).unwrap();
        assert_eq!(
            text,
            r#"{"t":7,"ev":"member","change":"offline","member":"10.0.0.3:7946","inc":2}"#
        );
        assert_eq!(serde_json::from_str::<Line>(&text).unwrap(), line);
        let counters =
            Line { t: 1, what: What::Counters(Traffic { bytes_out: 9, ..Traffic::default() }) };
        let text = serde_json::to_string(&counters).unwrap();
        assert_eq!(serde_json::from_str::<Line>(&text).unwrap(), counters);
    }

    #[test]
    fn commands_round_trip_and_junk_is_refused() {
        for c in
            [Command::Counters, Command::View, Command::Leave, Command::Set("k".into(), "v".into())]
        {
            assert_eq!(Command::parse(&c.to_line()), Some(c));
        }
        assert_eq!(Command::parse("set k"), None);
        assert_eq!(Command::parse("view now"), None);
        assert_eq!(Command::parse("reboot"), None);
    }
}
