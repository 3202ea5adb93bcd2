//! Workers run as the application's own user with every privilege dropped: the user,
//! group and supplementary groups are looked up by the master (`accounts`, while the
//! configuration is resolved), checked before any worker starts (`check`: no application
//! as root unless allowed, a switch the master may make, files the user can reach,
//! `access`), and applied in each worker between fork and exec (`child`).

pub mod access;
pub mod accounts;
pub mod child;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::config::{Account, Settings};
pub use child::{Failed, Plan, Step};

/// CAP_CHOWN, CAP_KILL and CAP_SYS_CHROOT (linux/capability.h).
const CAP_CHOWN: u32 = 0;
const CAP_KILL: u32 = 5;
const CAP_SYS_CHROOT: u32 = 18;

/// What `check` found, by kind.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Problems {
    /// Settings that cannot be run as they are, whatever the files: the application as
    /// root, a switch of user or group, a chroot or a socket owner this master may not
    /// make.
    pub refused: Vec<String>,
    /// Files the application's user cannot reach, or, with `check_ownership`, that others
    /// could change.
    pub files: Vec<String>,
}

impl Problems {
    pub fn is_empty(&self) -> bool {
        self.refused.is_empty() && self.files.is_empty()
    }
}

/// `p` as the master sees it: under the chroot, if any.
pub fn outside(chroot: Option<&Path>, p: &Path) -> PathBuf {
    match chroot {
        Some(root) => root.join(p.strip_prefix("/").unwrap_or(p)),
        None => p.to_path_buf(),
    }
}

/// The file an application spec names (`/srv/app.py` or `/srv/app.py:name`), if it names
/// one (specs are resolved to absolute paths).
pub fn app_file(app: &str) -> Option<&Path> {
    if !app.starts_with('/') {
        return None;
    }
    let path = match app.rsplit_once(':') {
        Some((path, callable)) if !callable.contains('/') => path,
        _ => app,
    };
    Some(Path::new(path))
}

/// The refusal for an application that would run as root, if it would and that is not
/// allowed: `master_euid` is the master's effective uid.
pub fn root_refusal(settings: &Settings, master_euid: u32) -> Option<String> {
    let p = &settings.privileges;
    let app_uid = p.account.as_ref().map_or(master_euid, |a| a.user.id);
    (master_euid == 0 && app_uid == 0 && !p.allow_root).then(|| {
        "refusing to run the application as root: set user (and group) to the account it \
         should run as (--user, --group), or allow_root = true (--allow-root)"
            .to_string()
    })
}

/// Who workers run as, for the log: `user www-data (uid 33), group www-data (gid 33)`.
pub fn describe(settings: &Settings) -> String {
    let p = &settings.privileges;
    let mut s = match &p.account {
        Some(a) => {
            let mut s = format!(
                "user {}, group {}",
                user_of(a),
                accounts::describe_group(&a.group)
            );
            if let Some(groups) = a.groups.as_ref().filter(|g| !g.is_empty()) {
                let names: Vec<&str> = groups.iter().map(|g| g.name.as_str()).collect();
                s.push_str(&format!(", supplementary groups {}", names.join(", ")));
            }
            s
        }
        None => format!(
            "wsgid's own user, {}",
            accounts::describe_user(&accounts::user_id(nix::unistd::geteuid().as_raw()))
        ),
    };
    if let Some(root) = &p.chroot {
        s.push_str(&format!(", chroot {}", root.display()));
    }
    if let Some(mask) = p.umask {
        s.push_str(&format!(", umask {mask:04o}"));
    }
    s
}

/// `www-data (uid 33)`.
fn user_of(a: &Account) -> String {
    accounts::describe_user(&a.user)
}

/// Why this master cannot switch to `a`, if it cannot.
fn switch_refusal(a: &Account) -> Option<String> {
    let (ruid, euid, suid) = match nix::unistd::getresuid() {
        Ok(r) => (r.real.as_raw(), r.effective.as_raw(), r.saved.as_raw()),
        Err(e) => return Some(format!("cannot read wsgid's own user ids: {e}")),
    };
    let (rgid, egid, sgid) = match nix::unistd::getresgid() {
        Ok(r) => (r.real.as_raw(), r.effective.as_raw(), r.saved.as_raw()),
        Err(e) => return Some(format!("cannot read wsgid's own group ids: {e}")),
    };
    let me = accounts::describe_user(&accounts::user_id(euid));
    let uid = a.user.id;
    if [ruid, euid, suid].iter().any(|&id| id != uid) {
        if !child::has_capability(child::CAP_SETUID) {
            return Some(format!(
                "cannot run the application as user {}: wsgid runs as {me}, which may not \
                 switch to another user (that takes root, or CAP_SETUID, CAP_SETGID and \
                 CAP_KILL); start wsgid as root, or leave user unset to run the application \
                 as {me}",
                user_of(a)
            ));
        }
        // The master signals its workers (to stop them, or replace them); a process of
        // another user takes CAP_KILL to signal.
        if ruid != uid && euid != uid && !child::has_capability(CAP_KILL) {
            return Some(format!(
                "cannot run the application as user {}: wsgid runs as {me}, which could switch \
                 to it (CAP_SETUID) but not signal its workers then (that takes CAP_KILL too)",
                user_of(a)
            ));
        }
    }
    let gid = a.group.id;
    let groups_change = child::groups_to_set(a).is_some();
    let gid_change = [rgid, egid, sgid].iter().any(|&id| id != gid);
    if (gid_change || groups_change) && !child::has_capability(child::CAP_SETGID) {
        return Some(format!(
            "cannot run the application as user {} with group {}{}: wsgid runs as {me}, which \
             may not change its groups (that takes root or CAP_SETGID)",
            user_of(a),
            accounts::describe_group(&a.group),
            match &a.groups {
                Some(list) if !list.is_empty() => format!(
                    " and supplementary groups {}",
                    list.iter()
                        .map(|g| g.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                _ => String::new(),
            }
        ));
    }
    None
}

/// Why this master cannot give its Unix sockets the configured owner or group, if it
/// cannot: another owner, or a group it is not in, takes root or CAP_CHOWN.
fn socket_refusal(settings: &Settings, euid: u32) -> Option<String> {
    let p = &settings.privileges;
    let unix = settings
        .listen
        .iter()
        .any(|l| matches!(l.addr, crate::config::ListenAddr::Unix(_)));
    if !unix || child::has_capability(CAP_CHOWN) {
        return None;
    }
    let me = accounts::describe_user(&accounts::user_id(euid));
    if let Some(owner) = p.socket_owner.as_ref().filter(|o| o.id != euid) {
        return Some(format!(
            "cannot give the Unix sockets to owner {}: wsgid runs as {me}, which may not (that \
             takes root or CAP_CHOWN)",
            accounts::describe_user(owner)
        ));
    }
    let group = p.socket_group.as_ref()?;
    let mine = group.id == nix::unistd::getegid().as_raw()
        || nix::unistd::getgroups().is_ok_and(|g| g.iter().any(|g| g.as_raw() == group.id));
    (!mine).then(|| {
        format!(
            "cannot give the Unix sockets to group {}: wsgid runs as {me}, which is not in it \
             (giving a socket to another group takes root or CAP_CHOWN)",
            accounts::describe_group(group)
        )
    })
}

/// The credentials the application runs with, for judging files.
fn creds(a: &Account) -> access::Creds {
    access::Creds {
        uid: a.user.id,
        gid: a.group.id,
        groups: a
            .groups
            .as_ref()
            .map(|l| l.iter().map(|g| g.id).collect())
            .unwrap_or_default(),
    }
}

/// Everything that keeps `settings` from running as configured, found before any worker
/// starts; `python` is the interpreter workers exec (as seen inside the chroot, if any),
/// when it could be found.
pub fn check(settings: &Settings, python: Option<&Path>) -> Problems {
    let mut found = Problems::default();
    let p = &settings.privileges;
    let euid = nix::unistd::geteuid().as_raw();
    found.refused.extend(root_refusal(settings, euid));
    if let Some(a) = &p.account {
        found.refused.extend(switch_refusal(a));
    }
    found.refused.extend(socket_refusal(settings, euid));
    let chroot = p.chroot.as_deref();
    if let Some(root) = chroot {
        if !child::has_capability(CAP_SYS_CHROOT) {
            found.refused.push(format!(
                "cannot chroot to {}: wsgid may not (that takes root or CAP_SYS_CHROOT)",
                root.display()
            ));
        } else if !root.is_dir() {
            found
                .files
                .push(format!("chroot {}: not a directory", root.display()));
        } else if !root.join("proc/self/fd").is_dir() {
            found.files.push(format!(
                "chroot {}: no /proc inside it (workers load wsgid's library through \
                 /proc/self/fd: mount proc on {})",
                root.display(),
                root.join("proc").display()
            ));
        }
    }
    let app = app_file(&settings.app);
    if let Some(a) = &p.account {
        let creds = creds(a);
        let who = format!("user {}", user_of(a));
        let mut judge = |what: &str, path: &Path, want: u32| {
            if let Some(e) = access::problem(path, chroot, &creds, want, &who) {
                found.files.push(format!("{what} {}: {e}", path.display()));
            }
        };
        // One that is missing is reported by `Image::find`.
        if let Some(python) = python.filter(|p| outside(chroot, p).is_file()) {
            judge("the Python interpreter", python, access::EXEC);
        }
        if let Some(venv) = &settings.virtualenv {
            judge("the virtualenv", venv, access::EXEC);
        }
        if let Some(dir) = &settings.chdir {
            judge("the working directory (chdir)", dir, access::EXEC);
        }
        if let Some(file) = app {
            judge("the application file", file, access::READ);
        }
        for dir in &settings.pythonpath {
            if outside(chroot, dir).exists() {
                judge("the pythonpath directory", dir, access::EXEC);
            }
        }
    }
    if p.check_ownership {
        let uid = p.account.as_ref().map_or(euid, |a| a.user.id);
        let mut judged: Vec<PathBuf> = Vec::new();
        let mut judge = |path: PathBuf| {
            if judged.contains(&path) {
                return;
            }
            if let Some(e) = access::ownership_problem(&path, uid) {
                found.files.push(format!(
                    "refusing to load the application (check_ownership): {e}"
                ));
            }
            judged.push(path);
        };
        if let Some(file) = app {
            let file = outside(chroot, file);
            if let Some(dir) = file.parent() {
                judge(dir.to_path_buf());
            }
            judge(file);
        }
        if let Some(dir) = &settings.chdir {
            judge(outside(chroot, dir));
        }
    }
    found
}

/// Why the application's user could not load wsgid's library `meta` (at `path`), if it
/// could not: workers load it through /proc/self/fd, which reopens the file as the worker's
/// user (its mode counts, not its directories').
pub fn library_problem(
    settings: &Settings,
    path: &Path,
    meta: &std::fs::Metadata,
) -> Option<String> {
    let a = settings.privileges.account.as_ref()?;
    (!access::permits(meta.mode(), meta.uid(), meta.gid(), &creds(a), access::READ)).then(|| {
        format!(
            "wsgid's worker library {} is not readable by user {} (mode {:04o}): workers load \
             it as that user",
            path.display(),
            user_of(a),
            meta.mode() & 0o7777
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_files() {
        assert_eq!(app_file("/srv/app.py"), Some(Path::new("/srv/app.py")));
        assert_eq!(app_file("/srv/app.py:make"), Some(Path::new("/srv/app.py")));
        assert_eq!(
            app_file("/srv/a:b/app.wsgi"),
            Some(Path::new("/srv/a:b/app.wsgi"))
        );
        assert_eq!(app_file("mysite.wsgi:application"), None);
    }

    fn settings(account: Option<u32>, allow_root: bool) -> Settings {
        let args = ["wsgid", "app:application", "--fastcgi", "127.0.0.1:9000"];
        let cli = <crate::config::cli::Cli as clap::Parser>::try_parse_from(args).unwrap();
        let ctx = crate::config::resolve::Context {
            cwd: PathBuf::from("/"),
            rust_log: None,
        };
        let mut s = crate::config::resolve::merge(&cli, None, &ctx).unwrap();
        s.privileges.allow_root = allow_root;
        s.privileges.account = account.map(|uid| Account {
            user: crate::config::Id {
                id: uid,
                name: uid.to_string(),
            },
            group: crate::config::Id {
                id: uid,
                name: uid.to_string(),
            },
            groups: None,
            home: None,
        });
        s
    }

    /// Root may run the application only as another user, or with allow_root; a master
    /// that is not root never runs it as root (it could not switch to root).
    #[test]
    fn the_application_as_root() {
        for (account, allow, euid, refused) in [
            (None, false, 0, true),
            (Some(0), false, 0, true),
            (Some(33), false, 0, false),
            (None, true, 0, false),
            (Some(0), true, 0, false),
            (None, false, 1000, false),
        ] {
            let r = root_refusal(&settings(account, allow), euid);
            assert_eq!(r.is_some(), refused, "{account:?} {allow} {euid}: {r:?}");
        }
        let r = root_refusal(&settings(None, false), 0).unwrap();
        assert!(r.contains("--allow-root") && r.contains("--user"), "{r}");
    }

    #[test]
    fn outside_a_chroot() {
        assert_eq!(
            outside(None, Path::new("/usr/bin/python3")),
            Path::new("/usr/bin/python3")
        );
        assert_eq!(
            outside(Some(Path::new("/jail")), Path::new("/usr/bin/python3")),
            Path::new("/jail/usr/bin/python3")
        );
    }
}
