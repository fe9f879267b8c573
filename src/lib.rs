//! memfs: an in-memory FUSE file system with descendant counts (and, to come, versions,
//! deduplicated chunks and call tracing).
//!
//! - [`fs`]: the core file system, free of FUSE types.
//! - [`control`]: the read-only `.memfs` control directory, served outside the core.
//! - [`router`]: sends each request to the core or to the control plane.
//! - [`fuse`]: the thin `fuser::Filesystem` adapter over the router.
//! - [`mount`]: mounting, serving and unmounting (signals, checks on the mount point).

pub mod control;
pub mod fs;
pub mod fuse;
pub mod mount;
pub mod router;
pub mod store;
pub(crate) mod sync;
#[doc(hidden)]
pub mod testdata;
pub mod trace;
pub mod units;
