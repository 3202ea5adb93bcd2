//! The privilege settings: the user, group and supplementary groups workers run as (looked
//! up in the system's user database here, in the master, so workers get numbers), their
//! umask and chroot, `allow_root`, `check_ownership`, and the owner and group of the Unix
//! sockets wsgid creates.

use super::{Cli, FileConfig, Merger, Picked, Problems};
use crate::config::settings::{Account, Id, Privileges};
use crate::master::privileges::accounts;

impl Merger<'_> {
    /// `pick`, naming the file's line too: these values are checked against the system
    /// after the file is parsed.
    fn pick_at<T>(
        &self,
        key: &str,
        cli: Option<T>,
        file: Option<T>,
        f: &FileConfig,
    ) -> Option<Picked<T>> {
        let mut p = self.pick(key, cli, file)?;
        if !p.from_cli {
            if let Some(line) = f.lines.get(key) {
                p.name = format!("{}, line {line}", p.name);
            }
        }
        Some(p)
    }
}

/// The privilege settings of `cli` over `f`; every problem is noted in `problems`.
pub(super) fn privileges(
    m: &Merger<'_>,
    cli: &Cli,
    f: &FileConfig,
    problems: &mut Problems,
) -> Privileges {
    let user = m.pick_at("user", cli.user.clone(), f.user.clone(), f);
    let group = m.pick_at("group", cli.group.clone(), f.group.clone(), f);
    let groups = m.pick_at(
        "supplementary_groups",
        super::non_empty(cli.supplementary_groups.clone()),
        f.supplementary_groups.clone(),
        f,
    );
    let account = account(user, group, groups, problems);

    let umask = m
        .pick("umask", cli.umask, f.umask.map(|m| m.0))
        .map(|p| p.value);
    // "" (in the file, or `--chroot ""` over the file's) is no chroot.
    let chroot = match m.pick("chroot", cli.chroot.clone(), f.chroot.clone()) {
        Some(p) if p.value.as_os_str().is_empty() => None,
        p => problems.take(m.path(p)).flatten(),
    };
    let allow_root = m
        .pick("allow_root", cli.allow_root.then_some(true), f.allow_root)
        .is_some_and(|p| p.value);
    let check_ownership = m
        .pick(
            "check_ownership",
            cli.check_ownership.then_some(true),
            f.check_ownership,
        )
        .is_some_and(|p| p.value);
    let socket_owner = m
        .pick_at(
            "socket_owner",
            cli.socket_owner.clone(),
            f.socket_owner.clone(),
            f,
        )
        .and_then(|p| problems.take(accounts::user(&p.value).map(|u| u.id).map_err(|e| p.err(e))));
    let socket_group = m
        .pick_at(
            "socket_group",
            cli.socket_group.clone(),
            f.socket_group.clone(),
            f,
        )
        .and_then(|p| problems.take(accounts::group(&p.value).map_err(|e| p.err(e))));
    Privileges {
        account,
        umask,
        chroot,
        allow_root,
        check_ownership,
        socket_owner,
        socket_group,
    }
}

/// The account workers run as, when any of user, group or supplementary groups is given: an
/// unset user is wsgid's own, an unset group the user's primary group.
fn account(
    user: Option<Picked<String>>,
    group: Option<Picked<String>>,
    groups: Option<Picked<Vec<String>>>,
    problems: &mut Problems,
) -> Option<Account> {
    if user.is_none() && group.is_none() && groups.is_none() {
        return None;
    }
    let entry = match &user {
        Some(p) => problems.take(accounts::user(&p.value).map_err(|e| p.err(e))),
        None => Some(accounts::current_user()),
    };
    let primary = match (&group, &entry) {
        (Some(p), _) => problems.take(accounts::group(&p.value).map_err(|e| p.err(e))),
        (None, Some(e)) => match (&e.primary, &user) {
            (Some(g), _) => Some(g.clone()),
            (None, Some(p)) => {
                problems.add(p.err(format!(
                    "uid {} is not in the user database, so it has no primary group: set \
                     group too",
                    e.id.id
                )));
                None
            }
            (None, None) => None,
        },
        (None, None) => None,
    };
    let supplementary = groups.map(|p| {
        let mut ids: Vec<Id> = Vec::new();
        for spec in p.value.iter().map(|s| s.trim()).filter(|s| !s.is_empty()) {
            let found = problems.take(accounts::group(spec).map_err(|e| p.err(e)));
            if let Some(g) = found.filter(|g| !ids.iter().any(|i| i.id == g.id)) {
                ids.push(g);
            }
        }
        ids
    });
    let (entry, primary) = (entry?, primary?);
    Some(Account {
        user: entry.id,
        group: primary,
        groups: supplementary,
        home: entry.home,
    })
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::super::{merge_for_test, ConfigError, FileConfig};
    use crate::config::settings::{Id, Settings};

    fn settings(args: &[&str], toml: &str) -> Result<Settings, ConfigError> {
        merge_for_test(args, toml, "/etc/wsgid.toml", "/srv")
    }

    fn root() -> Id {
        Id {
            id: 0,
            name: "root".into(),
        }
    }

    #[test]
    fn defaults_switch_nothing() {
        let p = settings(&[], "").unwrap().privileges;
        assert_eq!(p.account, None);
        assert_eq!(p.umask, None);
        assert_eq!(p.chroot, None);
        assert!(!p.allow_root && !p.check_ownership);
        assert_eq!((p.socket_owner, p.socket_group), (None, None));
    }

    #[test]
    fn users_and_groups_are_looked_up_by_name_or_number() {
        let a = settings(&["--user", "root"], "")
            .unwrap()
            .privileges
            .account
            .unwrap();
        assert_eq!((a.user, a.group.clone()), (root(), root()));
        // No supplementary group unless listed.
        assert_eq!(a.groups, None);
        assert_eq!(a.home, Some(PathBuf::from("/root")));
        let a = settings(
            &[],
            "user = 0\ngroup = \"0\"\nsupplementary_groups = [0, \"root\"]",
        )
        .unwrap()
        .privileges
        .account
        .unwrap();
        assert_eq!(a.user, root());
        assert_eq!(a.groups, Some(vec![root()]));
        // The command line's list replaces the file's; "" is an empty list.
        let a = settings(
            &["--supplementary-groups", ""],
            "user = \"root\"\nsupplementary_groups = [\"root\"]",
        )
        .unwrap()
        .privileges
        .account
        .unwrap();
        assert_eq!(a.groups, Some(vec![]));
        let a = settings(&["--supplementary-groups", "root,0", "--user", "0"], "")
            .unwrap()
            .privileges
            .account
            .unwrap();
        assert_eq!(a.groups, Some(vec![root()]));
        // A group alone: the user is wsgid's own.
        let a = settings(&["--group", "0"], "")
            .unwrap()
            .privileges
            .account
            .unwrap();
        assert_eq!(a.user.id, nix::unistd::geteuid().as_raw());
        assert_eq!(a.group, root());
    }

    /// Every unknown user or group is reported, naming its option or its key and line.
    #[test]
    fn unknown_accounts_name_their_key_and_line() {
        let e = settings(
            &["--socket-owner", "nobody-wsgid-x"],
            "threads = 2\nuser = \"nobody-wsgid-u\"\ngroup = \"nobody-wsgid-g\"\n\
             supplementary_groups = [\"root\", \"nobody-wsgid-s\"]\nsocket_group = \"nobody-wsgid-sg\"\n",
        )
        .unwrap_err()
        .0;
        let lines: Vec<&str> = e.lines().collect();
        assert_eq!(
            lines,
            [
                "user in /etc/wsgid.toml, line 2: there is no user named \"nobody-wsgid-u\" on \
                 this system",
                "group in /etc/wsgid.toml, line 3: there is no group named \"nobody-wsgid-g\" on \
                 this system",
                "supplementary_groups in /etc/wsgid.toml, line 4: there is no group named \
                 \"nobody-wsgid-s\" on this system",
                "--socket-owner: there is no user named \"nobody-wsgid-x\" on this system",
                "socket_group in /etc/wsgid.toml, line 5: there is no group named \
                 \"nobody-wsgid-sg\" on this system",
            ],
            "{e}"
        );
        let e = settings(&["--user", "3999999"], "").unwrap_err().0;
        assert_eq!(
            e,
            "--user: uid 3999999 is not in the user database, so it has no primary group: set \
             group too"
        );
        let a = settings(&["--user", "3999999", "--group", "3999999"], "")
            .unwrap()
            .privileges
            .account
            .unwrap();
        assert_eq!((a.user.id, a.group.id, a.home), (3999999, 3999999, None));
    }

    #[test]
    fn umask_chroot_and_switches() {
        let p = settings(&["--umask", "027"], "chroot = \"jail\"\nallow_root = true")
            .unwrap()
            .privileges;
        assert_eq!(p.umask, Some(0o027));
        // Relative to the file's directory, like every path of the file.
        assert_eq!(p.chroot, Some(PathBuf::from("/etc/jail")));
        assert!(p.allow_root);
        let p = settings(
            &["--chroot", "", "--check-ownership", "--allow-root"],
            "chroot = \"/jail\"\numask = \"0077\"\ncheck_ownership = false",
        )
        .unwrap()
        .privileges;
        assert_eq!((p.chroot, p.umask), (None, Some(0o077)));
        assert!(p.allow_root && p.check_ownership);
        assert_eq!(
            settings(&[], "chroot = \"\"").unwrap().privileges.chroot,
            None
        );
    }

    #[test]
    fn wrong_kinds_in_the_file() {
        for (toml, message) in [
            (
                "user = -1",
                "user, line 1: expected a name, or a number such as 33, got the number -1 (not a \
                 user or group number)",
            ),
            (
                "group = true",
                "group, line 1: expected a name, or a number such as 33, got true",
            ),
            (
                "supplementary_groups = \"wheel\"",
                "supplementary_groups, line 1: expected a list of group names or numbers, such \
                 as [\"www-data\", 1001], got the string \"wheel\"",
            ),
            (
                "supplementary_groups = [\"a\", 1.5]",
                "supplementary_groups, line 1: item 2 of the list: expected a name, or a number \
                 such as 33, got the number 1.5",
            ),
            (
                "allow_root = \"yes\"",
                "allow_root, line 1: expected true or false, got the string \"yes\"",
            ),
            (
                "umask = \"0999\"",
                "umask, line 1: \"0999\" is not an octal mode such as 0660",
            ),
        ] {
            assert_eq!(FileConfig::parse(toml).unwrap_err(), message, "{toml}");
        }
    }
}
