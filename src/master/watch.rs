//! `reload_on`: files whose change reloads their app (uWSGI's touch-reload). Each file's
//! modification time, size and inode are read when the app's workers start and compared
//! every `INTERVAL`; a file that appears or disappears counts as a change.

use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// How often the files are looked at.
pub const INTERVAL: Duration = Duration::from_secs(1);

/// What identifies a version of a file: (mtime in ns, size, inode), or None if absent.
type Mark = Option<(i128, u64, u64)>;

fn mark(path: &std::path::Path) -> Mark {
    let m = std::fs::metadata(path).ok()?;
    let ns = i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec());
    Some((ns, m.size(), m.ino()))
}

#[derive(Debug)]
pub struct Watch {
    files: Vec<(PathBuf, Mark)>,
    next: Instant,
}

impl Watch {
    /// Marks `files` as they are now; None when there are none.
    pub fn new(files: &[PathBuf]) -> Option<Watch> {
        if files.is_empty() {
            return None;
        }
        Some(Watch {
            files: files.iter().map(|f| (f.clone(), mark(f))).collect(),
            next: Instant::now() + INTERVAL,
        })
    }

    /// When to look next.
    pub fn next(&self) -> Instant {
        self.next
    }

    /// The first file that changed since it was marked, if it is time to look.
    pub fn changed(&mut self, now: Instant) -> Option<PathBuf> {
        if now < self.next {
            return None;
        }
        self.next = now + INTERVAL;
        self.files
            .iter()
            .find(|(path, was)| mark(path) != *was)
            .map(|(path, _)| path.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_touch_an_appearance_and_a_removal_are_changes() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("reload");
        let mut w = Watch::new(std::slice::from_ref(&f)).unwrap();
        // Each look a little later than the one before.
        let step = std::cell::Cell::new(0u32);
        let later = || {
            step.set(step.get() + 2);
            Instant::now() + INTERVAL * step.get()
        };
        assert_eq!(w.changed(later()), None);
        std::fs::write(&f, b"").unwrap();
        assert_eq!(w.changed(Instant::now()), None, "not time to look yet");
        assert_eq!(w.changed(later()), Some(f.clone()));
        let mut w = Watch::new(std::slice::from_ref(&f)).unwrap();
        std::fs::write(&f, b"x").unwrap();
        assert_eq!(w.changed(later()), Some(f.clone()));
        let mut w = Watch::new(std::slice::from_ref(&f)).unwrap();
        std::fs::remove_file(&f).unwrap();
        assert_eq!(w.changed(later()), Some(f.clone()));
        assert!(Watch::new(&[]).is_none());
    }
}
