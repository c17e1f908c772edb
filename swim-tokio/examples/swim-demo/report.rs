//! What swim-demo prints: one line per change a member sees (status changes, metadata
//! changes, its own news), as text or JSON.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::json;
use swim_tokio::{Bytes, Event, Handle, Member, Metadata, Status};
use tokio::time::Instant;

pub(crate) struct Report {
    pub(crate) json: bool,
    pub(crate) start: Instant,
}

impl Report {
    pub(crate) fn new(json: bool) -> Self {
        Report { json, start: Instant::now() }
    }

    /// One line per change `observer` reports, from the event alone: the status it reports
    /// and the one before, or the metadata map and which keys changed.
    pub(crate) fn event(&mut self, observer: &Handle, event: &Event) {
        let me = observer.local_member();
        if let Event::MetadataChanged { name, version, metadata, .. } = event {
            return self.metadata(&me, name, *version, metadata, &event.changed_keys());
        }
        let (name, status) = match (event.member(), event.status(), event) {
            (Some(name), Some(status), _) => (name, status),
            (_, _, Event::Refuted { .. }) => (me.name().as_str(), Status::Online),
            _ => return self.news(&me, event),
        };
        let previous = event.previous_status();
        if self.json {
            let metadata = observer.member(name).and_then(|m| m.metadata().cloned());
            let line = json!({
                "t": unix_time(),
                "event": "status",
                "self": me.name(),
                "member": name,
                "status": status.as_str(),
                "previous": previous.map(Status::as_str),
                "incarnation": incarnation(event).unwrap_or(me.incarnation()),
                "metadata": metadata_json(&metadata_text(&metadata.unwrap_or_default())),
            });
            println!("{line}");
        } else {
            let was = previous.map(|p| format!(", was {p}")).unwrap_or_default();
            let incarnation = incarnation(event).unwrap_or_default();
            self.say(&format!(
                "{} sees {name} {status} (incarnation {incarnation}{was})",
                me.name()
            ));
        }
    }

    /// A metadata change: the keys it changed and the whole map after it.
    fn metadata(&self, me: &Member, name: &str, version: u64, metadata: &Metadata, keys: &[&str]) {
        let metadata = metadata_text(metadata);
        if self.json {
            let line = json!({
                "t": unix_time(),
                "event": "metadata",
                "self": me.name(),
                "member": name,
                "metadata_version": version,
                "changed": keys,
                "metadata": metadata_json(&metadata),
            });
            println!("{line}");
        } else {
            let pairs: Vec<String> = metadata.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let whose = if name == me.name() { "its own".to_owned() } else { format!("{name}'s") };
            self.say(&format!(
                "{} sees {whose} metadata change (version {version}): {} changed; now {}",
                me.name(),
                if keys.is_empty() { "no key".to_owned() } else { keys.join(", ") },
                pairs.join(" ")
            ));
        }
    }

    /// News about the observer itself.
    fn news(&self, me: &Member, event: &Event) {
        let what = match event {
            Event::Joined => "joined the cluster".to_owned(),
            Event::MemberReaped { name, .. } => format!("forgot {name}"),
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

/// The incarnation a status event is about.
fn incarnation(event: &Event) -> Option<u64> {
    match event {
        Event::MemberJoined { incarnation, .. }
        | Event::MemberSuspect { incarnation, .. }
        | Event::MemberOffline { incarnation, .. }
        | Event::MemberLeft { incarnation, .. }
        | Event::MemberAlive { incarnation, .. }
        | Event::Refuted { incarnation } => Some(*incarnation),
        _ => None,
    }
}

fn metadata_text(metadata: &Metadata) -> Vec<(String, String)> {
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
