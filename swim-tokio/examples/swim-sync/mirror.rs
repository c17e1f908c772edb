//! swim-sync's directory logic, apart from the program so tests can drive it: mirrors a
//! node's view of the cluster into a directory, as the Python swim-protocol package's `swim-protocol-sync`.
//!
//! ```text
//! DIR/NAME/KEY             one folder per member, one file per metadata key
//! DIR/.online/NAME         -> ../NAME, likewise .suspect, .offline, .left,
//! DIR/.available/NAME         .available (online or suspect), .unavailable (the rest)
//! DIR/.local               -> NAME, this node's own folder
//! DIR/on-update            if executable, run as `on-update NAME STATUS PATH` per change
//! ```
//!
//! This node's own folder holds its own metadata, a file per key: at start, each
//! `--metadata` value without a file of its own is written there; from then on the files
//! are the local metadata, reloaded on request (SIGHUP in the program) and replaced in one
//! version, so other members never see half a reload (remove a file and reload to drop the
//! key). Values are the files' bytes as they are: `echo cache > role` stores `cache\n`;
//! write with `echo -n` or `printf`, or run with `--strip-newline` to drop one trailing
//! newline from every value. A member that left is filed under `.left` and its metadata
//! files are removed; they come back if it rejoins. Every write is a temporary file (or
//! link) renamed into place, so readers never see half a value. A member name or key that would
//! escape the directory (`/`, NUL, `..`, empty, or a leading `.`, which also keeps them
//! apart from the status folders and temporary files) is refused and logged, never used; so
//! is a member named `on-update`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use swim_tokio::{Bytes, Error, Handle, Metadata, Snapshot, Status};
use tokio::sync::mpsc;
use tracing::{debug, warn};

/// The status folders, each holding links to the folders of the members in that status.
pub(crate) const STATUS_DIRS: [&str; 6] =
    [".online", ".suspect", ".offline", ".left", ".available", ".unavailable"];

/// A member name or metadata key that cannot be a file name inside the directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Refused {
    /// `member name` or `metadata key`.
    pub(crate) what: &'static str,
    /// The value refused.
    pub(crate) value: String,
    /// Why.
    pub(crate) reason: &'static str,
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "refused {} {:?}: {}", self.what, self.value, self.reason)
    }
}

impl std::error::Error for Refused {}

/// `value` if it is safe as one path component inside the directory.
pub(crate) fn check(what: &'static str, value: &str) -> Result<(), Refused> {
    let reason = if value.is_empty() {
        "empty"
    } else if value.contains('/') || value.contains('\\') {
        "contains a path separator"
    } else if value.contains('\0') {
        "contains NUL"
    } else if value.starts_with('.') {
        "starts with `.` (`.`, `..`, status folders and temporary files)"
    } else if what == "member name" && value == "on-update" {
        "reserved for the hook"
    } else if value.len() > 255 {
        "longer than a file name may be"
    } else {
        return Ok(());
    };
    Err(Refused { what, value: value.to_owned(), reason })
}

/// One member whose folder or status changed: what `on-update` is told.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Change {
    /// The member.
    pub(crate) name: String,
    /// Its status (`online`, `suspect`, `offline`, `left`), or `reaped` once forgotten.
    pub(crate) status: &'static str,
    /// Its folder.
    pub(crate) path: PathBuf,
}

/// What was last mirrored of a member.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Mirrored {
    status: Status,
    metadata: Option<Metadata>,
}

/// A directory mirroring one node's view.
#[derive(Debug)]
pub(crate) struct Mirror {
    dir: PathBuf,
    local: String,
    mirrored: BTreeMap<String, Mirrored>,
    /// Names and keys already refused, so each is logged once.
    refused: BTreeSet<String>,
    /// Whether one trailing newline is dropped from every local value.
    strip_newline: bool,
}

impl Mirror {
    /// Creates (if need be) `dir`, its status folders, this node's folder and `.local`,
    /// and writes each value of `base` (the local metadata given apart from files) that has
    /// no file yet into this node's folder.
    pub(crate) fn new(
        dir: &Path,
        local: &str,
        base: Metadata,
        strip_newline: bool,
    ) -> io::Result<Self> {
        check("member name", local).map_err(|r| io::Error::new(io::ErrorKind::InvalidInput, r))?;
        fs::create_dir_all(dir.join(local))?;
        for status in STATUS_DIRS {
            fs::create_dir_all(dir.join(status))?;
        }
        link(Path::new(local), &dir.join(".local"))?;
        let mut mirror = Mirror {
            dir: dir.to_owned(),
            local: local.to_owned(),
            mirrored: BTreeMap::new(),
            refused: BTreeSet::new(),
            strip_newline,
        };
        let folder = mirror.local_dir();
        for (key, value) in base.iter() {
            match check("metadata key", key) {
                Err(refused) => mirror.refuse(refused),
                Ok(()) if !folder.join(key).exists() => write_atomic(&folder, key, &value)?,
                Ok(()) => {}
            }
        }
        Ok(mirror)
    }

    /// This node's own folder.
    pub(crate) fn local_dir(&self) -> PathBuf {
        self.dir.join(&self.local)
    }

    /// The local metadata the files in this node's folder hold: file name to contents.
    /// Hidden files (temporary ones included) and anything not a regular file are skipped.
    pub(crate) fn read_local(&mut self) -> io::Result<BTreeMap<String, Bytes>> {
        let mut files = BTreeMap::new();
        for entry in fs::read_dir(self.local_dir())? {
            let entry = entry?;
            let Ok(key) = entry.file_name().into_string() else { continue };
            if key.starts_with('.') || !entry.file_type()?.is_file() {
                continue;
            }
            if let Err(refused) = check("metadata key", &key) {
                self.refuse(refused);
                continue;
            }
            let mut value = fs::read(entry.path())?;
            if self.strip_newline && value.last() == Some(&b'\n') {
                value.pop();
                if value.last() == Some(&b'\r') {
                    value.pop();
                }
            }
            files.insert(key, Bytes::from(value));
        }
        Ok(files)
    }

    /// Brings the directory in line with `view`; returns the members that changed.
    pub(crate) fn sync(&mut self, view: &Snapshot) -> Vec<Change> {
        let mut changes = Vec::new();
        let mut present = BTreeSet::new();
        for member in view.members() {
            let name = member.name().as_str();
            if let Err(refused) = check("member name", name) {
                self.refuse(refused);
                continue;
            }
            present.insert(name.to_owned());
            // A member that left keeps no metadata files.
            let metadata = member.metadata().filter(|_| member.status() != Status::Left);
            let now = Mirrored { status: member.status(), metadata: metadata.cloned() };
            let before = self.mirrored.get(name).cloned();
            if before.as_ref() == Some(&now) {
                continue;
            }
            let result = self.write_member(name, before.as_ref(), &now);
            if let Err(error) = result {
                warn!(%error, member = name, "cannot mirror member");
                continue;
            }
            self.mirrored.insert(name.to_owned(), now);
            let status = member.status().as_str();
            changes.push(Change { name: name.to_owned(), status, path: self.dir.join(name) });
        }
        let gone: Vec<String> =
            self.mirrored.keys().filter(|name| !present.contains(*name)).cloned().collect();
        for name in gone {
            self.mirrored.remove(&name);
            if let Err(error) = self.forget(&name) {
                warn!(%error, member = name, "cannot remove member");
            }
            let path = self.dir.join(&name);
            changes.push(Change { name, status: "reaped", path });
        }
        changes
    }

    /// The `on-update` command for `change`, if `DIR/on-update` is an executable file.
    pub(crate) fn hook(&self, change: &Change) -> Option<std::process::Command> {
        let hook = self.dir.join("on-update");
        let metadata = fs::metadata(&hook).ok().filter(fs::Metadata::is_file)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            if metadata.permissions().mode() & 0o111 == 0 {
                return None;
            }
        }
        #[cfg(not(unix))]
        drop(metadata);
        let mut command = std::process::Command::new(hook);
        command.arg(&change.name).arg(change.status).arg(&change.path);
        Some(command)
    }

    fn write_member(
        &mut self,
        name: &str,
        before: Option<&Mirrored>,
        now: &Mirrored,
    ) -> io::Result<()> {
        let folder = self.dir.join(name);
        fs::create_dir_all(&folder)?;
        // Our own folder is the source of the local metadata: read, never written.
        let old = before.and_then(|m| m.metadata.as_ref());
        let empty = Metadata::new();
        let left = now.status == Status::Left;
        if let Some(metadata) = now.metadata.as_ref().or(left.then_some(&empty))
            && name != self.local
        {
            for (key, value) in metadata.iter() {
                if let Err(refused) = check("metadata key", key) {
                    self.refuse(refused);
                } else if old.and_then(|m| m.get(key)).as_ref() != Some(&value) {
                    write_atomic(&folder, key, &value)?;
                }
            }
            for (key, _) in old.into_iter().flat_map(Metadata::iter) {
                if metadata.get(key).is_none() && check("metadata key", key).is_ok() {
                    remove(&folder.join(key))?;
                }
            }
        }
        if before.map(|m| m.status) != Some(now.status) {
            self.link_status(name, now.status)?;
        }
        Ok(())
    }

    /// Links `name` from the folders of `status` and unlinks it from the others.
    fn link_status(&self, name: &str, status: Status) -> io::Result<()> {
        let exact = match status {
            Status::Online => ".online",
            Status::Suspect => ".suspect",
            Status::Offline => ".offline",
            Status::Left => ".left",
        };
        let aggregate = if status.is_available() { ".available" } else { ".unavailable" };
        let target = Path::new("..").join(name);
        for folder in STATUS_DIRS {
            let at = self.dir.join(folder).join(name);
            if folder == exact || folder == aggregate {
                link(&target, &at)?;
            } else {
                remove(&at)?;
            }
        }
        Ok(())
    }

    /// Removes a reaped member's links and folder (never our own).
    fn forget(&self, name: &str) -> io::Result<()> {
        for folder in STATUS_DIRS {
            remove(&self.dir.join(folder).join(name))?;
        }
        if name != self.local {
            match fs::remove_dir_all(self.dir.join(name)) {
                Err(error) if error.kind() != io::ErrorKind::NotFound => return Err(error),
                _ => {}
            }
        }
        Ok(())
    }

    fn refuse(&mut self, refused: Refused) {
        if self.refused.insert(format!("{}\0{}", refused.what, refused.value)) {
            warn!(%refused, "not mirrored");
        }
    }
}

/// Writes `folder/name` through a temporary file renamed into place.
fn write_atomic(folder: &Path, name: &str, value: &[u8]) -> io::Result<()> {
    let temporary = folder.join(format!(".{name}.tmp{}", std::process::id()));
    fs::write(&temporary, value)?;
    fs::rename(&temporary, folder.join(name))
}

/// Points `at` to `target` through a temporary link renamed into place.
fn link(target: &Path, at: &Path) -> io::Result<()> {
    if fs::read_link(at).is_ok_and(|existing| existing == target) {
        return Ok(());
    }
    let name = at.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let temporary = at.with_file_name(format!(".{name}.tmp{}", std::process::id()));
    remove(&temporary)?;
    #[cfg(unix)]
    std::os::unix::fs::symlink(target, &temporary)?;
    #[cfg(not(unix))]
    fs::write(&temporary, target.to_string_lossy().as_bytes())?;
    fs::rename(&temporary, at)
}

fn remove(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(error) if error.kind() != io::ErrorKind::NotFound => Err(error),
        _ => Ok(()),
    }
}

/// Sets the node's local metadata to this node's files, as one version. Returns whether
/// anything changed.
pub(crate) fn reload(node: &Handle, mirror: &mut Mirror) -> Result<bool, String> {
    let files =
        mirror.read_local().map_err(|e| format!("cannot read {:?}: {e}", mirror.local_dir()))?;
    let wanted: Metadata = files.into_iter().collect();
    let current = node.local_member().metadata().cloned().unwrap_or_default();
    if current == wanted {
        return Ok(false);
    }
    node.replace_metadata(wanted).map_err(|e| e.to_string())?;
    Ok(true)
}

/// Mirrors `node` into `mirror` until `stop` resolves: after every batch of events, the
/// directory is brought in line with the node's view and `on-update` runs per change (one
/// at a time, in order, at most `hook_timeout` each). A message on `reload` reloads the
/// local metadata from files.
pub(crate) async fn run(
    node: &Handle,
    mirror: &mut Mirror,
    mut reload_requests: mpsc::Receiver<()>,
    hook_timeout: Duration,
    stop: impl std::future::Future<Output = ()>,
) -> Result<(), String> {
    let mut events = node.subscribe();
    reload(node, mirror)?;
    tokio::pin!(stop);
    loop {
        for change in mirror.sync(&node.snapshot()) {
            debug!(?change, "mirrored");
            let Some(mut command) = mirror.hook(&change) else { continue };
            let mut child = match command.spawn() {
                Ok(child) => child,
                Err(error) => {
                    warn!(%error, "cannot run on-update");
                    continue;
                }
            };
            let waited = tokio::task::spawn_blocking(move || {
                let started = std::time::Instant::now();
                loop {
                    match child.try_wait() {
                        Ok(Some(status)) => return Some(status),
                        Ok(None) if started.elapsed() < hook_timeout => {
                            std::thread::sleep(Duration::from_millis(10));
                        }
                        _ => {
                            let _ = child.kill();
                            let _ = child.wait();
                            return None;
                        }
                    }
                }
            });
            match waited.await {
                Ok(Some(status)) if status.success() => {}
                Ok(Some(status)) => warn!(%status, member = change.name, "on-update failed"),
                _ => warn!(member = change.name, "on-update timed out and was killed"),
            }
        }
        tokio::select! {
            // Any event, or a lag notice, means: look at the view again.
            event = events.recv() => if event.is_none() {
                return Err(Error::Stopped.to_string());
            },
            Some(()) = reload_requests.recv() => {
                let changed = reload(node, mirror)?;
                debug!(changed, "reloaded local metadata");
            }
            () = &mut stop => return Ok(()),
        }
    }
}
