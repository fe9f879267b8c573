//! The op and the result of a trace record, as enums that serialise to the strings traces
//! have always held (`"lookup"`, `"copy_file_range"`; `"ok"`, `"ENOENT"`).

use std::collections::HashMap;
use std::fmt;
use std::marker::PhantomData;
use std::sync::OnceLock;

use serde::de::Visitor;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::fs::Errno;

macro_rules! ops {
    ($($variant:ident => $name:literal,)*) => {
        /// A FUSE request, named as fuser's `Filesystem` methods name it.
        #[derive(Clone, Debug, PartialEq, Eq, Hash)]
        pub enum Op {
            $($variant,)*
            /// An op this build does not know, read from a trace written by another.
            Other(String),
        }

        impl Op {
            /// The name a trace holds.
            pub fn as_str(&self) -> &str {
                match self {
                    $(Op::$variant => $name,)*
                    Op::Other(name) => name,
                }
            }
        }

        impl From<&str> for Op {
            fn from(name: &str) -> Op {
                match name {
                    $($name => Op::$variant,)*
                    other => Op::Other(other.to_string()),
                }
            }
        }
    };
}

ops! {
    Init => "init",
    Destroy => "destroy",
    Forget => "forget",
    Lookup => "lookup",
    Getattr => "getattr",
    Setattr => "setattr",
    Readlink => "readlink",
    Mknod => "mknod",
    Mkdir => "mkdir",
    Unlink => "unlink",
    Rmdir => "rmdir",
    Symlink => "symlink",
    Rename => "rename",
    Link => "link",
    Open => "open",
    Read => "read",
    Write => "write",
    Flush => "flush",
    Release => "release",
    Fsync => "fsync",
    Opendir => "opendir",
    Readdir => "readdir",
    Readdirplus => "readdirplus",
    Releasedir => "releasedir",
    Fsyncdir => "fsyncdir",
    Statfs => "statfs",
    Setxattr => "setxattr",
    Getxattr => "getxattr",
    Listxattr => "listxattr",
    Removexattr => "removexattr",
    Access => "access",
    Create => "create",
    Tmpfile => "tmpfile",
    Fallocate => "fallocate",
    Ioctl => "ioctl",
    Lseek => "lseek",
    CopyFileRange => "copy_file_range",
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<str> for Op {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Op {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl Serialize for Op {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Op {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Op, D::Error> {
        deserializer.deserialize_str(NameVisitor(PhantomData))
    }
}

/// Reads a name without copying it: a known op or errno allocates nothing.
struct NameVisitor<T>(PhantomData<T>);

impl<T: for<'a> From<&'a str>> Visitor<'_> for NameVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a name")
    }

    fn visit_str<E: serde::de::Error>(self, name: &str) -> Result<T, E> {
        Ok(T::from(name))
    }
}

/// How a request ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    Err(Errno),
    /// An errno name this build cannot map back (`E?` is what an unnamed errno is written
    /// as), kept as read so that it is written back the same.
    Other(String),
}

impl Outcome {
    pub fn is_ok(&self) -> bool {
        *self == Outcome::Ok
    }

    /// What a trace holds: `ok` or the errno name.
    pub fn as_str(&self) -> &str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Err(e) => e.name(),
            Outcome::Other(name) => name,
        }
    }
}

impl<T> From<&Result<T, Errno>> for Outcome {
    fn from(result: &Result<T, Errno>) -> Outcome {
        match result {
            Ok(_) => Outcome::Ok,
            Err(e) => Outcome::Err(*e),
        }
    }
}

impl From<&str> for Outcome {
    fn from(name: &str) -> Outcome {
        if name == "ok" {
            return Outcome::Ok;
        }
        match errnos_by_name().get(name) {
            Some(&e) => Outcome::Err(e),
            None => Outcome::Other(name.to_string()),
        }
    }
}

/// Every errno [`Errno::name`] knows, by name.
fn errnos_by_name() -> &'static HashMap<&'static str, Errno> {
    static BY_NAME: OnceLock<HashMap<&'static str, Errno>> = OnceLock::new();
    BY_NAME.get_or_init(|| {
        // Errno values on Linux stay below 134.
        (1..134)
            .map(Errno)
            .filter(|e| e.name() != "E?")
            .map(|e| (e.name(), e))
            .collect()
    })
}

/// Reads as its trace text, so `result.starts_with('E')` works on a record read back.
impl std::ops::Deref for Outcome {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<str> for Outcome {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Outcome {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl Serialize for Outcome {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Outcome {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Outcome, D::Error> {
        deserializer.deserialize_str(NameVisitor(PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ops_and_outcomes_read_back_as_written() {
        for name in ["lookup", "copy_file_range", "readdirplus", "batch_forget"] {
            let op: Op = serde_json::from_str(&format!("\"{name}\"")).unwrap();
            assert_eq!(op.as_str(), name);
            assert_eq!(serde_json::to_string(&op).unwrap(), format!("\"{name}\""));
        }
        assert_eq!(Op::from("copy_file_range"), Op::CopyFileRange);
        assert_eq!(Op::from("batch_forget"), Op::Other("batch_forget".into()));
        for name in ["ok", "ENOENT", "ERANGE", "EMLINK", "E?"] {
            let outcome: Outcome = serde_json::from_str(&format!("\"{name}\"")).unwrap();
            assert_eq!(outcome.as_str(), name);
            assert_eq!(
                serde_json::to_string(&outcome).unwrap(),
                format!("\"{name}\"")
            );
        }
        assert_eq!(Outcome::from("ENOENT"), Outcome::Err(Errno::ENOENT));
        assert!(Outcome::from("ok").is_ok());
    }
}
