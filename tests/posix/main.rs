//! POSIX behaviour of a mounted memfs, exercised with real syscalls (std::fs and raw libc)
//! and checked against what Linux tmpfs does, down to the errno of each failure.

#[path = "../common/mod.rs"]
mod common;
// `sys!` is a macro: textually scoped, so declared before the modules that use it.
#[macro_use]
mod sys;

mod attrs;
mod concurrency;
mod dirs;
mod extents;
mod files;
mod links;
mod names;
mod rename;
mod xattrs;
