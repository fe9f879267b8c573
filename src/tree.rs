//! `memfs tree`: the directory tree with descendant counts, read through the virtual
//! extended attribute, so it shows what memfs keeps (not a walk of our own).

use std::io::Write;
use std::path::Path;

use anyhow::{bail, Context, Result};
use memfs::fs::DESCENDANTS_XATTR;

/// Reads the descendant count of directory `path` from its virtual extended attribute.
pub fn descendants(path: &Path) -> std::io::Result<u64> {
    let value = crate::history::getxattr(path, DESCENDANTS_XATTR)?;
    std::str::from_utf8(&value)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other("malformed count"))
}

/// The first 16 hex digits of a node's Merkle hash, or why there is none.
fn short_hash(path: &Path) -> String {
    match crate::history::getxattr(path, memfs::fs::HASH_XATTR) {
        Ok(h) => String::from_utf8_lossy(h.get(..16).unwrap_or(&h)).into_owned(),
        Err(e) => format!("? {e}"),
    }
}

pub fn print(path: &Path, depth: Option<usize>, hash: bool) -> Result<()> {
    let meta = std::fs::metadata(path).with_context(|| format!("{}", path.display()))?;
    if !meta.is_dir() {
        bail!("{} is not a directory", path.display());
    }
    let count = match descendants(path) {
        Ok(c) => c,
        Err(e) => bail!(
            "{} is not on a memfs mount (reading {}: {e})",
            path.display(),
            String::from_utf8_lossy(DESCENDANTS_XATTR)
        ),
    };
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let shown = |p: &Path, count: String| match hash {
        true => format!("[{count}] {}", short_hash(p)),
        false => format!("[{count}]"),
    };
    writeln!(out, "{} {}", path.display(), shown(path, count.to_string()))?;
    walk(&mut out, path, "", depth.unwrap_or(usize::MAX), &shown)?;
    out.flush()?;
    Ok(())
}

fn walk(
    out: &mut impl Write,
    dir: &Path,
    prefix: &str,
    depth: usize,
    shown: &dyn Fn(&Path, String) -> String,
) -> Result<()> {
    if depth == 0 {
        return Ok(());
    }
    let mut subdirs: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("listing {}", dir.display()))?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .collect();
    subdirs.sort();
    for (i, sub) in subdirs.iter().enumerate() {
        let last = i + 1 == subdirs.len();
        let name = sub
            .file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default();
        let count = descendants(sub).map_or_else(|e| format!("? {e}"), |c| c.to_string());
        writeln!(
            out,
            "{prefix}{}{name}/ {}",
            if last { "└── " } else { "├── " },
            shown(sub, count)
        )?;
        let next = format!("{prefix}{}", if last { "    " } else { "│   " });
        walk(out, sub, &next, depth - 1, shown)?;
    }
    Ok(())
}
