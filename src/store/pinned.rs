//! Write buffers shared by the chunks cut from them, with exact accounting of the bytes they
//! keep that no chunk uses (the slack).
//!
//! A commit cuts its chunks from a file's frozen write buffers (`fs/data/layer.rs`). The
//! in-memory store keeps a new chunk as the slice of its buffer it already is, instead of a
//! copy: the copy cost a fresh page for every byte written, a third of memfs's CPU time in
//! a 1 GiB write. A buffer is freed only with the last chunk cut from it, so the bytes of
//! it that no live chunk uses (chunks stored already, or kept compressed, or cut across
//! two buffers and so copied, or freed since) are memory too. The store shares a buffer
//! only when its new chunks use nearly all of it (see `MemoryStore::put_cuts`), and counts
//! the slack here, so the memory it reports and the cap it enforces see it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;

/// A write buffer pinned by the chunks that share it. Created counting all of it as slack;
/// each chunk's slice of it then moves its bytes from the slack to the chunk, and back when
/// the chunk goes. The last one gone frees the buffer, and its bytes leave the slack.
pub(super) struct Pinned {
    buffer: Bytes,
    slack: Arc<AtomicU64>,
}

impl Pinned {
    pub(super) fn new(buffer: Bytes, slack: Arc<AtomicU64>) -> Arc<Pinned> {
        slack.fetch_add(buffer.len() as u64, Ordering::Relaxed);
        Arc::new(Pinned { buffer, slack })
    }

    /// The buffer's length.
    pub(super) fn len(&self) -> usize {
        self.buffer.len()
    }

    /// A chunk's bytes: `part`, a slice of this buffer, kept without a copy.
    pub(super) fn share(self: &Arc<Pinned>, part: &Bytes) -> Bytes {
        let start = part.as_ptr() as usize - self.buffer.as_ptr() as usize;
        debug_assert!(
            start + part.len() <= self.buffer.len(),
            "not a slice of the buffer"
        );
        self.slack.fetch_sub(part.len() as u64, Ordering::Relaxed);
        Bytes::from_owner(Part {
            pinned: self.clone(),
            start,
            len: part.len(),
        })
    }
}

impl Drop for Pinned {
    fn drop(&mut self) {
        self.slack
            .fetch_sub(self.buffer.len() as u64, Ordering::Relaxed);
    }
}

/// The owner of one chunk's slice of a pinned buffer.
struct Part {
    pinned: Arc<Pinned>,
    start: usize,
    len: usize,
}

impl AsRef<[u8]> for Part {
    fn as_ref(&self) -> &[u8] {
        &self.pinned.buffer[self.start..self.start + self.len]
    }
}

impl Drop for Part {
    fn drop(&mut self) {
        // Back to the slack until the buffer itself goes (right after, if this was the last).
        self.pinned
            .slack
            .fetch_add(self.len as u64, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slack_is_the_pinned_bytes_no_live_chunk_uses() {
        let slack = Arc::new(AtomicU64::new(0));
        let buffer = Bytes::from((0..100u8).collect::<Vec<u8>>());
        let pinned = Pinned::new(buffer.clone(), slack.clone());
        assert_eq!(slack.load(Ordering::Relaxed), 100);
        let a = pinned.share(&buffer.slice(0..60));
        let b = pinned.share(&buffer.slice(60..90));
        drop(pinned);
        assert_eq!(
            slack.load(Ordering::Relaxed),
            10,
            "the last 10 bytes are unused"
        );
        assert_eq!(&a[..], &buffer[0..60]);
        assert_eq!(&b[..], &buffer[60..90]);
        let c = a.slice(10..20);
        drop(a);
        assert_eq!(
            slack.load(Ordering::Relaxed),
            10,
            "a slice of a chunk keeps it"
        );
        drop(c);
        assert_eq!(slack.load(Ordering::Relaxed), 70, "a's bytes stay, unused");
        drop(b);
        assert_eq!(slack.load(Ordering::Relaxed), 0, "the buffer is freed");
    }
}
