//! `memfs log`, `memfs restore` and `memfs stats`: thin clients of the control surface
//! (`user.memfs.versions` and `.memfs/`), so they work on any path of a live mount.

use std::ffi::CString;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use memfs::control::{Stats, CONTROL_NAME};
use memfs::fs::{VersionInfo, VERSIONS_XATTR};
use memfs::units;

/// Reads a whole extended attribute, or the errno.
pub fn getxattr(path: &Path, name: &[u8]) -> std::io::Result<Vec<u8>> {
    let cpath = CString::new(path.as_os_str().as_bytes())?;
    let cname = CString::new(name)?;
    loop {
        let size =
            unsafe { libc::getxattr(cpath.as_ptr(), cname.as_ptr(), std::ptr::null_mut(), 0) };
        if size < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let mut buf = vec![0u8; size as usize];
        let n = unsafe {
            libc::getxattr(
                cpath.as_ptr(),
                cname.as_ptr(),
                buf.as_mut_ptr().cast(),
                buf.len(),
            )
        };
        if n >= 0 {
            buf.truncate(n as usize);
            return Ok(buf);
        }
        let err = std::io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::ERANGE) {
            return Err(err);
        }
    }
}

/// The versions memfs keeps of `path`.
fn versions(path: &Path) -> Result<Vec<VersionInfo>> {
    let meta = std::fs::metadata(path).with_context(|| format!("{}", path.display()))?;
    if !meta.is_file() {
        bail!("{} is not a regular file", path.display());
    }
    let json = getxattr(path, VERSIONS_XATTR).map_err(|e| {
        anyhow::anyhow!(
            "{} is not on a memfs mount (reading its versions: {e})",
            path.display()
        )
    })?;
    serde_json::from_slice(&json)
        .with_context(|| format!("{}: malformed version list", path.display()))
}

/// "2026-11-23 04:12:09.123 UTC" from seconds since the epoch (milliseconds truncated).
fn utc(seconds: f64) -> String {
    let format = time::macros::format_description!(
        "[year]-[month]-[day] [hour]:[minute]:[second].[subsecond digits:3] UTC"
    );
    let millis = (seconds * 1000.0).floor() as i128;
    time::OffsetDateTime::from_unix_timestamp_nanos(millis * 1_000_000)
        .ok()
        .and_then(|t| t.format(format).ok())
        // Out of the calendar's range: a corrupt time, shown as the raw number.
        .unwrap_or_else(|| format!("{seconds}s since the epoch"))
}

pub fn log(path: &Path) -> Result<()> {
    let versions = versions(path)?;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{:>7}  {:<27}  {:>12}  {:>7}  {:>12}  cause",
        "version", "time", "size", "chunks", "new bytes"
    )?;
    for v in &versions {
        writeln!(
            out,
            "{:>7}  {:<27}  {:>12}  {:>7}  {:>12}  {}",
            v.version,
            utc(v.time),
            v.size,
            v.chunks,
            v.new_bytes,
            v.cause
        )?;
    }
    if versions.is_empty() {
        writeln!(
            out,
            "(no versions: nothing written to {} has been closed yet)",
            path.display()
        )?;
    }
    Ok(())
}

/// The root of the mount `path` is on: the highest ancestor on the same device.
fn mount_root(path: &Path) -> Result<PathBuf> {
    let abs = path
        .canonicalize()
        .with_context(|| format!("{}", path.display()))?;
    let dev = std::fs::metadata(&abs)?.dev();
    let mut root = abs.clone();
    while let Some(parent) = root.parent() {
        if std::fs::metadata(parent).map(|m| m.dev()).ok() != Some(dev) {
            break;
        }
        root = parent.to_path_buf();
    }
    Ok(root)
}

pub fn restore(path: &Path, number: u64) -> Result<()> {
    let versions = versions(path)?;
    if !versions.iter().any(|v| v.version == number) {
        let kept: Vec<String> = versions.iter().map(|v| v.version.to_string()).collect();
        bail!(
            "{} has no version {number} (kept: {})",
            path.display(),
            if kept.is_empty() {
                "none".to_string()
            } else {
                kept.join(", ")
            }
        );
    }
    let abs = path.canonicalize()?;
    let root = mount_root(&abs)?;
    let rel = abs.strip_prefix(&root).unwrap_or(&abs);
    let source = root
        .join(std::ffi::OsStr::from_bytes(CONTROL_NAME))
        .join("versions")
        .join(rel)
        .join(number.to_string());
    let bytes = std::fs::read(&source).with_context(|| format!("reading {}", source.display()))?;
    // An ordinary write and close: memfs commits it as a new version.
    std::fs::write(&abs, &bytes).with_context(|| format!("writing {}", abs.display()))?;
    let after = versions_after(&abs)?;
    println!(
        "restored {} to version {number}{}",
        path.display(),
        after.map_or(String::new(), |n| format!(" (now version {n})"))
    );
    Ok(())
}

fn versions_after(path: &Path) -> Result<Option<u64>> {
    Ok(versions(path)?.last().map(|v| v.version))
}

fn read_stats(mount: &Path) -> Result<(Stats, Vec<u8>)> {
    let root = mount_root(mount)?;
    let file = root
        .join(std::ffi::OsStr::from_bytes(CONTROL_NAME))
        .join("stats.json");
    let raw = std::fs::read(&file).map_err(|e| {
        anyhow::anyhow!(
            "{} is not on a memfs mount ({}: {e})",
            mount.display(),
            file.display()
        )
    })?;
    let stats =
        serde_json::from_slice(&raw).with_context(|| format!("{}: malformed", file.display()))?;
    Ok((stats, raw))
}

/// "512 B", or "1.5 MiB (1572864)": the exact count beside the rounded one.
fn human(bytes: u64) -> String {
    if bytes < 1024 {
        units::bytes(bytes)
    } else {
        format!("{} ({bytes})", units::bytes(bytes))
    }
}

pub fn stats(mount: &Path, json: bool) -> Result<()> {
    let (s, raw) = read_stats(mount)?;
    let mut out = std::io::stdout().lock();
    if json {
        out.write_all(&raw)?;
        return Ok(());
    }
    let used = if s.capacity_bytes > 0 {
        format!(
            "{} ({:.1}% of the cap)",
            human(s.used_bytes),
            s.used_bytes as f64 * 100.0 / s.capacity_bytes as f64
        )
    } else {
        human(s.used_bytes)
    };
    let rows: Vec<(&str, String)> = vec![
        ("capacity (--max-memory)", human(s.capacity_bytes)),
        ("used", used),
        ("metadata (estimate)", human(s.metadata_bytes)),
        (
            "versions dropped for space",
            s.versions_dropped_for_space.to_string(),
        ),
        ("files", s.files.to_string()),
        ("directories", s.dirs.to_string()),
        ("symlinks", s.symlinks.to_string()),
        ("logical bytes (live files)", human(s.logical_bytes)),
        ("dirty bytes (uncommitted)", human(s.dirty_bytes)),
        ("versions kept", s.versions.to_string()),
        ("version bytes", human(s.version_bytes)),
        ("blobs", s.blobs.to_string()),
        ("stored bytes (unique)", human(s.stored_bytes)),
        ("referenced bytes", human(s.referenced_bytes)),
        ("dedup ratio", format!("{:.2}", s.dedup_ratio)),
        ("resident memory", human(s.rss_bytes)),
        (
            "memory per stored byte",
            format!("{:.2}", s.rss_per_stored_byte),
        ),
        ("chunker", s.chunker.clone()),
        ("versions kept per file", s.keep_versions.to_string()),
    ];
    for (k, v) in rows {
        writeln!(out, "{k:<28} {v}")?;
    }
    write_store_rows(&mut out, &s.store)?;
    writeln!(out, "chunk sizes:")?;
    for (k, v) in &s.chunk_size_histogram {
        writeln!(out, "  {k:>6} B  {v}")?;
    }
    writeln!(out, "reference counts:")?;
    for (k, v) in &s.refcount_histogram {
        writeln!(out, "  {k:>6}    {v}")?;
    }
    Ok(())
}

/// The store's rows of `memfs stats` (a remote store's only; the in-memory one is the rest).
fn write_store_rows(out: &mut impl Write, r: &memfs::store::StoreReport) -> std::io::Result<()> {
    if r.kind.is_empty() || r.kind == "memory" {
        writeln!(out, "{:<28} memory (this process)", "store")?;
        // Less than the stored bytes by what compression saved (`--no-compress`: all), more
        // by the unused bytes of the write buffers chunks are kept in (`store/pinned.rs`).
        let share = r.held_bytes as f64 * 100.0 / r.bytes.max(1) as f64;
        writeln!(
            out,
            "{:<28} {} ({share:.0}% of the stored bytes)",
            "chunks held in memory",
            human(r.held_bytes)
        )?;
        return writeln!(
            out,
            "{:<28} {}",
            "  of it, unused buffers",
            human(r.unused_buffer_bytes)
        );
    }
    let hits = r.cache_hits as f64 / (r.cache_hits + r.cache_misses).max(1) as f64;
    let rows: Vec<(&str, String)> = vec![
        (
            "store",
            format!("{} {} ({})", r.kind, r.nodes.join(","), r.state),
        ),
        ("store chunks (this mount)", r.chunks.to_string()),
        ("store bytes (this mount)", human(r.bytes)),
        (
            "not yet stored",
            format!("{} chunks, {}", r.unsaved_chunks, human(r.unsaved_bytes)),
        ),
        (
            "cache",
            format!("{} of {}", human(r.cache_bytes), human(r.cache_capacity)),
        ),
        (
            "cache hits / misses",
            format!(
                "{} / {} ({:.1}% hits)",
                r.cache_hits,
                r.cache_misses,
                hits * 100.0
            ),
        ),
        ("bytes sent", human(r.bytes_sent)),
        ("bytes received", human(r.bytes_received)),
        ("store errors", r.errors.to_string()),
        ("lease", format!("{} s", r.lease_seconds)),
        (
            "dead mounts swept",
            format!("{} ({} references)", r.mounts_swept, r.references_swept),
        ),
    ];
    for (k, v) in rows {
        writeln!(out, "{k:<28} {v}")?;
    }
    if let Some(e) = &r.last_error {
        writeln!(out, "{:<28} {e}", "last store error")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn utc_formats_civil_dates() {
        assert_eq!(super::utc(0.0), "1970-01-01 00:00:00.000 UTC");
        assert_eq!(super::utc(1_795_405_359.5), "2026-11-23 03:42:39.500 UTC");
        assert_eq!(super::utc(1_709_164_800.25), "2024-02-29 00:00:00.250 UTC");
    }
}
