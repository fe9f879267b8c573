//! `memfs snapshot create|list|delete`, `memfs diff` and `memfs restore --snapshot`: thin
//! clients of `.memfs/snapshots` and of the virtual attributes `user.memfs.hash` and
//! `user.memfs.descendants`, so they work on any directory of a live mount, snapshot
//! directories and live ones alike.

use std::ffi::{CString, OsStr};
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use memfs::control::CONTROL_NAME;
use memfs::fs::snapshot::{Change, ChangeKind, Diff};
use memfs::fs::{DESCENDANTS_XATTR, HASH_XATTR};

/// Reads a whole extended attribute of `path` itself (not a symlink's target), or the errno.
fn lgetxattr(path: &Path, name: &[u8]) -> std::io::Result<Vec<u8>> {
    let cpath = CString::new(path.as_os_str().as_bytes())?;
    let cname = CString::new(name)?;
    // Hex hashes and counts are short: one call with room to spare.
    let mut buf = vec![0u8; 128];
    let n = unsafe {
        libc::lgetxattr(
            cpath.as_ptr(),
            cname.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    if n < 0 {
        return Err(std::io::Error::last_os_error());
    }
    buf.truncate(n as usize);
    Ok(buf)
}

/// The Merkle hash and descendant count of a directory (or the hash of a file; the count
/// is 0), as memfs shows them.
fn summary(path: &Path) -> std::io::Result<(Vec<u8>, u64)> {
    let hash = lgetxattr(path, HASH_XATTR)?;
    let count = match lgetxattr(path, DESCENDANTS_XATTR) {
        Ok(v) => std::str::from_utf8(&v)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0),
        Err(_) => 0,
    };
    Ok((hash, count))
}

/// The root of the memfs mount that holds directory `dir`: the nearest ancestor with a
/// `.memfs/snapshots` directory.
fn mount_root(dir: &Path) -> Result<PathBuf> {
    let abs = dir
        .canonicalize()
        .with_context(|| format!("{}", dir.display()))?;
    let mut at = Some(abs.as_path());
    while let Some(p) = at {
        if control(p).join("snapshots").is_dir() {
            return Ok(p.to_path_buf());
        }
        at = p.parent();
    }
    bail!("{} is not on a memfs mount", dir.display())
}

fn control(root: &Path) -> PathBuf {
    root.join(OsStr::from_bytes(CONTROL_NAME))
}

fn snapshots_dir(mount: &Path) -> Result<PathBuf> {
    Ok(control(&mount_root(mount)?).join("snapshots"))
}

/// A name for a snapshot taken now: its UTC time to the second.
fn default_name() -> String {
    let format =
        time::macros::format_description!("[year]-[month]-[day]T[hour]-[minute]-[second]Z");
    time::OffsetDateTime::now_utc()
        .format(format)
        .unwrap_or_else(|_| "snapshot".to_string())
}

pub fn create(mount: &Path, name: Option<&str>) -> Result<()> {
    let dir = snapshots_dir(mount)?;
    let name = name.map_or_else(default_name, str::to_string);
    let start = std::time::Instant::now();
    std::fs::create_dir(dir.join(&name)).map_err(|e| match e.raw_os_error() {
        Some(libc::EEXIST) => anyhow::anyhow!("a snapshot named {name} exists"),
        _ => anyhow::anyhow!("taking snapshot {name}: {e}"),
    })?;
    println!(
        "snapshot {name} taken in {:.1} ms: {}",
        start.elapsed().as_secs_f64() * 1e3,
        dir.join(&name).display()
    );
    Ok(())
}

pub fn list(mount: &Path) -> Result<()> {
    let dir = snapshots_dir(mount)?;
    let mut names: Vec<_> = std::fs::read_dir(&dir)?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name())
        .collect();
    names.sort();
    let mut out = std::io::stdout().lock();
    for name in names {
        let path = dir.join(&name);
        let (hash, count) = summary(&path).unwrap_or_default();
        let hash = String::from_utf8_lossy(&hash);
        writeln!(
            out,
            "{:<32} {:>9} entries  {}",
            name.to_string_lossy(),
            count,
            hash.get(..16).unwrap_or(&hash)
        )?;
    }
    Ok(())
}

pub fn delete(mount: &Path, name: &str) -> Result<()> {
    let dir = snapshots_dir(mount)?;
    std::fs::remove_dir(dir.join(name)).map_err(|e| match e.raw_os_error() {
        Some(libc::ENOENT) => anyhow::anyhow!("no snapshot named {name}"),
        _ => anyhow::anyhow!("deleting snapshot {name}: {e}"),
    })?;
    println!("snapshot {name} deleted");
    Ok(())
}

/// What a diff needs of one entry: its kind (file type bits), mode and identity.
struct Seen {
    kind: u32,
    perm: u32,
    meta: std::fs::Metadata,
}

fn seen(path: &Path) -> Result<Seen> {
    let meta = std::fs::symlink_metadata(path).with_context(|| format!("{}", path.display()))?;
    Ok(Seen {
        kind: meta.mode() & libc::S_IFMT,
        perm: meta.mode() & 0o7777,
        meta,
    })
}

/// Sorted names of the entries of `dir`.
fn names(dir: &Path) -> Result<Vec<Vec<u8>>> {
    let mut names: Vec<Vec<u8>> = std::fs::read_dir(dir)
        .with_context(|| format!("listing {}", dir.display()))?
        .map(|e| e.map(|e| e.file_name().as_bytes().to_vec()))
        .collect::<std::io::Result<_>>()?;
    names.sort_unstable();
    Ok(names)
}

/// Whether two non-directories of the same kind have the same content.
fn same_leaf(a: &Path, x: &Seen, b: &Path, y: &Seen) -> Result<bool> {
    match x.kind {
        libc::S_IFREG => Ok(lgetxattr(a, HASH_XATTR)? == lgetxattr(b, HASH_XATTR)?),
        libc::S_IFLNK => Ok(std::fs::read_link(a)? == std::fs::read_link(b)?),
        _ => Ok(x.meta.rdev() == y.meta.rdev()),
    }
}

/// The changes from directory `a` to directory `b`, pruning every pair of subtrees whose
/// hashes and counts are equal. The same walk as the core's `snapshot::diff`, over the file
/// system, so it works on live directories too.
pub fn compute(a: &Path, b: &Path) -> Result<Diff> {
    for dir in [a, b] {
        let meta = std::fs::metadata(dir).with_context(|| format!("{}", dir.display()))?;
        if !meta.is_dir() {
            bail!("{} is not a directory", dir.display());
        }
        if let Err(e) = lgetxattr(dir, HASH_XATTR) {
            bail!(
                "{} is not on a memfs mount (reading {}: {e})",
                dir.display(),
                String::from_utf8_lossy(HASH_XATTR)
            );
        }
    }
    let mut out = Diff {
        changes: Vec::new(),
        visited: 2,
    };
    let mut push = |kind, path: &str| {
        out.changes.push(Change {
            kind,
            path: path.to_string(),
        })
    };
    let join = |rel: &str, name: &[u8]| {
        let name = String::from_utf8_lossy(name);
        if rel.is_empty() {
            name.into_owned()
        } else {
            format!("{rel}/{name}")
        }
    };
    let mut todo = vec![(a.to_path_buf(), b.to_path_buf(), String::new())];
    let mut visited = 2u64;
    while let Some((x, y, rel)) = todo.pop() {
        if summary(&x)? == summary(&y)? {
            continue;
        }
        let (nx, ny) = (names(&x)?, names(&y)?);
        let (mut i, mut j) = (0, 0);
        while i < nx.len() || j < ny.len() {
            let order = match (nx.get(i), ny.get(j)) {
                (Some(p), Some(q)) => p.cmp(q),
                (Some(_), None) => std::cmp::Ordering::Less,
                _ => std::cmp::Ordering::Greater,
            };
            match order {
                std::cmp::Ordering::Less => {
                    visited += 1;
                    push(ChangeKind::Deleted, &join(&rel, &nx[i]));
                    i += 1;
                }
                std::cmp::Ordering::Greater => {
                    visited += 1;
                    push(ChangeKind::Added, &join(&rel, &ny[j]));
                    j += 1;
                }
                std::cmp::Ordering::Equal => {
                    visited += 2;
                    let name = OsStr::from_bytes(&nx[i]);
                    let (px, py) = (x.join(name), y.join(name));
                    let (sx, sy) = (seen(&px)?, seen(&py)?);
                    let sub = join(&rel, &nx[i]);
                    if sx.kind != sy.kind {
                        push(ChangeKind::Deleted, &sub);
                        push(ChangeKind::Added, &sub);
                    } else if sx.kind == libc::S_IFDIR {
                        if sx.perm != sy.perm {
                            push(ChangeKind::Modified, &sub);
                        }
                        todo.push((px, py, sub));
                    } else if sx.perm != sy.perm || !same_leaf(&px, &sx, &py, &sy)? {
                        push(ChangeKind::Modified, &sub);
                    }
                    i += 1;
                    j += 1;
                }
            }
        }
    }
    out.visited = visited;
    out.sort();
    Ok(out)
}

pub fn diff(a: &Path, b: &Path, json: bool) -> Result<()> {
    let result = compute(a, b)?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    if json {
        serde_json::to_writer(&mut out, &result)?;
        writeln!(out)?;
    } else {
        for c in &result.changes {
            writeln!(out, "{} {}", c.kind.letter(), c.path)?;
        }
    }
    out.flush()?;
    Ok(())
}

/// What a restore did.
#[derive(Default)]
struct Restored {
    written: u64,
    made: u64,
    deleted: u64,
    unchanged: u64,
}

/// Removes `path`, a directory with all it holds or anything else.
fn remove(path: &Path, done: &mut Restored) -> Result<()> {
    let meta = std::fs::symlink_metadata(path)?;
    if meta.is_dir() {
        std::fs::remove_dir_all(path)
    } else {
        std::fs::remove_file(path)
    }
    .with_context(|| format!("removing {}", path.display()))?;
    done.deleted += 1;
    Ok(())
}

fn set_perm(path: &Path, perm: u32) -> Result<()> {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(perm))
        .with_context(|| format!("chmod {}", path.display()))
}

/// Makes `dst` what `src` (in a snapshot) is: files whose hash differs are rewritten (a new
/// version each), equal subtrees are skipped by their hash; with `delete`, what `src` lacks
/// goes.
fn sync(src: &Path, dst: &Path, delete: bool, done: &mut Restored) -> Result<()> {
    let s = seen(src)?;
    let d = std::fs::symlink_metadata(dst)
        .ok()
        .map(|_| seen(dst))
        .transpose()?;
    if let Some(d) = &d {
        if d.kind != s.kind {
            remove(dst, done)?;
            return sync(src, dst, delete, done);
        }
        let same = match s.kind {
            libc::S_IFDIR => summary(src)? == summary(dst)?,
            _ => same_leaf(src, &s, dst, d)?,
        };
        if same {
            if d.perm != s.perm {
                set_perm(dst, s.perm)?;
            }
            done.unchanged += 1;
            return Ok(());
        }
    }
    match s.kind {
        libc::S_IFDIR => {
            if d.is_none() {
                std::fs::create_dir(dst).with_context(|| format!("mkdir {}", dst.display()))?;
                done.made += 1;
            }
            let want = names(src)?;
            for name in &want {
                let name = OsStr::from_bytes(name);
                sync(&src.join(name), &dst.join(name), delete, done)?;
            }
            if delete {
                for name in names(dst)? {
                    if want.binary_search(&name).is_err() {
                        remove(&dst.join(OsStr::from_bytes(&name)), done)?;
                    }
                }
            }
        }
        libc::S_IFREG => {
            // An ordinary rewrite and close: memfs commits it as a new version.
            let mut from =
                std::fs::File::open(src).with_context(|| format!("{}", src.display()))?;
            let mut to =
                std::fs::File::create(dst).with_context(|| format!("{}", dst.display()))?;
            std::io::copy(&mut from, &mut to).with_context(|| format!("{}", dst.display()))?;
            done.written += 1;
        }
        libc::S_IFLNK => {
            if d.is_some() {
                remove(dst, done)?;
            }
            std::os::unix::fs::symlink(std::fs::read_link(src)?, dst)
                .with_context(|| format!("symlink {}", dst.display()))?;
            done.made += 1;
            return Ok(());
        }
        _ => {
            eprintln!("memfs: {}: special file not restored", dst.display());
            return Ok(());
        }
    }
    set_perm(dst, s.perm)
}

pub fn restore(snapshot: &str, path: &Path, delete: bool) -> Result<()> {
    let (root, target) = match path.canonicalize() {
        // The mount's root itself: the whole tree.
        Ok(abs) if control(&abs).join("snapshots").is_dir() => (abs.clone(), abs),
        // Anything below it, which may be missing (the snapshot has it).
        _ => {
            let name = path
                .file_name()
                .with_context(|| format!("{}: name a file or directory", path.display()))?;
            let parent = match path.parent() {
                Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
                _ => PathBuf::from("."),
            };
            let parent = parent
                .canonicalize()
                .with_context(|| format!("{}", parent.display()))?;
            (mount_root(&parent)?, parent.join(name))
        }
    };
    let rel = target.strip_prefix(&root).unwrap_or(&target).to_path_buf();
    let snap = control(&root).join("snapshots").join(snapshot);
    if !snap.is_dir() {
        bail!("no snapshot named {snapshot} on {}", root.display());
    }
    let src = snap.join(&rel);
    if std::fs::symlink_metadata(&src).is_err() {
        bail!("{} is not in snapshot {snapshot}", rel.display());
    }
    let mut done = Restored::default();
    sync(&src, &target, delete, &mut done)?;
    println!(
        "restored {} from snapshot {snapshot}: {} files written, {} made, {} deleted, {} unchanged",
        path.display(),
        done.written,
        done.made,
        done.deleted,
        done.unchanged
    );
    Ok(())
}
