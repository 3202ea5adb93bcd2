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
