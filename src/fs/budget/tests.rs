//! The budget's tests, driven through the file system: every operation that grows or
//! shrinks what memfs holds, against a small cap.

use std::collections::HashMap;
use std::sync::Arc;

use super::{BLOB_BYTES, ENTRY_BYTES, INODE_BYTES};
use crate::fs::history::bytes_freed;
use crate::fs::{Caller, Errno, Fs, FsConfig, Result, SetAttr, ROOT_INO};
use crate::store::{ChunkId, ContentStore, PieceData, Recipe};
use crate::testdata::noise;

const WHO: Caller = Caller::ROOT;
const KIB: u64 = 1 << 10;
const MIB: u64 = 1 << 20;

fn fs_with_cap(capacity: u64) -> Fs {
    Fs::new(FsConfig {
        capacity,
        ..FsConfig::default()
    })
}

/// A new file opened for reading and writing: (ino, fh).
fn create(fs: &Fs, parent: u64, name: &str) -> (u64, u64) {
    let (attr, fh) = fs
        .create(parent, name.as_bytes(), 0o644, libc::O_RDWR, WHO)
        .unwrap();
    (attr.ino, fh)
}

/// Writes `data` in pieces of `piece` bytes from offset 0; stops at the first error.
fn write_all(fs: &Fs, fh: u64, data: &[u8], piece: usize) -> Result<()> {
    for (i, c) in data.chunks(piece).enumerate() {
        fs.write(fh, (i * piece) as u64, c)?;
    }
    Ok(())
}

fn read_all(fs: &Fs, fh: u64) -> Vec<u8> {
    fs.read(fh, 0, u32::MAX).unwrap()
}

/// Writes, closes, and returns the version committed.
fn put(fs: &Fs, parent: u64, name: &str, data: &[u8]) -> u64 {
    let (ino, fh) = create(fs, parent, name);
    write_all(fs, fh, data, 128 << 10).unwrap();
    fs.flush(fh).unwrap();
    fs.release(fh).unwrap();
    ino
}

fn check(fs: &Fs) {
    fs.verify_usage().unwrap();
    fs.verify_tree().unwrap();
}

#[test]
fn used_returns_to_its_baseline_after_deleting_everything() {
    let fs = fs_with_cap(1 << 30);
    let baseline = fs.used_bytes();
    assert_eq!(baseline, INODE_BYTES);
    let d = fs.mkdir(ROOT_INO, b"d", 0o755, WHO).unwrap().ino;
    let shared = noise(300_000, 1);
    let a = put(&fs, d, "a", &shared);
    let b = put(&fs, d, "b", &shared); // the same chunks: dedup
    let stored_once = fs.store().stats().stored_bytes;
    assert_eq!(stored_once, 300_000);
    // More versions of a, one left uncommitted.
    let fh = fs.open(a, libc::O_RDWR).unwrap();
    for i in 0..5u64 {
        fs.write(fh, i * 1000, &noise(5000, 11 + 2 * i)).unwrap();
        fs.fsync(fh, false).unwrap();
    }
    fs.write(fh, 1 << 20, b"dirty, never committed").unwrap();
    assert!(fs.dirty_bytes() > 0);
    fs.setxattr(a, b"user.x", b"value", 0).unwrap();
    fs.setxattr(a, b"user.x", b"a longer value", 0).unwrap();
    fs.setxattr(b, b"user.y", &[7u8; 1000], 0).unwrap();
    fs.removexattr(b, b"user.y").unwrap();
    fs.setxattr(d, b"user.z", b"on a directory", 0).unwrap();
    let s = fs.symlink(d, b"s", b"a/target/path", WHO).unwrap().ino;
    let p = fs
        .mknod(d, b"p", libc::S_IFIFO | 0o644, 0, WHO)
        .unwrap()
        .ino;
    fs.link(b, ROOT_INO, b"b-link").unwrap();
    fs.rename(
        d,
        b"s",
        d,
        b"a-much-longer-symlink-name",
        crate::fs::RenameMode::Replace,
    )
    .unwrap();
    // Renaming over b's other name drops an entry.
    fs.rename(ROOT_INO, b"b-link", d, b"p", crate::fs::RenameMode::Replace)
        .unwrap();
    fs.setattr(
        b,
        &SetAttr {
            size: Some(1000),
            ..SetAttr::default()
        },
    )
    .unwrap();
    check(&fs);
    assert!(fs.used_bytes() > baseline + stored_once);

    // Delete everything; a is still open, so it lives until released.
    for name in ["a", "b", "a-much-longer-symlink-name", "p"] {
        fs.unlink(d, name.as_bytes()).unwrap();
    }
    fs.rmdir(ROOT_INO, b"d").unwrap();
    for ino in [a, b, s, p, d] {
        fs.forget(ino, 1000);
    }
    assert!(
        fs.used_bytes() > baseline,
        "a is open: its data is still there"
    );
    fs.release(fh).unwrap();
    check(&fs);
    assert_eq!(fs.used_bytes(), baseline);
    assert_eq!(fs.store().stats().chunks, 0);
    assert_eq!(fs.dirty_bytes(), 0);
    assert_eq!(fs.inode_count(), 1);
}

#[test]
fn a_write_past_the_cap_is_enospc_and_changes_nothing() {
    let fs = fs_with_cap(2 * MIB);
    let (_, fh) = create(&fs, ROOT_INO, "f");
    let first = noise((3 * MIB / 2) as usize, 1);
    write_all(&fs, fh, &first, 64 << 10).unwrap();
    let used = fs.used_bytes();
    assert_eq!(
        fs.write(fh, first.len() as u64, &noise(MIB as usize, 2)),
        Err(Errno::ENOSPC)
    );
    assert_eq!(fs.used_bytes(), used);
    assert_eq!(read_all(&fs, fh), first);
    // Overwriting dirty bytes costs nothing, so it fits even now.
    fs.write(fh, 0, &[1u8; 4096]).unwrap();
    assert_eq!(fs.used_bytes(), used);
    // What fits still fits.
    fs.write(fh, first.len() as u64, &[2u8; 4096]).unwrap();
    fs.flush(fh).unwrap();
    assert!(fs.used_bytes() <= fs.capacity());
    check(&fs);
}

#[test]
fn a_commit_that_does_not_fit_keeps_its_data_dirty_until_room_is_made() {
    let fs = fs_with_cap(4 * MIB);
    let other = put(&fs, ROOT_INO, "other", &noise(MIB as usize, 9));
    let (ino, fh) = create(&fs, ROOT_INO, "f");
    // Fill with dirty data to within a page of the cap: committing it needs chunk and
    // recipe metadata that is no longer there.
    let data = noise((4 * MIB) as usize, 1);
    let mut len = 0;
    for c in data.chunks(4096) {
        if fs.write(fh, len as u64, c).is_err() {
            break;
        }
        len += c.len();
    }
    assert!(fs.capacity() - fs.used_bytes() < 4096);
    let dirty = fs.dirty_bytes();
    assert_eq!(dirty, len as u64);
    assert_eq!(fs.flush(fh), Err(Errno::ENOSPC));
    assert_eq!(fs.fsync(fh, false), Err(Errno::ENOSPC));
    assert_eq!(fs.dirty_bytes(), dirty);
    assert_eq!(read_all(&fs, fh), data[..len]);
    assert!(fs.versions(ino).unwrap().is_empty());
    assert!(fs.used_bytes() <= fs.capacity());
    check(&fs);
    // Free room: the commit goes through, the data is intact.
    fs.unlink(ROOT_INO, b"other").unwrap();
    fs.forget(other, 1);
    assert_eq!(fs.flush(fh), Ok(Some(1)));
    assert_eq!(fs.dirty_bytes(), 0);
    assert_eq!(read_all(&fs, fh), data[..len]);
    fs.release(fh).unwrap();
    assert!(fs.used_bytes() <= fs.capacity());
    check(&fs);
}

#[test]
fn old_versions_are_dropped_oldest_first_to_make_room() {
    let fs = fs_with_cap(4 * MIB);
    let a = put(&fs, ROOT_INO, "a", &noise(MIB as usize, 1));
    let fh = fs.open(a, libc::O_RDWR).unwrap();
    // (Seeds are odd: noise() ignores the low bit.)
    for seed in [3, 5] {
        write_all(&fs, fh, &noise(MIB as usize, seed), 128 << 10).unwrap();
        fs.flush(fh).unwrap();
    }
    fs.release(fh).unwrap();
    let b = put(&fs, ROOT_INO, "b", &noise(100_000, 7));
    let fh = fs.open(b, libc::O_RDWR).unwrap();
    write_all(&fs, fh, &noise(200_000, 9), 128 << 10).unwrap();
    fs.flush(fh).unwrap();
    fs.release(fh).unwrap();
    let numbers = |ino| -> Vec<u64> {
        fs.versions(ino)
            .unwrap()
            .iter()
            .map(|v| v.version)
            .collect()
    };
    assert_eq!(numbers(a), vec![1, 2, 3]);
    assert_eq!(numbers(b), vec![1, 2]);
    check(&fs);
    // 3 MiB of versions and 300 KB of b leave under 1 MiB: 2 MiB more fit only without
    // a's two old versions.
    let used = fs.used_bytes();
    let c_data = noise((2 * MIB) as usize, 13);
    let c = put(&fs, ROOT_INO, "c", &c_data);
    assert!(fs.versions_dropped_for_space() >= 2);
    assert!(fs.used_bytes() < used + c_data.len() as u64);
    // The oldest went first; every file keeps its newest.
    assert_eq!(numbers(a), vec![3]);
    assert_eq!(*numbers(b).last().unwrap(), 2);
    assert_eq!(numbers(c), vec![1]);
    let fh = fs.open(a, libc::O_RDONLY).unwrap();
    assert_eq!(read_all(&fs, fh), noise(MIB as usize, 5));
    fs.release(fh).unwrap();
    check(&fs);
    // Nothing old is left to drop: the next big write fails.
    let (_, fh) = create(&fs, ROOT_INO, "d");
    assert_eq!(
        write_all(&fs, fh, &noise((2 * MIB) as usize, 5), 128 << 10),
        Err(Errno::ENOSPC)
    );
    fs.release(fh).unwrap();
    check(&fs);
}

#[test]
fn truncating_a_file_on_a_full_file_system_frees_its_chunks() {
    let fs = fs_with_cap(4 * MIB);
    let big = put(&fs, ROOT_INO, "big", &noise((3 * MIB) as usize, 1));
    let (_, fh) = create(&fs, ROOT_INO, "fill");
    let fill = noise((2 * MIB) as usize, 3);
    let mut len = 0;
    while fs
        .write(fh, len, &fill[len as usize..len as usize + 1])
        .is_ok()
    {
        len += 1;
    }
    assert_eq!(fs.used_bytes(), fs.capacity());
    let used = fs.used_bytes();
    // No writer has big open: the truncate commits at once, dropping big's old version
    // (its only one until now) because the new one would not fit beside it.
    fs.setattr(
        big,
        &SetAttr {
            size: Some(0),
            ..SetAttr::default()
        },
    )
    .unwrap();
    let versions = fs.versions(big).unwrap();
    assert_eq!(versions.len(), 1);
    assert_eq!((versions[0].version, versions[0].size), (2, 0));
    assert!(
        fs.used_bytes() + 3 * MIB - 64 * KIB < used,
        "{}",
        fs.used_bytes()
    );
    fs.write(fh, len, &noise(MIB as usize, 5)).unwrap();
    fs.flush(fh).unwrap();
    fs.release(fh).unwrap();
    check(&fs);
}

#[test]
fn metadata_past_the_cap_is_enospc_and_unlinking_restores_room() {
    let fs = fs_with_cap(256 * KIB);
    let baseline = fs.used_bytes();
    let mut n = 0;
    let err = loop {
        match fs.mknod(
            ROOT_INO,
            format!("f{n}").as_bytes(),
            libc::S_IFREG | 0o644,
            0,
            WHO,
        ) {
            Ok(_) => n += 1,
            Err(e) => break e,
        }
        assert!(n < 100_000, "never ran out");
    };
    assert_eq!(err, Errno::ENOSPC);
    let per_file = INODE_BYTES + ENTRY_BYTES;
    assert!(
        n as u64 >= (256 * KIB - baseline) / (per_file + 8) - 1,
        "{n}"
    );
    let st = fs.statfs();
    assert_eq!(st.bfree, 0);
    assert_eq!(st.ffree, 0);
    assert_eq!(st.files, fs.inode_count() as u64);
    // Everything that grows metadata fails now; what shrinks does not.
    let f0 = fs.lookup(ROOT_INO, b"f0").unwrap().ino;
    assert_eq!(
        fs.mkdir(ROOT_INO, b"d", 0o755, WHO).unwrap_err(),
        Errno::ENOSPC
    );
    assert_eq!(
        fs.symlink(ROOT_INO, b"s", b"t", WHO).unwrap_err(),
        Errno::ENOSPC
    );
    // A link costs less than a file: what room no file fits in may still take some.
    let mut links = 0;
    while fs
        .link(f0, ROOT_INO, format!("l{links}").as_bytes())
        .is_ok()
    {
        links += 1;
    }
    assert!(links <= 4, "{links}");
    assert_eq!(fs.link(f0, ROOT_INO, b"l").unwrap_err(), Errno::ENOSPC);
    assert_eq!(
        fs.create(ROOT_INO, b"c", 0o644, libc::O_RDWR, WHO)
            .unwrap_err(),
        Errno::ENOSPC
    );
    assert_eq!(
        fs.setxattr(f0, b"user.a", &[0u8; 4096], 0),
        Err(Errno::ENOSPC)
    );
    // Opening an existing name through create is no new metadata.
    let (_, fh) = fs
        .create(ROOT_INO, b"f1", 0o644, libc::O_RDWR, WHO)
        .unwrap();
    assert_eq!(fs.fallocate(fh, 0, MIB, 0), Err(Errno::ENOSPC));
    fs.fallocate(
        fh,
        0,
        4096,
        libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
    )
    .unwrap();
    fs.release(fh).unwrap();
    fs.forget(f0, 1);
    check(&fs);
    for i in 0..links {
        fs.unlink(ROOT_INO, format!("l{i}").as_bytes()).unwrap();
    }
    for i in 0..n {
        fs.unlink(ROOT_INO, format!("f{i}").as_bytes()).unwrap();
    }
    // The kernel's references keep the inodes (and their cost) until forgotten.
    assert!(fs.used_bytes() > baseline);
    for ino in 2..fs.namespace.next_ino() {
        fs.forget(ino, 1000);
    }
    assert_eq!(fs.used_bytes(), baseline);
    for i in 0..n {
        fs.mknod(
            ROOT_INO,
            format!("f{i}").as_bytes(),
            libc::S_IFREG | 0o644,
            0,
            WHO,
        )
        .unwrap();
    }
    check(&fs);
}

#[test]
fn statfs_reports_the_cap_and_the_use() {
    let fs = fs_with_cap(64 * MIB);
    let st = fs.statfs();
    assert_eq!(st.blocks * st.bsize as u64, 64 * MIB);
    assert_eq!(st.bfree, (64 * MIB - fs.used_bytes()) / 4096);
    assert_eq!(st.bavail, st.bfree);
    assert_eq!(st.files - st.ffree, 1);
    let (_, fh) = create(&fs, ROOT_INO, "f");
    write_all(&fs, fh, &noise(MIB as usize, 1), 128 << 10).unwrap();
    let after = fs.statfs();
    assert!(
        st.bfree - after.bfree >= 256,
        "{} -> {}",
        st.bfree,
        after.bfree
    );
    assert_eq!(after.files - after.ffree, 2);
    fs.flush(fh).unwrap();
    fs.release(fh).unwrap();
    let s = crate::control::stats(&fs);
    assert_eq!(s.capacity_bytes, 64 * MIB);
    assert_eq!(s.used_bytes, fs.used_bytes());
    assert!(s.used_bytes >= s.stored_bytes + s.metadata_bytes);
}

#[test]
fn concurrent_writers_never_pass_the_cap() {
    let fs = Arc::new(fs_with_cap(8 * MIB));
    let threads: Vec<_> = (0..4u64)
        .map(|t| {
            let fs = fs.clone();
            std::thread::spawn(move || {
                let (_, fh) = create(&fs, ROOT_INO, &format!("t{t}"));
                let piece = noise(64 << 10, 0);
                let mut off = 0u64;
                let mut fails = 0;
                for round in 0..200u64 {
                    let mut bytes = piece.clone();
                    bytes[..16].copy_from_slice(&[t as u8, round as u8].repeat(8));
                    match fs.write(fh, off, &bytes) {
                        Ok(_) => off += bytes.len() as u64,
                        Err(e) => {
                            assert_eq!(e, Errno::ENOSPC);
                            fails += 1;
                        }
                    }
                    assert!(fs.used_bytes() <= fs.capacity() + (1 << 20));
                    if round % 16 == 15 {
                        let _ = fs.flush(fh);
                    }
                }
                let _ = fs.release(fh);
                fails
            })
        })
        .collect();
    let fails: u32 = threads.into_iter().map(|t| t.join().unwrap()).sum();
    assert!(fails > 0);
    assert!(fs.used_bytes() <= fs.capacity());
    check(&fs);
}

#[test]
fn bytes_freed_counts_the_chunks_no_one_else_holds() {
    use crate::fs::FileContent;
    use crate::store::{Chunker, MemoryStore};
    let store = MemoryStore::new();
    let chunker = Chunker::default();
    let mut content = FileContent::default();
    content.write(0, &noise(1 << 20, 3)).unwrap();
    let one = content.commit(&chunker, &*store).unwrap().recipe;
    content.write(500_000, b"an edit").unwrap();
    let two = content.commit(&chunker, &*store).unwrap().recipe;
    let ids = |r: &Recipe| -> HashMap<ChunkId, u64> {
        r.pieces()
            .iter()
            .filter_map(|p| match &p.data {
                PieceData::Chunk(c) => Some((*c.id(), c.len() as u64)),
                PieceData::Zeros => None,
            })
            .collect()
    };
    let in_two = ids(&two);
    let only_in_one: u64 = ids(&one)
        .iter()
        .filter(|(id, _)| !in_two.contains_key(id))
        .map(|(_, len)| len + BLOB_BYTES)
        .sum();
    assert!(only_in_one > 0);
    assert_eq!(bytes_freed(&*store, &[&one], &[&two]), only_in_one);
    // One recipe holds one reference per piece, however often it is listed.
    assert_eq!(bytes_freed(&*store, &[&one, &one], &[&two]), only_in_one);
    // A recipe the file keeps frees nothing.
    assert_eq!(bytes_freed(&*store, &[&one], &[&one, &two]), 0);
    // Everything goes: every chunk (the content's base is `two` itself).
    let all = store.stats();
    assert_eq!(
        bytes_freed(&*store, &[&one, &two], &[]),
        all.stored_bytes + all.chunks * BLOB_BYTES
    );
    // A reader's own copy of a recipe keeps its chunks.
    let reader = Arc::new(Recipe::clone(&one));
    assert_eq!(bytes_freed(&*store, &[&one], &[&two]), 0);
    drop(reader);
    assert_eq!(bytes_freed(&*store, &[&one], &[&two]), only_in_one);
}

#[test]
fn write_buffers_a_pending_commit_keeps_as_chunks_count_once() {
    // A worker's commit keeps its chunks in the frozen write buffers they were cut from.
    // Until it is installed those buffers are its layers' dirty bytes and the store's chunks
    // at once; counted twice, a write near the cap failed although what memfs held fitted.
    use crate::fs::data::{prepare_layers, FileContent};
    use crate::store::{Chunker, MemoryStore};

    let store = MemoryStore::new();
    let budget = super::Budget::new(1 << 40, store.clone());
    let data = noise(8 * MIB as usize, 43);
    let mut content = FileContent::default();
    for (i, piece) in data.chunks(MIB as usize).enumerate() {
        let grown = content.write(i as u64 * MIB, piece).unwrap();
        budget.add_dirty(grown);
    }
    let through = content.freeze();
    let before = budget.used();
    let pending = content.pending_through(&through).unwrap();
    let prepared = prepare_layers(content.base(), pending, &Chunker::default(), &*store)
        .unwrap()
        .unwrap();
    // What the chunks add besides the buffers: their overhead, and the copies of the chunks
    // cut across two buffers.
    let added = budget.used() - before;
    assert!(added < MIB / 4, "a prepared commit added {added} bytes");

    // Installed, as a worker does: the count of shared buffers goes first, then the layers.
    drop(prepared.held_twice);
    let released = content.install_layers(&through, prepared.recipe).unwrap();
    budget.release_dirty(released);
    assert_eq!(budget.used(), before + added);
    assert_eq!(store.stats().held_twice_bytes, 0);
}
