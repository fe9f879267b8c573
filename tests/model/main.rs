//! The core `Fs` (no kernel) against a plain reference model: random sequences of
//! operations, valid and invalid, where every result and errno must equal the model's, and
//! the model answers what Linux tmpfs answers for the same call:
//!
//! - names: "" → ENOENT; "." and ".." as the last component get what the VFS gives for that
//!   call (EEXIST to create, EISDIR to unlink, EINVAL/ENOTEMPTY to rmdir, EBUSY to rename);
//!   255 bytes is a fine name, 256 → ENAMETOOLONG. A name holding '/' can never exist:
//!   looking it up gives ENOENT and creating it EINVAL (the kernel never sends one);
//! - EEXIST, ENOENT, EISDIR, ENOTDIR, ENOTEMPTY, EPERM (link of a directory), EINVAL (a
//!   directory into its own subtree) in the order Linux checks them;
//! - offsets near 2^63: EFBIG from the largest file size on, short writes up to it;
//! - file contents (a sparse model), sizes, link counts, fallocate and hole punching.
//!
//! After each sequence the whole tree is compared, `verify_tree` and `verify_store` must
//! pass, and removing everything must empty the store.

mod checks;
mod driver;
mod ops;
mod reference;
