//! Flags as names, for trace records. A record carries its flags raw ([`Flags`]) to the
//! writer thread, which names them: the request path never formats them.

use serde::{Serialize, Serializer};

/// A request's flags, raw, with what kind of flags they are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flags {
    Open(i32),
    Mode(u32),
    Rename(u32),
    Xattr(i32),
    Access(i32),
    Fallocate(i32),
    Whence(i32),
    Ioctl(u32),
    /// copy_file_range's destination: inode, handle, offset.
    CopyTo(u64, u64, u64),
    /// The attributes a setattr sets, as the kernel's `FATTR_*` bits ([`fattr`]).
    Setattr(u32),
    /// The `FOPEN_*` flags an open was answered with.
    Fopen(u32),
}

/// The kernel's `FATTR_*` bits (`fuse_setattr_in.valid`), which a setattr record names.
pub mod fattr {
    pub const MODE: u32 = 1 << 0;
    pub const UID: u32 = 1 << 1;
    pub const GID: u32 = 1 << 2;
    pub const SIZE: u32 = 1 << 3;
    pub const ATIME: u32 = 1 << 4;
    pub const MTIME: u32 = 1 << 5;
    pub const FH: u32 = 1 << 6;
    pub const ATIME_NOW: u32 = 1 << 7;
    pub const MTIME_NOW: u32 = 1 << 8;
    pub const CTIME: u32 = 1 << 10;
    pub const KILL_SUIDGID: u32 = 1 << 11;
}

impl Flags {
    /// The flags as a trace shows them (`O_WRONLY|O_CREAT`, `0o644`, `SEEK_DATA`, ...).
    pub fn describe(self) -> String {
        match self {
            Flags::Open(f) => open_flags(f),
            Flags::Mode(m) => format!("{m:#o}"),
            Flags::Rename(f) => rename_flags(f),
            Flags::Xattr(f) => xattr_flags(f),
            Flags::Access(m) => access_mask(m),
            Flags::Fallocate(m) => fallocate_mode(m),
            Flags::Whence(w) => whence(w),
            Flags::Ioctl(cmd) => format!("cmd={cmd:#x}"),
            Flags::CopyTo(ino, fh, off) => format!("to ino={ino} fh={fh} off={off}"),
            Flags::Setattr(valid) => setattr_valid(valid),
            Flags::Fopen(f) => fopen_flags(f),
        }
    }
}

impl Serialize for Flags {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.describe())
    }
}

/// `open(2)` flags: the access mode and every known flag, `|`-joined.
pub fn open_flags(flags: i32) -> String {
    let mut out = vec![match flags & libc::O_ACCMODE {
        libc::O_RDONLY => "O_RDONLY",
        libc::O_WRONLY => "O_WRONLY",
        libc::O_RDWR => "O_RDWR",
        _ => "O_ACCMODE",
    }
    .to_string()];
    let known: [(i32, &str); 15] = [
        (libc::O_CREAT, "O_CREAT"),
        (libc::O_EXCL, "O_EXCL"),
        (libc::O_NOCTTY, "O_NOCTTY"),
        (libc::O_TRUNC, "O_TRUNC"),
        (libc::O_APPEND, "O_APPEND"),
        (libc::O_NONBLOCK, "O_NONBLOCK"),
        (libc::O_DSYNC, "O_DSYNC"),
        (libc::O_DIRECT, "O_DIRECT"),
        // The kernel's O_LARGEFILE; libc calls it 0 on 64-bit targets, where it is implied.
        (0o100000, "O_LARGEFILE"),
        // Before O_DIRECTORY, whose bit it includes.
        (libc::O_TMPFILE, "O_TMPFILE"),
        (libc::O_DIRECTORY, "O_DIRECTORY"),
        (libc::O_NOFOLLOW, "O_NOFOLLOW"),
        (libc::O_NOATIME, "O_NOATIME"),
        (libc::O_CLOEXEC, "O_CLOEXEC"),
        (libc::O_SYNC & !libc::O_DSYNC, "O_SYNC"),
    ];
    let mut rest = flags & !libc::O_ACCMODE;
    for (bit, name) in known {
        if rest & bit == bit && bit != 0 {
            out.push(name.to_string());
            rest &= !bit;
        }
    }
    if rest != 0 {
        out.push(format!("{rest:#x}"));
    }
    out.join("|")
}

/// Flags from a table of (bit, name), `|`-joined; unknown bits in hex; "0" for none.
pub fn named(flags: u64, table: &[(u64, &str)]) -> String {
    let mut out = Vec::new();
    let mut rest = flags;
    for &(bit, name) in table {
        if bit != 0 && rest & bit == bit {
            out.push(name.to_string());
            rest &= !bit;
        }
    }
    if rest != 0 {
        out.push(format!("{rest:#x}"));
    }
    if out.is_empty() {
        "0".to_string()
    } else {
        out.join("|")
    }
}

pub fn setattr_valid(valid: u32) -> String {
    named(
        valid as u64,
        &[
            (fattr::MODE as u64, "FATTR_MODE"),
            (fattr::UID as u64, "FATTR_UID"),
            (fattr::GID as u64, "FATTR_GID"),
            (fattr::SIZE as u64, "FATTR_SIZE"),
            (fattr::ATIME as u64, "FATTR_ATIME"),
            (fattr::MTIME as u64, "FATTR_MTIME"),
            (fattr::FH as u64, "FATTR_FH"),
            (fattr::ATIME_NOW as u64, "FATTR_ATIME_NOW"),
            (fattr::MTIME_NOW as u64, "FATTR_MTIME_NOW"),
            (fattr::CTIME as u64, "FATTR_CTIME"),
            (fattr::KILL_SUIDGID as u64, "FATTR_KILL_SUIDGID"),
        ],
    )
}

pub fn fopen_flags(flags: u32) -> String {
    use crate::request::{FOPEN_CACHE_DIR, FOPEN_DIRECT_IO, FOPEN_KEEP_CACHE};
    named(
        flags as u64,
        &[
            (FOPEN_DIRECT_IO as u64, "FOPEN_DIRECT_IO"),
            (FOPEN_KEEP_CACHE as u64, "FOPEN_KEEP_CACHE"),
            (FOPEN_CACHE_DIR as u64, "FOPEN_CACHE_DIR"),
        ],
    )
}

pub fn rename_flags(flags: u32) -> String {
    named(
        flags as u64,
        &[
            (libc::RENAME_NOREPLACE as u64, "RENAME_NOREPLACE"),
            (libc::RENAME_EXCHANGE as u64, "RENAME_EXCHANGE"),
            (libc::RENAME_WHITEOUT as u64, "RENAME_WHITEOUT"),
        ],
    )
}

pub fn xattr_flags(flags: i32) -> String {
    named(
        flags as u64,
        &[
            (libc::XATTR_CREATE as u64, "XATTR_CREATE"),
            (libc::XATTR_REPLACE as u64, "XATTR_REPLACE"),
        ],
    )
}

pub fn fallocate_mode(mode: i32) -> String {
    named(
        mode as u64,
        &[
            (libc::FALLOC_FL_KEEP_SIZE as u64, "FALLOC_FL_KEEP_SIZE"),
            (libc::FALLOC_FL_PUNCH_HOLE as u64, "FALLOC_FL_PUNCH_HOLE"),
            (libc::FALLOC_FL_ZERO_RANGE as u64, "FALLOC_FL_ZERO_RANGE"),
            (
                libc::FALLOC_FL_COLLAPSE_RANGE as u64,
                "FALLOC_FL_COLLAPSE_RANGE",
            ),
            (
                libc::FALLOC_FL_INSERT_RANGE as u64,
                "FALLOC_FL_INSERT_RANGE",
            ),
        ],
    )
}

pub fn access_mask(mask: i32) -> String {
    if mask == libc::F_OK {
        return "F_OK".to_string();
    }
    named(
        mask as u64,
        &[
            (libc::R_OK as u64, "R_OK"),
            (libc::W_OK as u64, "W_OK"),
            (libc::X_OK as u64, "X_OK"),
        ],
    )
}

pub fn whence(whence: i32) -> String {
    match whence {
        libc::SEEK_SET => "SEEK_SET",
        libc::SEEK_CUR => "SEEK_CUR",
        libc::SEEK_END => "SEEK_END",
        libc::SEEK_DATA => "SEEK_DATA",
        libc::SEEK_HOLE => "SEEK_HOLE",
        _ => return whence.to_string(),
    }
    .to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn open_flags_read_like_c() {
        let f = libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC;
        assert_eq!(super::open_flags(f), "O_WRONLY|O_CREAT|O_TRUNC");
        assert_eq!(super::open_flags(0), "O_RDONLY");
        let tmp = libc::O_RDWR | libc::O_TMPFILE | libc::O_EXCL;
        assert_eq!(super::open_flags(tmp), "O_RDWR|O_EXCL|O_TMPFILE");
        let dir = libc::O_RDONLY | libc::O_DIRECTORY;
        assert_eq!(super::open_flags(dir), "O_RDONLY|O_DIRECTORY");
    }

    #[test]
    fn raw_flags_serialise_as_their_names() {
        let json = serde_json::to_string(&super::Flags::Mode(0o644)).unwrap();
        assert_eq!(json, "\"0o644\"");
        let json = serde_json::to_string(&super::Flags::Rename(libc::RENAME_NOREPLACE)).unwrap();
        assert_eq!(json, "\"RENAME_NOREPLACE\"");
        let valid = super::fattr::MODE | super::fattr::MTIME | super::fattr::MTIME_NOW;
        assert_eq!(
            super::Flags::Setattr(valid).describe(),
            "FATTR_MODE|FATTR_MTIME|FATTR_MTIME_NOW"
        );
        assert_eq!(
            super::Flags::Fopen(2 | 8).describe(),
            "FOPEN_KEEP_CACHE|FOPEN_CACHE_DIR"
        );
    }
}
