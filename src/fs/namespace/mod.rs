//! The namespace: which inodes exist (`table::Namespace`: the inode table, inode numbers,
//! the tree lock, descendant counts and their repair), what an inode is (`inode`), what a
//! directory holds (`dir`), and the operations on names, one file per concern.

mod create;
pub mod dir;
pub mod inode;
mod list;
mod lookup;
pub mod merkle;
mod names;
mod remove;
mod rename;
mod table;

pub use names::check_name;
pub use remove::check_removal_name;
pub use rename::check_rename_names;
pub(crate) use table::{Locked, Namespace, TreeGuard};
