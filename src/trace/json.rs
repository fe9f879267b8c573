//! A record as a line of JSON, written by hand for the writer thread. serde_json's derived
//! serializer escaped every key and went through a map serializer per field, which was most
//! of the writer's time (`perf` on `benches/trace.rs`); the keys here are constants and only
//! names and unknown op or errno names can need escaping. The bytes are serde_json's own:
//! the test below holds the two to each other.

use super::name::NameText;
use super::{Flags, Op, Outcome, Process, Record};

/// Appends a process line and a newline to `line`.
pub fn write_process(line: &mut Vec<u8>, p: &Process) {
    let mut buf = itoa::Buffer::new();
    line.extend_from_slice(b"{\"process\":");
    line.extend_from_slice(buf.format(p.process).as_bytes());
    line.extend_from_slice(b",\"t_ns\":");
    line.extend_from_slice(buf.format(p.t_ns).as_bytes());
    if let Some(comm) = &p.comm {
        key_of(line, "comm");
        string(line, comm);
    }
    number(line, &mut buf, "ppid", p.ppid);
    number(line, &mut buf, "tgid", p.tgid);
    line.extend_from_slice(b"}\n");
}

/// Appends `record` and a newline to `line`.
pub fn write_record<N: NameText>(line: &mut Vec<u8>, r: &Record<Flags, N>) {
    let mut buf = itoa::Buffer::new();
    line.push(b'{');
    if r.unique != 0 {
        line.extend_from_slice(b"\"unique\":");
        line.extend_from_slice(buf.format(r.unique).as_bytes());
        line.push(b',');
    }
    line.extend_from_slice(b"\"t_ns\":");
    line.extend_from_slice(buf.format(r.t_ns).as_bytes());
    line.extend_from_slice(b",\"dur_ns\":");
    line.extend_from_slice(buf.format(r.dur_ns).as_bytes());
    line.extend_from_slice(b",\"op\":");
    match &r.op {
        Op::Other(name) => string(line, name),
        op => plain(line, op.as_str()),
    }
    number(line, &mut buf, "ino", r.ino);
    number(line, &mut buf, "parent", r.parent);
    text(line, "name", r.name.as_ref());
    number(line, &mut buf, "newparent", r.newparent);
    text(line, "newname", r.newname.as_ref());
    number(line, &mut buf, "fh", r.fh);
    number(line, &mut buf, "pid", r.pid);
    number(line, &mut buf, "uid", r.uid);
    number(line, &mut buf, "gid", r.gid);
    number(line, &mut buf, "offset", r.offset);
    number(line, &mut buf, "size", r.size);
    flags(line, "flags", r.flags);
    number(line, &mut buf, "mode", r.mode);
    number(line, &mut buf, "set_uid", r.set_uid);
    number(line, &mut buf, "set_gid", r.set_gid);
    number(line, &mut buf, "atime_ns", r.atime_ns);
    number(line, &mut buf, "mtime_ns", r.mtime_ns);
    number(line, &mut buf, "ctime_ns", r.ctime_ns);
    line.extend_from_slice(b",\"result\":");
    match &r.result {
        Outcome::Other(name) => string(line, name),
        outcome => plain(line, outcome.as_str()),
    }
    if r.negative {
        line.extend_from_slice(b",\"negative\":true");
    }
    number(line, &mut buf, "generation", r.generation);
    number(line, &mut buf, "attr_size", r.attr_size);
    flags(line, "fopen", r.fopen);
    number(line, &mut buf, "bytes", r.bytes);
    number(line, &mut buf, "version", r.version);
    number(line, &mut buf, "new_offset", r.new_offset);
    number(line, &mut buf, "entries", r.entries);
    line.extend_from_slice(b"}\n");
}

fn number<N: itoa::Integer>(line: &mut Vec<u8>, buf: &mut itoa::Buffer, key: &str, v: Option<N>) {
    if let Some(v) = v {
        key_of(line, key);
        line.extend_from_slice(buf.format(v).as_bytes());
    }
}

fn flags(line: &mut Vec<u8>, key: &str, v: Option<Flags>) {
    if let Some(flags) = v {
        key_of(line, key);
        // Flag names, octal modes and `to ino=.. fh=.. off=..`: nothing to escape.
        plain(line, &flags.describe());
    }
}

fn text<N: NameText>(line: &mut Vec<u8>, key: &str, v: Option<&N>) {
    if let Some(v) = v {
        key_of(line, key);
        string(line, &v.text());
    }
}

fn key_of(line: &mut Vec<u8>, key: &str) {
    line.extend_from_slice(b",\"");
    line.extend_from_slice(key.as_bytes());
    line.extend_from_slice(b"\":");
}

/// A string known to need no escaping.
fn plain(line: &mut Vec<u8>, s: &str) {
    line.push(b'"');
    line.extend_from_slice(s.as_bytes());
    line.push(b'"');
}

/// Any string, escaped as serde_json escapes it.
fn string(line: &mut Vec<u8>, s: &str) {
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        plain(line, s);
    } else {
        // Writing to a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *line, s);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::Errno;
    use crate::trace::Name;

    fn base<N>() -> Record<Flags, N> {
        Record {
            t_ns: 12,
            dur_ns: 3400,
            ..Record::new(Op::Lookup)
        }
    }

    #[test]
    fn lines_are_serde_jsons_bytes() {
        let every = Record {
            unique: 77,
            ino: Some(u64::MAX),
            parent: Some(1),
            name: Some("a \"quoted\"\\ näme\u{1}\n".into()),
            newparent: Some(2),
            newname: Some("plain".into()),
            fh: Some(9),
            pid: Some(42),
            uid: Some(0),
            gid: Some(u32::MAX),
            offset: Some(-5),
            size: Some(4096),
            flags: Some(Flags::Open(libc::O_WRONLY | libc::O_CREAT)),
            result: Outcome::Err(Errno::ENOENT),
            mode: Some(0o4755),
            set_uid: Some(1000),
            set_gid: Some(0),
            atime_ns: Some(-1_500_000_000),
            mtime_ns: Some(i64::MAX),
            ctime_ns: Some(0),
            negative: true,
            generation: Some(0),
            attr_size: Some(1 << 40),
            fopen: Some(Flags::Fopen(2)),
            bytes: Some(0),
            version: Some(3),
            new_offset: Some(-1),
            entries: Some(7),
            ..base()
        };
        let records = [
            base(),
            every,
            Record {
                op: Op::Other("batch\"forget".into()),
                result: Outcome::Other("E?".into()),
                flags: Some(Flags::CopyTo(1, 2, 3)),
                ..base()
            },
            Record {
                op: Op::Setattr,
                flags: Some(Flags::Setattr(0x1ff)),
                ..base()
            },
            Record {
                op: Op::CopyFileRange,
                flags: Some(Flags::Mode(0o644)),
                name: Some(String::new()),
                ..base()
            },
        ];
        for r in &records {
            let mut line = Vec::new();
            write_record(&mut line, r);
            let mut expected = serde_json::to_vec(r).unwrap();
            expected.push(b'\n');
            assert_eq!(
                String::from_utf8(line).unwrap(),
                String::from_utf8(expected).unwrap()
            );
        }
    }

    #[test]
    fn process_lines_are_serde_jsons_bytes() {
        let every = Process {
            process: 7,
            t_ns: 99,
            comm: Some("cc1 \"x\"".into()),
            ppid: Some(1),
            tgid: Some(7),
        };
        let gone = Process {
            comm: None,
            ppid: None,
            tgid: None,
            ..every.clone()
        };
        for p in [every, gone] {
            let mut line = Vec::new();
            write_process(&mut line, &p);
            let mut expected = serde_json::to_vec(&p).unwrap();
            expected.push(b'\n');
            assert_eq!(String::from_utf8(line), String::from_utf8(expected));
        }
    }

    /// Names queued as bytes are written as their text, invalid UTF-8 replaced.
    #[test]
    fn queued_names_are_written_as_text() {
        let long = "long".repeat(40);
        for (bytes, text) in [
            (b"f\xffo".as_slice(), "f\u{fffd}o"),
            (b"tab\tquote\"".as_slice(), "tab\tquote\""),
            (long.as_bytes(), long.as_str()),
        ] {
            let queued = Record {
                name: Some(Name::new(bytes)),
                newname: Some(Name::new(b"n")),
                ..base()
            };
            let read_back = Record {
                name: Some(text.to_string()),
                newname: Some("n".to_string()),
                ..base()
            };
            let mut line = Vec::new();
            write_record(&mut line, &queued);
            let mut expected = serde_json::to_vec(&read_back).unwrap();
            expected.push(b'\n');
            assert_eq!(line, expected);
            assert_eq!(
                serde_json::to_vec(&queued).unwrap(),
                &expected[..expected.len() - 1]
            );
        }
    }
}
