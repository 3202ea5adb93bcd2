//! The privilege drop itself: a `Plan` prepared in the master (every value a worker's
//! credential change needs, allocated before the fork), and `Plan::apply`, which the child
//! runs between fork and exec, making only system calls.
//!
//! In the child, in this order: chroot and `chdir("/")`; while still privileged, every
//! capability leaves the bounding set and the ambient set is cleared; supplementary groups,
//! then gid, then uid (real, effective and saved); the umask; the working directory,
//! entered as the application's user; the permitted, effective and inheritable sets
//! emptied; no_new_privs, so nothing the application executes can gain privileges (setuid
//! programs, file capabilities). An application allowed to run as root keeps root's
//! capabilities: that is what `allow_root` asks for.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::config::{Account, Privileges};

/// `_LINUX_CAPABILITY_VERSION_3`: 64-bit capability sets, as two 32-bit words.
const CAPABILITY_VERSION_3: u32 = 0x2008_0522;
/// CAP_SETGID, CAP_SETUID, CAP_SETPCAP (linux/capability.h).
pub const CAP_SETGID: u32 = 6;
pub const CAP_SETUID: u32 = 7;
pub const CAP_SETPCAP: u32 = 8;

/// `struct __user_cap_header_struct`.
#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

/// `struct __user_cap_data_struct`; version 3 takes two of them.
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// Whether this process holds capability `cap` in its effective set.
pub fn has_capability(cap: u32) -> bool {
    let mut header = CapHeader {
        version: CAPABILITY_VERSION_3,
        pid: 0,
    };
    let mut data = [CapData::default(); 2];
    // SAFETY: capget writes at most two `CapData` (version 3) into `data`, which has room
    // for two, and reads `header`; both live across the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_capget,
            &mut header as *mut CapHeader,
            data.as_mut_ptr(),
        )
    };
    let (word, bit) = ((cap / 32) as usize, cap % 32);
    r == 0 && word < 2 && data[word].effective & (1 << bit) != 0
}

/// The highest capability number this kernel knows.
fn last_capability() -> Result<libc::c_int, String> {
    let path = "/proc/sys/kernel/cap_last_cap";
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {e}"))?;
    text.trim()
        .parse()
        .map_err(|_| format!("{path} holds {text:?}, not a number"))
}

/// The ids a worker switches to.
#[derive(Debug)]
struct Ids {
    uid: libc::uid_t,
    gid: libc::gid_t,
    /// The supplementary groups to set; None: left as they are (no switch, or one this
    /// master is not privileged to make, refused earlier).
    groups: Option<Vec<libc::gid_t>>,
}

/// What the child does, prepared before the fork.
#[derive(Debug)]
pub struct Plan {
    chroot: Option<CString>,
    chdir: Option<CString>,
    ids: Option<Ids>,
    umask: Option<libc::mode_t>,
    /// Capabilities 0 to this leave the bounding set: when the master may drop them
    /// (CAP_SETPCAP) and the application does not run as root.
    bounding: Option<libc::c_int>,
    /// Empty the permitted, effective and inheritable sets (not for a root application).
    clear_capabilities: bool,
}

/// A step of `Plan::apply`, reported by the child when it fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Step {
    Chroot = 1,
    Bounding,
    Ambient,
    Groups,
    Gid,
    Uid,
    Chdir,
    Capabilities,
    NoNewPrivs,
}

impl Step {
    pub fn from_u8(b: u8) -> Option<Step> {
        use Step::*;
        [
            Chroot,
            Bounding,
            Ambient,
            Groups,
            Gid,
            Uid,
            Chdir,
            Capabilities,
            NoNewPrivs,
        ]
        .into_iter()
        .find(|s| *s as u8 == b)
    }
}

/// A failed step and its errno.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failed {
    pub step: Step,
    pub errno: i32,
}

fn c_path(p: &Path) -> Result<CString, String> {
    CString::new(p.as_os_str().as_bytes())
        .map_err(|_| format!("{} contains a NUL byte", p.display()))
}

/// Whether `want` (as a set) differs from this process's supplementary groups.
fn groups_differ(want: &[u32]) -> bool {
    let Ok(have) = nix::unistd::getgroups() else {
        return true;
    };
    let mut have: Vec<u32> = have.into_iter().map(|g| g.as_raw()).collect();
    let mut want = want.to_vec();
    for v in [&mut have, &mut want] {
        v.sort_unstable();
        v.dedup();
    }
    have != want
}

/// The supplementary groups a worker for `a` must set, if they change: the configured
/// ones; none when it switches to another user or group; else (staying this process's
/// user and group) the master's, unchanged.
pub fn groups_to_set(a: &Account) -> Option<Vec<u32>> {
    let switching = a.user.id != nix::unistd::geteuid().as_raw()
        || a.group.id != nix::unistd::getegid().as_raw();
    let groups: Vec<u32> = match &a.groups {
        Some(list) => list.iter().map(|g| g.id).collect(),
        None if switching => Vec::new(),
        None => return None,
    };
    groups_differ(&groups).then_some(groups)
}

impl Plan {
    /// The plan for `p`, with `chdir` the working directory to enter (as seen inside the
    /// chroot, if any).
    pub fn prepare(p: &Privileges, chdir: Option<&Path>) -> Result<Plan, String> {
        let euid = nix::unistd::geteuid().as_raw();
        let ids = p.account.as_ref().map(|a| Ids {
            uid: a.user.id,
            gid: a.group.id,
            groups: groups_to_set(a),
        });
        let app_uid = ids.as_ref().map_or(euid, |i| i.uid);
        let as_root = app_uid == 0;
        let bounding = if !as_root && has_capability(CAP_SETPCAP) {
            Some(last_capability()?)
        } else {
            None
        };
        Ok(Plan {
            chroot: p.chroot.as_deref().map(c_path).transpose()?,
            chdir: chdir.map(c_path).transpose()?,
            ids,
            umask: p.umask.map(|m| m as libc::mode_t),
            bounding,
            clear_capabilities: !as_root,
        })
    }

    /// Applies the plan to this process. Only for the child between fork and exec (in the
    /// master it would drop the master's own privileges): it is async-signal-safe, making
    /// system calls on values prepared before the fork, and allocates nothing.
    pub fn apply(&self) -> Result<(), Failed> {
        let fail = |step: Step| Failed {
            step,
            errno: std::io::Error::last_os_error().raw_os_error().unwrap_or(0),
        };
        if let Some(root) = &self.chroot {
            // SAFETY: both paths are NUL-terminated strings that live across the calls.
            let r = unsafe {
                if libc::chroot(root.as_ptr()) == -1 {
                    -1
                } else {
                    libc::chdir(c"/".as_ptr())
                }
            };
            if r == -1 {
                return Err(fail(Step::Chroot));
            }
        }
        if let Some(last) = self.bounding {
            for cap in 0..=last {
                // SAFETY: prctl with integer arguments only; no memory is passed.
                let r =
                    unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) };
                if r == -1 {
                    return Err(fail(Step::Bounding));
                }
            }
        }
        // SAFETY: prctl with integer arguments only.
        let r = unsafe {
            libc::prctl(
                libc::PR_CAP_AMBIENT,
                libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
                0,
                0,
                0,
            )
        };
        // EINVAL: a kernel without ambient capabilities (before 4.3), so none to clear.
        if r == -1 && std::io::Error::last_os_error().raw_os_error() != Some(libc::EINVAL) {
            return Err(fail(Step::Ambient));
        }
        if let Some(ids) = &self.ids {
            if let Some(groups) = &ids.groups {
                // SAFETY: `groups` is a live slice of `groups.len()` gid_t values; setgroups
                // only reads them.
                if unsafe { libc::setgroups(groups.len(), groups.as_ptr()) } == -1 {
                    return Err(fail(Step::Groups));
                }
            }
            // SAFETY: integer arguments only.
            if unsafe { libc::setresgid(ids.gid, ids.gid, ids.gid) } == -1 {
                return Err(fail(Step::Gid));
            }
            // SAFETY: integer arguments only.
            if unsafe { libc::setresuid(ids.uid, ids.uid, ids.uid) } == -1 {
                return Err(fail(Step::Uid));
            }
        }
        if let Some(mask) = self.umask {
            // SAFETY: integer argument only; umask cannot fail.
            unsafe { libc::umask(mask) };
        }
        if let Some(dir) = &self.chdir {
            // SAFETY: a NUL-terminated string that lives across the call.
            if unsafe { libc::chdir(dir.as_ptr()) } == -1 {
                return Err(fail(Step::Chdir));
            }
        }
        if self.clear_capabilities {
            let mut header = CapHeader {
                version: CAPABILITY_VERSION_3,
                pid: 0,
            };
            let data = [CapData::default(); 2];
            // SAFETY: capset reads `header` and two `CapData` (version 3) from `data`, both
            // on this stack frame for the duration of the call.
            let r = unsafe {
                libc::syscall(
                    libc::SYS_capset,
                    &mut header as *mut CapHeader,
                    data.as_ptr(),
                )
            };
            if r == -1 {
                return Err(fail(Step::Capabilities));
            }
        }
        // SAFETY: prctl with integer arguments only.
        if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } == -1 {
            return Err(fail(Step::NoNewPrivs));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_round_trip_through_a_byte() {
        for b in 0..=255u8 {
            if let Some(s) = Step::from_u8(b) {
                assert_eq!(s as u8, b);
            }
        }
        assert_eq!(Step::from_u8(1), Some(Step::Chroot));
        assert_eq!(Step::from_u8(9), Some(Step::NoNewPrivs));
        assert_eq!(Step::from_u8(0), None);
    }

    #[test]
    fn capabilities_of_this_process_can_be_read() {
        // Root in an unrestricted container holds CAP_SETUID; anyone else normally not.
        let root = nix::unistd::geteuid().is_root();
        if !root {
            assert!(!has_capability(CAP_SETUID));
        }
        assert!(last_capability().unwrap() >= CAP_SETPCAP as libc::c_int);
    }
}
