//! A trace as research data: the Parquet export (read back with the parquet crate, and with
//! pyarrow and pandas when they are installed, as scripts/test.sh does in CI) and the plot.

mod common;
use common::*;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use arrow_array::cast::AsArray;
use arrow_array::types::{Int32Type, UInt64Type};
use arrow_array::Array;
use arrow_schema::DataType;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

/// A traced mount where a file is written, read while a writer holds uncommitted data (a
/// close-to-open window), renamed and looked up in vain. Returns the trace's path.
fn a_traced_session(dir: &Path) -> PathBuf {
    let trace = dir.join("t.jsonl");
    let m = Mount::with_args(&["--trace", trace.to_str().unwrap(), "--no-writeback-cache"]);
    std::fs::create_dir(m.join("src")).unwrap();
    let f = m.join("src/main.c");
    {
        let mut w = std::fs::File::create(&f).unwrap();
        w.write_all(b"int main(void) { return 0; }\n").unwrap();
        let mut s = String::new();
        std::fs::File::open(&f)
            .unwrap()
            .read_to_string(&mut s)
            .unwrap();
        w.sync_all().unwrap();
    }
    // Fewer files than the plot's 40 lanes, so each has one.
    for i in 0..30 {
        std::fs::write(m.join(format!("src/gen{i}.h")), b"#pragma once\n").unwrap();
    }
    std::fs::rename(&f, m.join("src/app.c")).unwrap();
    assert!(std::fs::metadata(m.join("src/nothing.h")).is_err());
    assert!(m.unmount().success());
    trace
}

/// The records of a trace, per op, as `memfs trace summary --json` counts them.
fn calls_per_op(trace: &Path) -> serde_json::Value {
    let json: serde_json::Value = serde_json::from_str(&memfs_trace(&[
        "summary",
        "--json",
        trace.to_str().unwrap(),
    ]))
    .unwrap();
    json
}

#[test]
fn export_writes_one_typed_row_per_record() {
    let dir = tempfile::tempdir().unwrap();
    let trace = a_traced_session(dir.path());
    let out = dir.path().join("t.parquet");
    memfs_trace(&[
        "export",
        trace.to_str().unwrap(),
        "--parquet",
        out.to_str().unwrap(),
    ]);
    let summary = calls_per_op(&trace);
    let records = summary["records"].as_u64().unwrap();

    let file = std::fs::File::open(&out).unwrap();
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
    let meta = builder.metadata().clone();
    let header = meta
        .file_metadata()
        .key_value_metadata()
        .and_then(|kv| kv.iter().find(|k| k.key == "memfs_trace_header"))
        .and_then(|k| k.value.clone())
        .expect("the trace header in the file's metadata");
    assert!(header.contains("\"memfs_trace\":2"), "{header}");
    let schema = builder.schema().clone();
    let dict = DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8));
    for (name, ty) in [
        ("t_ns", DataType::UInt64),
        ("dur_ns", DataType::UInt64),
        ("unique", DataType::UInt64),
        ("ino", DataType::UInt64),
        ("offset", DataType::Int64),
        ("pid", DataType::UInt32),
        ("op", dict.clone()),
        ("result", dict.clone()),
        ("flags", dict.clone()),
        ("comm", dict.clone()),
        ("name", DataType::Utf8),
        ("path", DataType::Utf8),
        ("negative", DataType::Boolean),
    ] {
        let field = schema.field_with_name(name).unwrap();
        assert_eq!(field.data_type(), &ty, "column {name}");
    }
    let mut rows = 0u64;
    let mut creates = 0u64;
    let mut negatives = 0u64;
    let mut app_c = 0u64;
    for batch in builder.build().unwrap() {
        let batch = batch.unwrap();
        rows += batch.num_rows() as u64;
        let op = batch
            .column_by_name("op")
            .unwrap()
            .as_dictionary::<Int32Type>();
        let ops = op.values().as_string::<i32>();
        let t_ns = batch
            .column_by_name("t_ns")
            .unwrap()
            .as_primitive::<UInt64Type>();
        let negative = batch.column_by_name("negative").unwrap().as_boolean();
        let path = batch.column_by_name("path").unwrap().as_string::<i32>();
        for i in 0..batch.num_rows() {
            let key = op.keys().value(i) as usize;
            if ops.value(key) == "create" {
                creates += 1;
            }
            if negative.value(i) {
                negatives += 1;
            }
            assert!(t_ns.value(i) > 0 || i == 0, "times are filled in");
            if !path.is_null(i) && path.value(i) == "/src/app.c" {
                app_c += 1;
            }
        }
    }
    assert_eq!(rows, records, "one row per request record");
    assert_eq!(creates, summary["ops"]["create"]["calls"].as_u64().unwrap());
    assert!(negatives >= 1, "the lookup of src/nothing.h");
    assert!(app_c >= 1, "paths follow the rename");

    // pyarrow and pandas read it too, with one row per record, and a groupby gives back the
    // summary's counts. CI installs both (scripts/test.sh); elsewhere this part is skipped.
    let have_pandas = Command::new("python3")
        .args(["-c", "import pyarrow, pandas"])
        .status()
        .is_ok_and(|s| s.success());
    if !have_pandas {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must have pyarrow and pandas (scripts/test.sh installs them)"
        );
        eprintln!("pyarrow/pandas not installed: skipping the Python half");
        return;
    }
    let script = r#"
import json, sys
import pyarrow.parquet as pq
import pandas as pd
path, expected = sys.argv[1], json.loads(sys.argv[2])
table = pq.read_table(path)
df = pd.read_parquet(path)
assert table.num_rows == expected["records"] == len(df), (table.num_rows, len(df))
assert str(df["op"].dtype) == "category", df["op"].dtype
calls = df.groupby("op", observed=True).size()
for op, s in expected["ops"].items():
    assert calls[op] == s["calls"], (op, calls[op], s["calls"])
    total = int(df.loc[df.op == op, "dur_ns"].sum())
    assert total == s["total_ns"], (op, total, s["total_ns"])
print("ok", len(df))
"#;
    let out = Command::new("python3")
        .args(["-c", script, out.to_str().unwrap(), &summary.to_string()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn plot_draws_sessions_windows_and_histograms() {
    let dir = tempfile::tempdir().unwrap();
    let trace = a_traced_session(dir.path());
    let svg = dir.path().join("t.svg");
    memfs_trace(&[
        "plot",
        trace.to_str().unwrap(),
        "--svg",
        svg.to_str().unwrap(),
        "--path",
        "/src",
    ]);
    let text = std::fs::read_to_string(&svg).unwrap();
    assert!(text.starts_with("<svg"), "{}", &text[..100.min(text.len())]);
    // A lane per file under /src, named by its path when opened.
    assert!(text.contains("/src/main.c") && text.contains("/src/gen7.h"));
    assert!(text.contains("files under /src"));
    // The close-to-open window is shaded in the window colour (besides the legend's swatch).
    let shade = "fill=\"#F6C4C4\"";
    assert!(text.matches(shade).count() >= 2, "no window drawn");
    // Latency histograms of the busiest ops.
    assert!(
        text.contains("create: ") && text.contains("write: "),
        "histograms"
    );
    assert!(
        text.len() < 1 << 20,
        "the picture stays small: {} bytes",
        text.len()
    );

    let per_process = dir.path().join("p.svg");
    memfs_trace(&[
        "plot",
        trace.to_str().unwrap(),
        "--svg",
        per_process.to_str().unwrap(),
        "--lanes",
        "process",
    ]);
    let text = std::fs::read_to_string(&per_process).unwrap();
    assert!(text.contains("one lane per process"));
}
