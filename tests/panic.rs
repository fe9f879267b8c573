//! Panic safety through a real mount: a request that panics halfway through a change gets
//! EIO, the inode it was changing answers EIO from then on and can be removed, the counts
//! and the store stay consistent, and everything else keeps working. Uses the debug-build
//! injection points of `MEMFS_TEST_PANIC_IN`.

mod common;
use common::*;

use std::io::Write;

fn assert_fsck_clean(m: &Mount) {
    let raw = std::fs::read(m.join(".memfs/fsck")).expect("read .memfs/fsck");
    let check: serde_json::Value = serde_json::from_slice(&raw).expect(".memfs/fsck parses");
    assert_eq!(check["ok"], true, "fsck: {check:#}");
}

fn eio<T: std::fmt::Debug>(r: std::io::Result<T>) {
    let err = r.unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EIO), "{err}");
}

#[test]
fn a_panic_mid_change_poisons_only_what_it_changed_and_the_damage_can_be_removed() {
    let m = Mount::with_env(
        // Writes reach memfs at write(2), so the panicking one is the one that fails.
        &["--no-writeback-cache"],
        &[("MEMFS_TEST_PANIC_IN", "mkdir:boom-dir,write:BOOM-BYTES")],
    );
    std::fs::create_dir(m.join("d")).unwrap();
    std::fs::write(m.join("d/inside"), b"in d").unwrap();
    std::fs::create_dir_all(m.join("other/sub")).unwrap();
    std::fs::write(m.join("keep"), b"kept").unwrap();

    // mkdir panics after the entry is set in d, before d's times and the counts.
    eio(std::fs::create_dir(m.join("d/boom-dir")));
    // The kernel opens directories itself (no opendir), so listing it fails at getdents.
    eio(std::fs::read_dir(m.join("d")).and_then(|mut entries| entries.next().transpose()));
    eio(std::fs::create_dir(m.join("d/another")));
    assert_eq!(std::fs::read(m.join("keep")).unwrap(), b"kept");
    assert_counts_match_walk(&m.join("other"));
    // d, d/inside, d/boom-dir (its entry was set), other, other/sub, keep.
    assert_eq!(descendants(m.path()), 6);
    assert_fsck_clean(&m);

    // A write panics holding the file's lock.
    let mut victim = std::fs::File::create(m.join("victim")).unwrap();
    victim.write_all(b"first, fine").unwrap();
    eio(victim.write_all(b"BOOM-BYTES then more"));
    eio(victim.write_all(b"later"));
    eio(std::fs::File::open(m.join("victim")));
    drop(victim);
    assert_eq!(std::fs::read(m.join("keep")).unwrap(), b"kept");
    assert_eq!(descendants(m.path()), 7);
    assert_fsck_clean(&m);

    // The damage can be removed, a poisoned directory with what it holds.
    std::fs::remove_file(m.join("victim")).unwrap();
    std::fs::remove_dir(m.join("d")).unwrap();
    assert_counts_match_walk(m.path());
    assert_eq!(descendants(m.path()), 3);
    assert_fsck_clean(&m);

    // And the mount keeps serving.
    std::fs::create_dir(m.join("d")).unwrap();
    std::fs::write(m.join("d/new"), b"after").unwrap();
    assert_eq!(std::fs::read(m.join("d/new")).unwrap(), b"after");
    assert_counts_match_walk(m.path());
    assert_fsck_clean(&m);
    assert!(m.unmount().success());
}
