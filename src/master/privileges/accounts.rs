//! Users and groups by name or number, looked up in the system's user database (NSS:
//! `/etc/passwd`, `/etc/group`, or whatever `nsswitch.conf` names) by the master, before it
//! starts any worker: a worker changes credentials between fork and exec, where no lookup
//! may run.

use std::path::PathBuf;

use nix::unistd::{Gid, Group, Uid, User};

use crate::config::Id;

/// A user as found in the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserEntry {
    pub id: Id,
    /// Its primary group; None for a number the database does not know.
    pub primary: Option<Id>,
    pub home: Option<PathBuf>,
}

/// A number, when `spec` is all digits (`"33"`): a name is never all digits.
fn number(spec: &str) -> Option<Result<u32, String>> {
    let t = spec.trim();
    if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(
        t.parse::<u32>()
            .map_err(|_| format!("{t} is not a valid user or group number")),
    )
}

/// The user named (or numbered) `spec`. A number the database does not know is accepted,
/// without a name, home or primary group.
pub fn user(spec: &str) -> Result<UserEntry, String> {
    let found = match number(spec) {
        Some(n) => {
            let n = n?;
            match User::from_uid(Uid::from_raw(n)) {
                Ok(Some(u)) => u,
                Ok(None) => {
                    return Ok(UserEntry {
                        id: Id {
                            id: n,
                            name: n.to_string(),
                        },
                        primary: None,
                        home: None,
                    })
                }
                Err(e) => return Err(format!("cannot look up user {n}: {e}")),
            }
        }
        None => match User::from_name(spec) {
            Ok(Some(u)) => u,
            Ok(None) => return Err(format!("there is no user named {spec:?} on this system")),
            Err(e) => return Err(format!("cannot look up user {spec:?}: {e}")),
        },
    };
    Ok(UserEntry {
        id: Id {
            id: found.uid.as_raw(),
            name: found.name,
        },
        primary: Some(group_id(found.gid.as_raw())),
        home: Some(found.dir),
    })
}

/// The group named (or numbered) `spec`; a number the database does not know is accepted.
pub fn group(spec: &str) -> Result<Id, String> {
    match number(spec) {
        Some(n) => Ok(group_id(n?)),
        None => match Group::from_name(spec) {
            Ok(Some(g)) => Ok(Id {
                id: g.gid.as_raw(),
                name: g.name,
            }),
            Ok(None) => Err(format!("there is no group named {spec:?} on this system")),
            Err(e) => Err(format!("cannot look up group {spec:?}: {e}")),
        },
    }
}

/// Group `gid`, named when the database knows it.
pub fn group_id(gid: u32) -> Id {
    let name = match Group::from_gid(Gid::from_raw(gid)) {
        Ok(Some(g)) => g.name,
        _ => gid.to_string(),
    };
    Id { id: gid, name }
}

/// User `uid`, named when the database knows it.
pub fn user_id(uid: u32) -> Id {
    let name = match User::from_uid(Uid::from_raw(uid)) {
        Ok(Some(u)) => u.name,
        _ => uid.to_string(),
    };
    Id { id: uid, name }
}

/// This process's effective user, with its home from the database, and its effective group
/// as the primary one.
pub fn current_user() -> UserEntry {
    let uid = nix::unistd::geteuid().as_raw();
    let found = user(&uid.to_string()).ok();
    UserEntry {
        id: found
            .as_ref()
            .map_or_else(|| user_id(uid), |u| u.id.clone()),
        primary: Some(group_id(nix::unistd::getegid().as_raw())),
        home: found.and_then(|u| u.home),
    }
}

/// `www-data (uid 33)`, or `uid 1234` for a number without a name.
pub fn describe_user(id: &Id) -> String {
    if id.name == id.id.to_string() {
        format!("uid {}", id.id)
    } else {
        format!("{} (uid {})", id.name, id.id)
    }
}

/// `www-data (gid 33)`, or `gid 1234`.
pub fn describe_group(id: &Id) -> String {
    if id.name == id.id.to_string() {
        format!("gid {}", id.id)
    } else {
        format!("{} (gid {})", id.name, id.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_by_name_and_number() {
        let by_name = user("root").unwrap();
        assert_eq!(by_name.id.id, 0);
        assert_eq!(by_name.primary.as_ref().map(|g| g.id), Some(0));
        assert_eq!(user("0").unwrap(), by_name);
        assert_eq!(
            group("root").unwrap(),
            Id {
                id: 0,
                name: "root".into()
            }
        );
        assert_eq!(group("0").unwrap().name, "root");
    }

    #[test]
    fn unknown_names_are_errors_unknown_numbers_are_not() {
        let e = user("no-such-user-wsgid").unwrap_err();
        assert_eq!(
            e,
            "there is no user named \"no-such-user-wsgid\" on this system"
        );
        let e = group("no-such-group-wsgid").unwrap_err();
        assert_eq!(
            e,
            "there is no group named \"no-such-group-wsgid\" on this system"
        );
        let u = user("3999999").unwrap();
        assert_eq!(u.id.name, "3999999");
        assert_eq!(u.primary, None);
        assert_eq!(describe_user(&u.id), "uid 3999999");
        assert_eq!(group("3999999").unwrap().name, "3999999");
        assert!(user("99999999999").unwrap_err().contains("not a valid"));
    }

    #[test]
    fn descriptions() {
        let root = Id {
            id: 0,
            name: "root".into(),
        };
        assert_eq!(describe_user(&root), "root (uid 0)");
        assert_eq!(describe_group(&root), "root (gid 0)");
    }
}
