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
    for (args, compressed) in [(&[][..], true), (&["--no-compress"][..], false)] {
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
