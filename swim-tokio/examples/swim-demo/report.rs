//! What swim-demo prints: one line per change a member sees (status changes, metadata
//! changes, its own news), as text or JSON.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::json;
use swim_tokio::{Bytes, Event, Handle, Member, Status};
use tokio::time::Instant;

pub(crate) struct Report {
    pub(crate) json: bool,
    pub(crate) start: Instant,
}

impl Report {
    pub(crate) fn new(json: bool) -> Self {
        Report { json, start: Instant::now() }
    }

    /// One line per change `observer` reports.
    pub(crate) fn event(&mut self, observer: &Handle, event: &Event) {
        let me = observer.local_member();
        let (name, status, incarnation) = match event {
            Event::MemberJoined { name, incarnation } => (name, Status::Online, *incarnation),
            Event::MemberSuspect { name, incarnation } => (name, Status::Suspect, *incarnation),
            Event::MemberOffline { name, incarnation } => (name, Status::Offline, *incarnation),
            Event::MemberLeft { name, incarnation } => (name, Status::Left, *incarnation),
            Event::MemberAlive { name, incarnation, .. } => (name, Status::Online, *incarnation),
            Event::MetadataChanged { name, version } => {
                let member = observer.member(name);
                return self.metadata(&me, name, *version, member.as_ref());
            }
            Event::Refuted { incarnation } => (me.name(), Status::Online, *incarnation),
            other => return self.news(&me, other),
        };
        let metadata = observer.member(name).map(|m| metadata_text(&m)).unwrap_or_default();
        if self.json {
            let line = json!({
                "t": unix_time(),
                "event": "status",
                "self": me.name(),
                "member": name.as_str(),
                "status": status.as_str(),
                "incarnation": incarnation,
                "metadata": metadata_json(&metadata),
            });
            println!("{line}");
        } else {
            self.say(&format!("{} sees {name} {status} (incarnation {incarnation})", me.name()));
        }
    }

    /// A metadata change, with the values as they are now.
    fn metadata(&self, me: &Member, name: &str, version: u64, member: Option<&Member>) {
        let metadata = member.map(metadata_text).unwrap_or_default();
        if self.json {
            let line = json!({
                "t": unix_time(),
                "event": "metadata",
                "self": me.name(),
                "member": name,
                "metadata_version": version,
                "metadata": metadata_json(&metadata),
            });
            println!("{line}");
        } else {
            let pairs: Vec<String> = metadata.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let whose = if name == me.name() { "its own".to_owned() } else { format!("{name}'s") };
            self.say(&format!(
                "{} sees {whose} metadata change (version {version}): {}",
                me.name(),
                pairs.join(" ")
            ));
        }
    }

    /// News about the observer itself.
    fn news(&self, me: &Member, event: &Event) {
        let what = match event {
            Event::Joined => "joined the cluster".to_owned(),
            Event::MemberReaped { name } => format!("forgot {name}"),
            Event::Suspected { accusation, .. } => format!("is said to be {accusation}"),
            other => format!("{other:?}"),
        };
        if !self.json {
            self.say(&format!("{} {what}", me.name()));
        }
    }

    pub(crate) fn say(&self, line: &str) {
        if !self.json {
            println!("[{:>8}] {line}", readable(self.start.elapsed()));
        }
    }
}

fn metadata_text(member: &Member) -> Vec<(String, String)> {
    let metadata = member.metadata().cloned().unwrap_or_default();
    metadata.iter().map(|(k, v)| (k.to_owned(), text(&v))).collect()
}

fn metadata_json(metadata: &[(String, String)]) -> serde_json::Map<String, serde_json::Value> {
    metadata.iter().map(|(k, v)| (k.clone(), v.clone().into())).collect()
}

/// A duration as people read it: `850 ms`, `2.34 s`, `1 min 5 s`.
pub(crate) fn readable(duration: Duration) -> String {
    let seconds = duration.as_secs_f64();
    if seconds < 0.01 {
        format!("{:.1} ms", seconds * 1000.0)
    } else if seconds < 1.0 {
        format!("{:.0} ms", seconds * 1000.0)
    } else if seconds < 60.0 {
        format!("{seconds:.2} s")
    } else {
        format!("{} min {} s", duration.as_secs() / 60, duration.as_secs() % 60)
    }
}

/// UTF-8 as text, anything else as hex.
fn text(value: &Bytes) -> String {
    match std::str::from_utf8(value) {
        Ok(text) => text.to_owned(),
        Err(_) => value.iter().map(|b| format!("{b:02x}")).collect(),
    }
}

pub(crate) fn unix_time() -> f64 {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    (now.as_secs_f64() * 1000.0).round() / 1000.0
}

pub(crate) fn random_token() -> String {
    format!("{:08x}", getrandom::u32().unwrap_or_default())
}
