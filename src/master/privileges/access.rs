//! What a user may do with a file, computed from its mode bits, owner and group for given
//! credentials (the master is often root, so `access(2)` would answer for the wrong user):
//! every directory on a path must be searchable by the application's user and the file
//! readable (or executable), and with `check_ownership` nothing the application loads may
//! be writable by others than its user or root.
//!
//! Files with a POSIX ACL are not judged (their mode bits do not tell everything).

use std::ffi::CString;
use std::fs::Metadata;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

/// The credentials a file is judged against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Creds {
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
}

/// Read, write, execute (search, for a directory): the bits of one class of a mode.
pub const READ: u32 = 4;
pub const WRITE: u32 = 2;
pub const EXEC: u32 = 1;

/// Whether `creds` may do `want` (a combination of READ, WRITE, EXEC) with a file of this
/// mode, owner and group, as the kernel decides without ACLs: root (with its capabilities)
/// may read and write anything, search any directory, and execute a file with any execute
/// bit; anyone else gets the owner's, the group's or the others' bits, the first class that
/// applies, with no fall-through.
pub fn permits(mode: u32, owner: u32, group: u32, creds: &Creds, want: u32) -> bool {
    if creds.uid == 0 {
        let is_dir = mode & libc::S_IFMT == libc::S_IFDIR;
        return want & EXEC == 0 || is_dir || mode & 0o111 != 0;
    }
    let bits = if creds.uid == owner {
        mode >> 6
    } else if creds.gid == group || creds.groups.contains(&group) {
        mode >> 3
    } else {
        mode
    } & 0o7;
    bits & want == want
}

/// `mode 0700, owner root:root`.
fn describe(meta: &Metadata) -> String {
    let owner = super::accounts::user_id(meta.uid()).name;
    let group = super::accounts::group_id(meta.gid()).name;
    format!("mode {:04o}, owner {owner}:{group}", meta.mode() & 0o7777)
}

/// Whether `path` carries a POSIX access ACL, which the mode bits do not fully describe.
fn has_acl(path: &Path) -> bool {
    let Ok(c) = CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: both strings are NUL-terminated and live across the call; a null buffer with
    // size 0 asks only for the attribute's size, so nothing is written.
    let n = unsafe {
        libc::getxattr(
            c.as_ptr(),
            c"system.posix_acl_access".as_ptr(),
            std::ptr::null_mut(),
            0,
        )
    };
    n > 0
}

fn permits_path(path: &Path, meta: &Metadata, creds: &Creds, want: u32) -> bool {
    permits(meta.mode(), meta.uid(), meta.gid(), creds, want) || has_acl(path)
}

/// Why `creds` (described as `who`) cannot reach `path` and do `want` with it, or None when
/// it can: each directory from `/` down must be searchable, then the file must allow `want`.
/// Symbolic links are followed, and the directories of their targets checked too. `root`
/// is where `/` is (a chroot); the path is judged as seen inside it, without following
/// links out of it.
pub fn problem(
    path: &Path,
    root: Option<&Path>,
    creds: &Creds,
    want: u32,
    who: &str,
) -> Option<String> {
    let outside = |p: &Path| -> PathBuf {
        match root {
            Some(r) => r.join(p.strip_prefix("/").unwrap_or(p)),
            None => p.to_path_buf(),
        }
    };
    let mut walks = vec![path.to_path_buf()];
    if root.is_none() {
        if let Ok(real) = std::fs::canonicalize(path) {
            if real != path {
                walks.push(real);
            }
        }
    }
    for walk in &walks {
        let mut dir = PathBuf::from("/");
        for c in walk.components() {
            let Component::Normal(name) = c else { continue };
            let seen = outside(&dir);
            match std::fs::metadata(&seen) {
                Ok(meta) if !permits_path(&seen, &meta, creds, EXEC) => {
                    return Some(format!(
                        "{who} cannot enter {} ({})",
                        dir.display(),
                        describe(&meta)
                    ));
                }
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Some(format!("{} does not exist", dir.display()))
                }
                Err(e) => return Some(format!("cannot inspect {}: {e}", dir.display())),
            }
            dir.push(name);
        }
    }
    let seen = outside(path);
    match std::fs::metadata(&seen) {
        Ok(meta) if !permits_path(&seen, &meta, creds, want) => Some(format!(
            "{who} cannot {} it ({})",
            match want {
                EXEC if meta.is_dir() => "enter",
                EXEC => "execute",
                READ => "read",
                _ => "use",
            },
            describe(&meta)
        )),
        Ok(_) => None,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some("it does not exist".into()),
        Err(e) => Some(format!("cannot inspect it: {e}")),
    }
}

/// Why `path` is unsafe to load for an application running as `uid`, or None: it must be
/// owned by that user or root, and not writable by its group or others.
pub fn ownership_problem(path: &Path, uid: u32) -> Option<String> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) => return Some(format!("cannot inspect {}: {e}", path.display())),
    };
    if meta.uid() != 0 && meta.uid() != uid {
        return Some(format!(
            "{} belongs to {}, neither the application's user nor root ({})",
            path.display(),
            super::accounts::user_id(meta.uid()).name,
            describe(&meta)
        ));
    }
    if meta.mode() & 0o022 != 0 {
        let by = match meta.mode() & 0o022 {
            0o020 => "its group",
            0o002 => "everyone",
            _ => "its group and everyone",
        };
        return Some(format!(
            "{} is writable by {by} ({})",
            path.display(),
            describe(&meta)
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    const DIR: u32 = libc::S_IFDIR;
    const FILE: u32 = libc::S_IFREG;

    fn user(uid: u32, gid: u32, groups: &[u32]) -> Creds {
        Creds {
            uid,
            gid,
            groups: groups.to_vec(),
        }
    }

    #[test]
    fn owner_group_other_classes_without_fall_through() {
        let a = user(1000, 1000, &[]);
        // Root's 0700 home: nobody else enters.
        assert!(!permits(DIR | 0o700, 0, 0, &a, EXEC));
        assert!(permits(DIR | 0o755, 0, 0, &a, EXEC));
        assert!(permits(DIR | 0o711, 0, 0, &a, EXEC));
        assert!(!permits(DIR | 0o711, 0, 0, &a, READ));
        // The owner class applies to the owner even when others get more.
        assert!(!permits(FILE | 0o044, 1000, 0, &a, READ));
        assert!(permits(FILE | 0o400, 1000, 0, &a, READ));
        // The group class, by primary or supplementary group.
        assert!(permits(FILE | 0o040, 0, 1000, &a, READ));
        assert!(permits(FILE | 0o040, 0, 50, &user(1000, 1000, &[50]), READ));
        assert!(!permits(
            FILE | 0o604,
            0,
            50,
            &user(1000, 1000, &[50]),
            READ
        ));
        assert!(!permits(FILE | 0o040, 0, 50, &a, READ));
        assert!(permits(FILE | 0o755, 0, 0, &a, READ | EXEC));
        assert!(!permits(FILE | 0o644, 0, 0, &a, EXEC));
        assert!(!permits(FILE | 0o644, 0, 0, &a, WRITE));
    }

    #[test]
    fn root_reads_everything_but_executes_only_executables() {
        let root = user(0, 0, &[]);
        assert!(permits(DIR, 5, 5, &root, EXEC));
        assert!(permits(FILE, 5, 5, &root, READ | WRITE));
        assert!(!permits(FILE | 0o644, 5, 5, &root, EXEC));
        assert!(permits(FILE | 0o744, 5, 5, &root, EXEC));
    }

    #[test]
    fn paths_are_judged_directory_by_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let closed = tmp.path().join("closed");
        std::fs::create_dir(&closed).unwrap();
        let file = closed.join("app.py");
        std::fs::write(&file, "x").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(&closed, std::fs::Permissions::from_mode(0o700)).unwrap();
        let me = nix::unistd::geteuid().as_raw();
        let other = user(me.wrapping_add(4321), 4321, &[]);
        let e = problem(&file, None, &other, READ, "user x").unwrap();
        assert!(
            e.starts_with(&format!("user x cannot enter {}", closed.display())),
            "{e}"
        );
        assert!(e.contains("mode 0700"), "{e}");
        std::fs::set_permissions(&closed, std::fs::Permissions::from_mode(0o711)).unwrap();
        assert_eq!(problem(&file, None, &other, READ, "user x"), None);
        let e = problem(&file, None, &other, EXEC, "user x").unwrap();
        assert!(e.starts_with("user x cannot execute it (mode 0644"), "{e}");
        // Through a symbolic link, the target's directories count too.
        std::fs::set_permissions(&closed, std::fs::Permissions::from_mode(0o700)).unwrap();
        let link = tmp.path().join("link.py");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        let e = problem(&link, None, &other, READ, "user x").unwrap();
        assert!(e.contains(&closed.display().to_string()), "{e}");
        // Inside a chroot, paths are seen from its root.
        std::fs::set_permissions(&closed, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(
            problem(
                Path::new("/closed/app.py"),
                Some(tmp.path()),
                &other,
                READ,
                "u"
            ),
            None
        );
        let e = problem(Path::new("/nothing"), Some(tmp.path()), &other, READ, "u").unwrap();
        assert_eq!(e, "it does not exist");
        let e = problem(Path::new("/no/thing"), Some(tmp.path()), &other, READ, "u").unwrap();
        assert_eq!(e, "/no does not exist");
    }

    #[test]
    fn ownership_rules() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("app.py");
        std::fs::write(&file, "x").unwrap();
        let me = nix::unistd::geteuid().as_raw();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(ownership_problem(&file, me), None);
        for (mode, by) in [
            (0o664, "its group"),
            (0o646, "everyone"),
            (0o666, "its group and everyone"),
        ] {
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode)).unwrap();
            let e = ownership_problem(&file, me).unwrap();
            assert!(
                e.contains(&format!("is writable by {by} (mode 0{mode:o}")),
                "{e}"
            );
        }
        if me != 0 {
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
            let e = ownership_problem(&file, me + 1).unwrap();
            assert!(e.contains("neither the application's user nor root"), "{e}");
        }
    }
}
