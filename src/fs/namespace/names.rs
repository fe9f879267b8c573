//! The checks of a name for a new directory entry.

use crate::fs::error::{Errno, Result};
use crate::fs::NAME_MAX;

/// Checks a name for a new directory entry. The kernel resolves "", "." and ".." itself and
/// never sends them; for other callers the core answers as Linux does for such a last
/// component (`mkdir("")` is ENOENT, `mkdir("d/.")` EEXIST). A name holding '/' or NUL can
/// never be made (EINVAL).
pub fn check_name(name: &[u8]) -> Result<()> {
    if name.len() > NAME_MAX {
        return Err(Errno::ENAMETOOLONG);
    }
    if name.is_empty() {
        return Err(Errno::ENOENT);
    }
    if is_dots(name) {
        return Err(Errno::EEXIST);
    }
    if name.contains(&b'/') || name.contains(&0) {
        return Err(Errno::EINVAL);
    }
    Ok(())
}

/// Whether `name` is "." or "..".
pub fn is_dots(name: &[u8]) -> bool {
    name == b"." || name == b".."
}
