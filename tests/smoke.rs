mod common;
use common::*;

#[test]
fn mount_write_read_unmount() {
    let m = Mount::new();
    std::fs::write(m.join("hello"), b"world").unwrap();
    assert_eq!(std::fs::read(m.join("hello")).unwrap(), b"world");
    assert_eq!(descendants(m.path()), 1);
    let status = m.unmount();
    assert!(status.success());
}

/// `store.bytes` and `store.held_bytes` of `.memfs/stats.json` (it waits for pending commits).
fn stored_and_held(m: &Mount) -> (u64, u64) {
    let text = std::fs::read_to_string(m.join(".memfs/stats.json")).unwrap();
    let stats: serde_json::Value = serde_json::from_str(&text).unwrap();
    let field = |k: &str| stats["store"][k].as_u64().unwrap();
    (field("bytes"), field("held_bytes"))
}

/// Text is held compressed and noise as it is, both read back whole from memfs itself (the
/// kernel's cached pages dropped first), and `--no-compress` holds everything as written.
#[test]
fn compressible_chunks_are_held_compressed_and_read_back_whole() {
    let text = memfs::testdata::source_text(4 << 20);
    let noise = memfs::testdata::noise(4 << 20, 5);
    // One version kept: every close(2) of a descriptor commits a version, and a test
    // running beside this one that forks and execs a program closes this thread's open
    // descriptors in the child (close-on-exec). CI once saw a version of the first 1.28 MiB
    // of `noise` so, whose last chunk was stored too. With one version kept it goes once
    // the whole file's version is in.
    for (args, compressed) in [
        (&["--keep-versions", "1"][..], true),
        (&["--keep-versions", "1", "--no-compress"][..], false),
    ] {
        let m = Mount::with_args(args);
        std::fs::write(m.join("text"), &text).unwrap();
        std::fs::write(m.join("noise"), &noise).unwrap();
        let (stored, held) = stored_and_held(&m);
        assert_eq!(stored, (8 << 20) as u64, "{args:?}");
        if compressed {
            assert!(
                held < stored - (text.len() / 2) as u64,
                "{held} of {stored} bytes held"
            );
        } else {
            // All of it, and the write buffers' bytes that only chunks cut across two
            // buffers used (those chunks are copied; the others keep their bytes in place).
            assert!(
                held >= stored && held < stored + stored / 20,
                "{held} of {stored} bytes held"
            );
        }
        std::fs::write("/proc/sys/vm/drop_caches", "3").unwrap();
        assert!(std::fs::read(m.join("text")).unwrap() == text, "{args:?}");
        assert!(std::fs::read(m.join("noise")).unwrap() == noise, "{args:?}");
        let fsck = std::fs::read_to_string(m.join(".memfs/fsck")).unwrap();
        assert!(fsck.contains("\"ok\": true"), "{fsck}");
    }
}

/// A written file's chunks keep their bytes in its write buffers. An edit frees one chunk
/// while its neighbours keep the buffer: the memory held stays put (the freed bytes are now
/// unused, and counted), reads see the last write, the store check passes, and removing
/// the file leaves nothing held.
#[test]
fn chunks_share_their_write_buffers_and_go_with_the_last_of_them() {
    use std::os::unix::fs::FileExt;
    let m = Mount::with_args(&["--no-compress", "--keep-versions", "1"]);
    let mut data = memfs::testdata::noise(12 << 20, 9);
    std::fs::write(m.join("f"), &data).unwrap();
    let (stored, held) = stored_and_held(&m);
    assert_eq!(stored, data.len() as u64);
    assert!(
        held > stored && held < stored + stored / 50,
        "{held} held for {stored} stored: shared, with the chunks cut across buffers copied"
    );
    // Nothing compressed: what is held beyond the stored bytes is the unused buffer bytes.
    let text = std::fs::read_to_string(m.join(".memfs/stats.json")).unwrap();
    let stats: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        stats["store"]["unused_buffer_bytes"].as_u64(),
        Some(held - stored)
    );
    // One version kept: the edited chunk's old bytes go, its buffer stays.
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(m.join("f"))
        .unwrap();
    f.write_all_at(b"edit", 6 << 20).unwrap();
    drop(f);
    data[6 << 20..(6 << 20) + 4].copy_from_slice(b"edit");
    let (stored_after, held_after) = stored_and_held(&m);
    assert!(stored_after <= stored + 2 * 65536, "{stored_after}");
    assert!(
        held_after >= held && held_after - held <= 2 * 65536,
        "{held} -> {held_after}: the new chunk is a copy, the old one's bytes unused"
    );
    std::fs::write("/proc/sys/vm/drop_caches", "3").unwrap();
    assert!(std::fs::read(m.join("f")).unwrap() == data);
    let fsck = std::fs::read_to_string(m.join(".memfs/fsck")).unwrap();
    assert!(fsck.contains("\"ok\": true"), "{fsck}");
    std::fs::remove_file(m.join("f")).unwrap();
    // The kernel forgets an unlinked inode when it gets round to it.
    let start = std::time::Instant::now();
    while stored_and_held(&m) != (0, 0) {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(10),
            "still held: {:?}",
            stored_and_held(&m)
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}
