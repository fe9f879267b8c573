//! memfs: an in-memory FUSE file system with descendant counts (and, to come, versions,
//! deduplicated chunks and call tracing).
//!
//! - [`fs`]: the core file system, free of FUSE types.
//! - [`fuse`]: the thin `fuser::Filesystem` adapter over it.
//! - [`mount`]: mounting, serving and unmounting (signals, checks on the mount point).

pub mod fs;
pub mod fuse;
pub mod mount;
pub mod store;
pub(crate) mod sync;
#[doc(hidden)]
pub mod testdata;
pub mod trace;
