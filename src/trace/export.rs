//! `memfs trace export FILE --parquet OUT`: the trace as a Parquet table, one row per request
//! record, for pandas, polars, DuckDB, Spark or R.
//!
//! Columns are typed (ids, times and sizes as integers, names as strings, the few distinct
//! values of `op`, `result`, `flags`, `fopen` and `comm` dictionary-encoded, which pandas
//! reads as categoricals). Each row also carries what the trace knows beside the record:
//! the program (`comm`, `ppid`) from the pid's process line and the `path` rebuilt from the
//! trace's own lookups. The file is written as a stream, `BATCH` rows at a time, so memory
//! stays bounded whatever the length of the trace; the header goes into the file's key-value
//! metadata as `memfs_trace_header`.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use arrow_array::builder::{
    BooleanBuilder, Int64Builder, StringBuilder, StringDictionaryBuilder, UInt32Builder,
    UInt64Builder,
};
use arrow_array::types::Int32Type;
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;

use super::analyze::Paths;
use super::by_process::NamedRequests;
use super::read::header;
use super::Record;

/// Rows per Arrow batch handed to the writer: what the exporter holds in memory at once.
const BATCH: usize = 16 * 1024;
/// Rows per Parquet row group: readers skip and parallelise by row group. The writer holds
/// a whole row group in memory until it is done: a million rows took 60 MB, 256K some 20.
const ROW_GROUP: usize = 256 * 1024;

/// What an export wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exported {
    pub rows: u64,
    pub row_groups: usize,
}

/// Largest dictionary page of a column chunk; past it the column falls back to plain.
const PAGE_BYTES: usize = 256 * 1024;

type Dict = StringDictionaryBuilder<Int32Type>;

/// One builder per column, in the schema's order.
struct Columns {
    t_ns: UInt64Builder,
    dur_ns: UInt64Builder,
    unique: UInt64Builder,
    op: Dict,
    result: Dict,
    pid: UInt32Builder,
    comm: Dict,
    ppid: UInt32Builder,
    uid: UInt32Builder,
    gid: UInt32Builder,
    ino: UInt64Builder,
    parent: UInt64Builder,
    name: StringBuilder,
    newparent: UInt64Builder,
    newname: StringBuilder,
    path: StringBuilder,
    fh: UInt64Builder,
    offset: Int64Builder,
    size: UInt64Builder,
    flags: Dict,
    mode: UInt32Builder,
    set_uid: UInt32Builder,
    set_gid: UInt32Builder,
    atime_ns: Int64Builder,
    mtime_ns: Int64Builder,
    ctime_ns: Int64Builder,
    negative: BooleanBuilder,
    generation: UInt64Builder,
    attr_size: UInt64Builder,
    fopen: Dict,
    bytes: UInt64Builder,
    version: UInt64Builder,
    new_offset: Int64Builder,
    entries: UInt32Builder,
}

/// The table's schema: every record field, plus `comm`, `ppid` and `path`.
pub fn schema() -> SchemaRef {
    let dict = || DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8));
    let f = |name: &str, ty: DataType, nullable: bool| Field::new(name, ty, nullable);
    Arc::new(Schema::new(vec![
        f("t_ns", DataType::UInt64, false),
        f("dur_ns", DataType::UInt64, false),
        f("unique", DataType::UInt64, false),
        f("op", dict(), false),
        f("result", dict(), false),
        f("pid", DataType::UInt32, true),
        f("comm", dict(), true),
        f("ppid", DataType::UInt32, true),
        f("uid", DataType::UInt32, true),
        f("gid", DataType::UInt32, true),
        f("ino", DataType::UInt64, true),
        f("parent", DataType::UInt64, true),
        f("name", DataType::Utf8, true),
        f("newparent", DataType::UInt64, true),
        f("newname", DataType::Utf8, true),
        f("path", DataType::Utf8, true),
        f("fh", DataType::UInt64, true),
        f("offset", DataType::Int64, true),
        f("size", DataType::UInt64, true),
        f("flags", dict(), true),
        f("mode", DataType::UInt32, true),
        f("set_uid", DataType::UInt32, true),
        f("set_gid", DataType::UInt32, true),
        f("atime_ns", DataType::Int64, true),
        f("mtime_ns", DataType::Int64, true),
        f("ctime_ns", DataType::Int64, true),
        f("negative", DataType::Boolean, false),
        f("generation", DataType::UInt64, true),
        f("attr_size", DataType::UInt64, true),
        f("fopen", dict(), true),
        f("bytes", DataType::UInt64, true),
        f("version", DataType::UInt64, true),
        f("new_offset", DataType::Int64, true),
        f("entries", DataType::UInt32, true),
    ]))
}

impl Columns {
    fn new() -> Columns {
        let n = BATCH;
        Columns {
            t_ns: UInt64Builder::with_capacity(n),
            dur_ns: UInt64Builder::with_capacity(n),
            unique: UInt64Builder::with_capacity(n),
            op: Dict::new(),
            result: Dict::new(),
            pid: UInt32Builder::with_capacity(n),
            comm: Dict::new(),
            ppid: UInt32Builder::with_capacity(n),
            uid: UInt32Builder::with_capacity(n),
            gid: UInt32Builder::with_capacity(n),
            ino: UInt64Builder::with_capacity(n),
            parent: UInt64Builder::with_capacity(n),
            name: StringBuilder::new(),
            newparent: UInt64Builder::with_capacity(n),
            newname: StringBuilder::new(),
            path: StringBuilder::new(),
            fh: UInt64Builder::with_capacity(n),
            offset: Int64Builder::with_capacity(n),
            size: UInt64Builder::with_capacity(n),
            flags: Dict::new(),
            mode: UInt32Builder::with_capacity(n),
            set_uid: UInt32Builder::with_capacity(n),
            set_gid: UInt32Builder::with_capacity(n),
            atime_ns: Int64Builder::with_capacity(n),
            mtime_ns: Int64Builder::with_capacity(n),
            ctime_ns: Int64Builder::with_capacity(n),
            negative: BooleanBuilder::with_capacity(n),
            generation: UInt64Builder::with_capacity(n),
            attr_size: UInt64Builder::with_capacity(n),
            fopen: Dict::new(),
            bytes: UInt64Builder::with_capacity(n),
            version: UInt64Builder::with_capacity(n),
            new_offset: Int64Builder::with_capacity(n),
            entries: UInt32Builder::with_capacity(n),
        }
    }

    fn push(&mut self, r: &Record, comm: Option<&str>, ppid: Option<u32>, path: &str) {
        self.t_ns.append_value(r.t_ns);
        self.dur_ns.append_value(r.dur_ns);
        self.unique.append_value(r.unique);
        self.op.append_value(r.op.as_str());
        self.result.append_value(r.result.as_str());
        self.pid.append_option(r.pid);
        self.comm.append_option(comm);
        self.ppid.append_option(ppid);
        self.uid.append_option(r.uid);
        self.gid.append_option(r.gid);
        self.ino.append_option(r.ino);
        self.parent.append_option(r.parent);
        self.name.append_option(r.name.as_deref());
        self.newparent.append_option(r.newparent);
        self.newname.append_option(r.newname.as_deref());
        self.path.append_option((!path.is_empty()).then_some(path));
        self.fh.append_option(r.fh);
        self.offset.append_option(r.offset);
        self.size.append_option(r.size);
        self.flags.append_option(r.flags.as_deref());
        self.mode.append_option(r.mode);
        self.set_uid.append_option(r.set_uid);
        self.set_gid.append_option(r.set_gid);
        self.atime_ns.append_option(r.atime_ns);
        self.mtime_ns.append_option(r.mtime_ns);
        self.ctime_ns.append_option(r.ctime_ns);
        self.negative.append_value(r.negative);
        self.generation.append_option(r.generation);
        self.attr_size.append_option(r.attr_size);
        self.fopen.append_option(r.fopen.as_deref());
        self.bytes.append_option(r.bytes);
        self.version.append_option(r.version);
        self.new_offset.append_option(r.new_offset);
        self.entries.append_option(r.entries);
    }

    /// The rows pushed so far as a batch; the builders start empty again.
    fn batch(&mut self, schema: &SchemaRef) -> Result<RecordBatch> {
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.t_ns.finish()),
            Arc::new(self.dur_ns.finish()),
            Arc::new(self.unique.finish()),
            Arc::new(self.op.finish()),
            Arc::new(self.result.finish()),
            Arc::new(self.pid.finish()),
            Arc::new(self.comm.finish()),
            Arc::new(self.ppid.finish()),
            Arc::new(self.uid.finish()),
            Arc::new(self.gid.finish()),
            Arc::new(self.ino.finish()),
            Arc::new(self.parent.finish()),
            Arc::new(self.name.finish()),
            Arc::new(self.newparent.finish()),
            Arc::new(self.newname.finish()),
            Arc::new(self.path.finish()),
            Arc::new(self.fh.finish()),
            Arc::new(self.offset.finish()),
            Arc::new(self.size.finish()),
            Arc::new(self.flags.finish()),
            Arc::new(self.mode.finish()),
            Arc::new(self.set_uid.finish()),
            Arc::new(self.set_gid.finish()),
            Arc::new(self.atime_ns.finish()),
            Arc::new(self.mtime_ns.finish()),
            Arc::new(self.ctime_ns.finish()),
            Arc::new(self.negative.finish()),
            Arc::new(self.generation.finish()),
            Arc::new(self.attr_size.finish()),
            Arc::new(self.fopen.finish()),
            Arc::new(self.bytes.finish()),
            Arc::new(self.version.finish()),
            Arc::new(self.new_offset.finish()),
            Arc::new(self.entries.finish()),
        ];
        RecordBatch::try_new(schema.clone(), columns).context("assembling a batch of rows")
    }
}

/// Writes the request records of the trace at `trace` to `out` as Parquet (zstd, row groups
/// of `ROW_GROUP` rows).
pub fn parquet(trace: &Path, out: &Path) -> Result<Exported> {
    let header = header(trace)?;
    let schema = schema();
    let file = File::create(out).with_context(|| format!("{}", out.display()))?;
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(3)?))
        .set_max_row_group_row_count(Some(ROW_GROUP))
        // Dictionaries of a row group are held until it is written, and one of distinct
        // values only grows: off for the columns nearly every row differs in.
        .set_dictionary_page_size_limit(PAGE_BYTES)
        .set_column_dictionary_enabled("t_ns".into(), false)
        .set_column_dictionary_enabled("unique".into(), false)
        .set_column_dictionary_enabled("fh".into(), false)
        .set_created_by(format!("memfs {}", env!("CARGO_PKG_VERSION")))
        .build();
    let mut writer = ArrowWriter::try_new(file, schema.clone(), Some(props))?;
    writer.append_key_value_metadata(KeyValue::new(
        "memfs_trace_header".to_string(),
        serde_json::to_string(&header)?,
    ));
    let mut requests = NamedRequests::open(trace)?;
    let mut paths = Paths::default();
    let mut columns = Columns::new();
    let mut pending = 0usize;
    let mut rows = 0u64;
    while let Some(r) = requests.next_request() {
        let r = r?;
        let path = paths.of_record(&r);
        paths.learn(&r);
        let comm = r.pid.map(|pid| requests.names.name(Some(pid)));
        let ppid = r.pid.and_then(|pid| requests.names.parent(pid));
        columns.push(&r, comm.as_deref(), ppid, &path);
        pending += 1;
        rows += 1;
        if pending == BATCH {
            writer.write(&columns.batch(&schema)?)?;
            pending = 0;
        }
    }
    if pending > 0 {
        writer.write(&columns.batch(&schema)?)?;
    }
    let meta = writer
        .close()
        .with_context(|| format!("writing {}", out.display()))?;
    Ok(Exported {
        rows,
        row_groups: meta.num_row_groups(),
    })
}
