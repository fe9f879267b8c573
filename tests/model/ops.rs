//! The operations a sequence is made of, their generators, and what they return.

use memfs::fs::{Errno, FileKind};
use proptest::prelude::*;

pub(crate) const MAX: u64 = i64::MAX as u64;

#[derive(Clone, Debug)]
pub(crate) enum Name {
    /// n0..n2: names collide often.
    Pool(u8),
    /// A valid name of exactly 255 bytes.
    Long(u8),
    /// 256 bytes.
    TooLong,
    Empty,
    Dot,
    DotDot,
    Slash,
}

impl Name {
    pub(crate) fn bytes(&self) -> Vec<u8> {
        match self {
            Name::Pool(n) => format!("n{n}").into_bytes(),
            Name::Long(n) => {
                let mut v = vec![b'L'; 254];
                v.push(b'0' + n);
                v
            }
            Name::TooLong => vec![b'x'; 256],
            Name::Empty => Vec::new(),
            Name::Dot => b".".to_vec(),
            Name::DotDot => b"..".to_vec(),
            Name::Slash => b"a/b".to_vec(),
        }
    }
}

#[derive(Clone, Debug)]
pub(crate) enum Off {
    Small(u32),
    /// MAX plus this (may be past MAX, which no syscall can ask for but the core must
    /// refuse).
    Huge(i32),
}

impl Off {
    pub(crate) fn get(&self) -> u64 {
        match *self {
            Off::Small(x) => x as u64 % 300_000,
            Off::Huge(d) => (MAX as i128 + d as i128) as u64,
        }
    }
}

/// Directories are chosen by index into the model's directories (sorted by path).
pub(crate) type D = u8;

#[derive(Clone, Debug)]
pub(crate) enum Op {
    Mknod(D, Name),
    Mkdir(D, Name),
    Symlink(D, Name),
    /// O_CREAT (| O_EXCL).
    Create(D, Name, bool),
    Unlink(D, Name),
    Rmdir(D, Name),
    Rename(D, Name, D, Name, u8),
    Link(D, Name, D, Name),
    Lookup(D, Name),
    Write(D, Name, Off, u32, u8),
    Read(D, Name, Off, u32),
    Truncate(D, Name, Off),
    Fallocate(D, Name, Off, u32, u8),
    Readlink(D, Name),
}

pub(crate) fn name() -> impl Strategy<Value = Name> {
    prop_oneof![
        40 => (0u8..3).prop_map(Name::Pool),
        1 => (0u8..2).prop_map(Name::Long),
        1 => Just(Name::TooLong),
        1 => Just(Name::Empty),
        1 => Just(Name::Dot),
        1 => Just(Name::DotDot),
        1 => Just(Name::Slash),
    ]
}

pub(crate) fn off() -> impl Strategy<Value = Off> {
    prop_oneof![
        6 => any::<u32>().prop_map(Off::Small),
        1 => (-70_000i32..70_000).prop_map(Off::Huge),
    ]
}

pub(crate) fn op() -> impl Strategy<Value = Op> {
    let d = || 0u8..8;
    prop_oneof![
        3 => (d(), name()).prop_map(|(d, n)| Op::Mknod(d, n)),
        3 => (d(), name()).prop_map(|(d, n)| Op::Mkdir(d, n)),
        1 => (d(), name()).prop_map(|(d, n)| Op::Symlink(d, n)),
        3 => (d(), name(), any::<bool>()).prop_map(|(d, n, x)| Op::Create(d, n, x)),
        3 => (d(), name()).prop_map(|(d, n)| Op::Unlink(d, n)),
        2 => (d(), name()).prop_map(|(d, n)| Op::Rmdir(d, n)),
        5 => (d(), name(), d(), name(), 0u8..4).prop_map(|(a, n, b, m, f)| Op::Rename(a, n, b, m, f)),
        2 => (d(), name(), d(), name()).prop_map(|(a, n, b, m)| Op::Link(a, n, b, m)),
        2 => (d(), name()).prop_map(|(d, n)| Op::Lookup(d, n)),
        5 => (d(), name(), off(), 1u32..70_000, any::<u8>())
            .prop_map(|(d, n, o, l, s)| Op::Write(d, n, o, l, s)),
        3 => (d(), name(), off(), 0u32..70_000).prop_map(|(d, n, o, l)| Op::Read(d, n, o, l)),
        2 => (d(), name(), off()).prop_map(|(d, n, o)| Op::Truncate(d, n, o)),
        2 => (d(), name(), off(), 0u32..70_000, 0u8..5)
            .prop_map(|(d, n, o, l, m)| Op::Fallocate(d, n, o, l, m)),
        1 => (d(), name()).prop_map(|(d, n)| Op::Readlink(d, n)),
    ]
}

pub(crate) fn pattern(len: u32, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i.wrapping_mul(31).wrapping_add(i >> 9) as u8) ^ seed)
        .collect()
}

pub(crate) const FALLOC_MODES: [i32; 5] = [
    0,
    libc::FALLOC_FL_KEEP_SIZE,
    libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
    libc::FALLOC_FL_PUNCH_HOLE,
    libc::FALLOC_FL_ZERO_RANGE,
];

/// What an operation returned, beyond success.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Out {
    Done,
    Found(FileKind, u32, u64),
    Bytes(Vec<u8>),
    Wrote(u32),
    Target(Vec<u8>),
    /// Not compared (an open of a symlink: the kernel would have followed it).
    Skipped,
}

pub(crate) type Res = Result<Out, Errno>;

pub(crate) fn symlink_target(n: &Name) -> Vec<u8> {
    format!("target-of-{n:?}").into_bytes()
}
