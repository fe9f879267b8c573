//! When a change to a file clears its setuid and setgid bits, by the rules Linux applies to
//! tmpfs (`setattr_should_drop_suidgid` and `setattr_should_drop_sgid` in fs/attr.c,
//! `chown_common` in fs/open.c).
//!
//! memfs negotiates `FUSE_HANDLE_KILLPRIV_V2`, which spares the kernel a
//! `getxattr(security.capability)` round trip per write and chown, and in exchange leaves the
//! clearing to memfs. The kernel flags each request that must clear: a write, truncate or
//! truncating open by a caller without `CAP_FSETID`, and every chown of a non-directory. The
//! request layer then calls [`Fs::clear_setid`] for that request, and this file decides which
//! bits go.

use std::time::SystemTime;

use super::attr::{Caller, FileKind};
use super::error::Result;
use super::Fs;

const S_ISUID: u16 = libc::S_ISUID as u16;
const S_ISGID: u16 = libc::S_ISGID as u16;
const S_IXGRP: u16 = libc::S_IXGRP as u16;

/// `CAP_FSETID`'s bit in a capability set.
const CAP_FSETID: u32 = 4;

/// A change the kernel flagged as one that clears setuid/setgid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetidChange {
    /// A write, a truncate, or an open with `O_TRUNC`; the kernel flags it only for a
    /// caller without `CAP_FSETID`.
    Modify,
    /// A chown or chgrp; the kernel flags every one, whoever the caller.
    Chown,
}

impl Fs {
    /// Clears the setuid/setgid bits of `ino` that `change` by `caller` drops. The kernel
    /// leaves this to memfs (`FUSE_HANDLE_KILLPRIV_V2`) and asks for it per request.
    /// Returns whether the mode changed.
    pub fn clear_setid(&self, ino: u64, change: SetidChange, caller: Caller) -> Result<bool> {
        let inode = self.namespace.get(ino)?;
        // Writes only clear regular files' bits; a chown clears any non-directory's.
        let applies = match change {
            SetidChange::Modify => inode.kind == FileKind::Regular,
            SetidChange::Chown => inode.kind != FileKind::Directory,
        };
        if !applies || inode.data.read().meta.perm & (S_ISUID | S_ISGID) == 0 {
            return Ok(false);
        }
        let mut data = inode.data.write();
        let meta = &mut data.meta;
        let perm = perm_after(meta.perm, meta.gid, change, &Process(caller));
        if perm == meta.perm {
            return Ok(false);
        }
        meta.perm = perm;
        meta.ctime = SystemTime::now();
        drop(data);
        self.namespace.merkle_changed(&inode);
        Ok(true)
    }
}

/// What the rules need to know of the process making a change.
trait Credentials {
    /// Whether the process is in group `gid` (its fsgid or a supplementary group).
    fn in_group(&self, gid: u32) -> bool;
    /// Whether the process holds `CAP_FSETID`.
    fn has_cap_fsetid(&self) -> bool;
}

/// The permission bits left after `change` by `who` to a file of group `file_gid`.
fn perm_after(perm: u16, file_gid: u32, change: SetidChange, who: &dyn Credentials) -> u16 {
    // setuid always goes.
    let mut kill = S_ISUID;
    // setgid with group execute marks a setgid program, and goes like setuid. Without group
    // execute it marks mandatory locking, and stays for members of the file's group and
    // holders of CAP_FSETID (the kernel flags a modify only when the caller lacks it).
    if perm & S_ISGID != 0
        && (perm & S_IXGRP != 0
            || !(who.in_group(file_gid) || change == SetidChange::Chown && who.has_cap_fsetid()))
    {
        kill |= S_ISGID;
    }
    perm & !kill
}

/// The process that sent a request, known by its ids; its supplementary groups and
/// capabilities come from /proc, read only when a rule needs them.
struct Process(Caller);

impl Credentials for Process {
    fn in_group(&self, gid: u32) -> bool {
        self.0.gid == gid
            || status_field(self.0.pid, "Groups:").is_some_and(|groups| {
                groups
                    .split_whitespace()
                    .any(|g| g.parse::<u32>() == Ok(gid))
            })
    }

    fn has_cap_fsetid(&self) -> bool {
        match status_field(self.0.pid, "CapEff:")
            .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        {
            Some(caps) => caps & (1 << CAP_FSETID) != 0,
            // The process is gone: judge by its user, as a kernel without capabilities would.
            None => self.0.uid == 0,
        }
    }
}

/// A line of /proc/PID/status after its `name`, if the process still exists.
fn status_field(pid: u32, name: &str) -> Option<String> {
    if pid == 0 {
        return None;
    }
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(name))
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A caller with a fixed group list and capability.
    struct Fixed {
        groups: &'static [u32],
        cap_fsetid: bool,
    }

    impl Credentials for Fixed {
        fn in_group(&self, gid: u32) -> bool {
            self.groups.contains(&gid)
        }
        fn has_cap_fsetid(&self) -> bool {
            self.cap_fsetid
        }
    }

    const MEMBER: Fixed = Fixed {
        groups: &[100],
        cap_fsetid: false,
    };
    const STRANGER: Fixed = Fixed {
        groups: &[200],
        cap_fsetid: false,
    };
    const ROOT: Fixed = Fixed {
        groups: &[0],
        cap_fsetid: true,
    };

    fn after(perm: u16, change: SetidChange, who: &Fixed) -> u16 {
        perm_after(perm, 100, change, who)
    }

    #[test]
    fn a_modify_clears_setuid_and_setgid_programs() {
        assert_eq!(after(0o6755, SetidChange::Modify, &MEMBER), 0o755);
        assert_eq!(after(0o4755, SetidChange::Modify, &STRANGER), 0o755);
        assert_eq!(after(0o2775, SetidChange::Modify, &MEMBER), 0o775);
    }

    #[test]
    fn setgid_without_group_execute_stays_for_members_only() {
        assert_eq!(after(0o2745, SetidChange::Modify, &MEMBER), 0o2745);
        assert_eq!(after(0o2745, SetidChange::Modify, &STRANGER), 0o745);
        assert_eq!(after(0o6645, SetidChange::Modify, &MEMBER), 0o2645);
    }

    #[test]
    fn a_chown_clears_setuid_even_for_root_and_spares_its_locking_setgid() {
        assert_eq!(after(0o6755, SetidChange::Chown, &ROOT), 0o755);
        assert_eq!(after(0o6745, SetidChange::Chown, &ROOT), 0o2745);
        assert_eq!(after(0o2745, SetidChange::Chown, &STRANGER), 0o745);
        assert_eq!(after(0o2745, SetidChange::Chown, &MEMBER), 0o2745);
    }

    #[test]
    fn other_bits_are_untouched() {
        assert_eq!(after(0o1777, SetidChange::Modify, &STRANGER), 0o1777);
        assert_eq!(after(0o644, SetidChange::Chown, &ROOT), 0o644);
    }

    #[test]
    fn this_process_is_seen_through_proc() {
        let me = Process(Caller {
            uid: unsafe { libc::geteuid() },
            gid: unsafe { libc::getegid() },
            pid: std::process::id(),
        });
        assert!(me.in_group(unsafe { libc::getegid() }));
        // Tests run as root with every capability, or as a user with none.
        assert_eq!(me.has_cap_fsetid(), unsafe { libc::geteuid() } == 0);
    }
}
