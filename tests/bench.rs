//! The workload benchmark runner (scripts/bench.py) end to end, on a tiny C project.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

fn runner() -> Command {
    let mut cmd = Command::new("python3");
    cmd.arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/bench.py"))
        .arg("--memfs")
        .arg(env!("CARGO_BIN_EXE_memfs"));
    cmd
}

/// A two-file C project with a Makefile, and a workload definition that builds it.
fn tiny_project(dir: &Path, build: &str) -> PathBuf {
    let src = dir.join("tiny-src");
    std::fs::create_dir_all(src.join("lib")).unwrap();
    std::fs::write(src.join("lib/greet.h"), "const char *greet(void);\n").unwrap();
    std::fs::write(
        src.join("lib/greet.c"),
        "#include \"greet.h\"\nconst char *greet(void) { return \"hello from tiny\"; }\n",
    )
    .unwrap();
    std::fs::write(
        src.join("main.c"),
        "#include <stdio.h>\n#include \"lib/greet.h\"\nint main(void) { puts(greet()); return 0; }\n",
    )
    .unwrap();
    std::fs::write(
        src.join("Makefile"),
        "tiny: main.o lib/greet.o\n\tcc -o $@ $^\n",
    )
    .unwrap();
    let def = dir.join("tiny.toml");
    std::fs::write(
        &def,
        format!(
            "name = \"tiny\"\n[source]\npath = \"tiny-src\"\n[build]\npackages = [\"make\"]\n\
             build = '{build}'\ncheck = \"./tiny\"\n"
        ),
    )
    .unwrap();
    def
}

/// Mount points the runner left behind under dir.
fn mounts_under(dir: &Path) -> Vec<String> {
    let dir = dir.to_str().unwrap();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|m| m.starts_with(dir))
        .map(String::from)
        .collect()
}

#[test]
fn runner_measures_a_tiny_project_on_memfs_traced_memfs_and_tmpfs() {
    let dir = tempfile::tempdir().unwrap();
    let def = tiny_project(dir.path(), "make -j$JOBS");
    let out = dir.path().join("out");
    let run = runner()
        .args([
            "--targets",
            "memfs,memfs-trace,tmpfs",
            "--rounds",
            "2",
            "--cache",
        ])
        .arg(dir.path().join("cache"))
        .arg("--out")
        .arg(&out)
        .arg(&def)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    assert!(
        stderr.contains("tiny round 2/2 memfs-trace: clone"),
        "no progress: {stderr}"
    );
    assert_eq!(mounts_under(dir.path()), Vec::<String>::new());

    let result: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    let runs = result["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 6, "2 rounds x 3 targets");
    for r in runs {
        assert_eq!(r["ok"], true, "{r}");
        for phase in ["clone", "build", "walk", "rm"] {
            assert!(r["phases"][phase].as_f64().unwrap() > 0.0, "{phase}: {r}");
        }
        assert_eq!(r["check"]["output"], "hello from tiny", "{r}");
        // Every target saw the same tree: sources, objects, binary and .git.
        assert_eq!(r["files"], runs[0]["files"], "{r}");
        assert_eq!(r["dirs"], runs[0]["dirs"], "{r}");
        assert!(r["apparent_bytes"].as_u64().unwrap() > 10_000, "{r}");
        if r["target"] == "tmpfs" {
            assert!(r["peak_rss_bytes"].is_null());
            continue;
        }
        assert!(r["peak_rss_bytes"].as_u64().unwrap() > 1 << 20, "{r}");
        let stats = &r["memfs_stats"];
        assert_eq!(stats["files"], r["files"], "{r}");
        assert!(stats["stored_bytes"].as_u64().unwrap() > 0, "{r}");
        assert_eq!(r["memfs_stats_after_rm"]["logical_bytes"], 0, "{r}");
        if r["target"] == "memfs-trace" {
            let calls = &r["trace"]["calls"];
            assert!(calls["write"].as_u64().unwrap() > 0, "{r}");
            assert!(
                calls["unlink"].as_u64().unwrap() >= r["files"].as_u64().unwrap(),
                "{r}"
            );
        }
    }
    let summary = &result["summary"]["tiny"];
    assert_eq!(summary["tmpfs"]["ratio_to_tmpfs"]["build"], 1.0);
    assert!(
        summary["memfs"]["ratio_to_tmpfs"]["total"]
            .as_f64()
            .unwrap()
            > 0.0
    );
    assert!(
        summary["memfs-trace"]["fuse_calls"]["create"]
            .as_u64()
            .unwrap()
            > 0
    );

    let table = std::fs::read_to_string(out.join("results.md")).unwrap();
    for row in [
        "| memfs |",
        "| memfs-trace |",
        "| tmpfs |",
        "**tiny**",
        "FUSE calls",
    ] {
        assert!(table.contains(row), "{row} missing: {table}");
    }
    for svg in ["time-tiny.svg", "memory.svg"] {
        let path = out.join(svg);
        let check = Command::new("python3")
            .args([
                "-c",
                "import sys, xml.dom.minidom as m; m.parse(sys.argv[1])",
            ])
            .arg(&path)
            .status()
            .unwrap();
        assert!(check.success(), "{svg} is not well-formed XML");
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.contains("<rect") || text.contains("<circle"),
            "{svg} draws nothing"
        );
    }
}

#[test]
fn interrupted_runner_unmounts_and_stops_the_build() {
    let dir = tempfile::tempdir().unwrap();
    let started = dir.path().join("started");
    // A unique sleep, so the test can tell whether the build was left running.
    let def = tiny_project(
        dir.path(),
        &format!("touch {} && sleep 613.25", started.display()),
    );
    let mut child = runner()
        .args(["--targets", "memfs", "--rounds", "1", "--cache"])
        .arg(dir.path().join("cache"))
        .arg("--out")
        .arg(dir.path().join("out"))
        .arg(&def)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while !started.exists() {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "the build never started"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        mounts_under(dir.path()).len(),
        1,
        "the memfs target is mounted"
    );
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().unwrap();
    assert!(!status.success(), "an interrupted run reports failure");
    assert_eq!(mounts_under(dir.path()), Vec::<String>::new());
    let sleeping = Command::new("pgrep")
        .args(["-f", "sleep 613.25"])
        .output()
        .unwrap();
    assert!(sleeping.stdout.is_empty(), "the build was left running");
}

/// The phase benchmark (scripts/bench-phases.sh) in smoke mode, one round: every phase is
/// measured on every target and lands in the table and the chart.
#[test]
fn phase_benchmark_smoke_round_reports_every_phase() {
    let scripts = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts");
    let redis_tgz = Path::new("/work/srcpkgs/redis_7.0.15.orig.tar.gz");
    if !redis_tgz.exists() && !Path::new("/work/srccache/redis-src/.git").exists() {
        eprintln!("skipping: no redis tarball at {}", redis_tgz.display());
        return;
    }
    let mut targets = vec!["memfs:"];
    let peer = Command::new(scripts.join("passthrough-hp.sh"))
        .arg("--check")
        .output()
        .unwrap();
    if peer.status.success() {
        targets.push("passthrough_hp:passthrough_hp");
    } else {
        eprintln!(
            "skipping the passthrough_hp target: {}",
            String::from_utf8_lossy(&peer.stderr).trim()
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let run = Command::new("bash")
        .arg(scripts.join("bench-phases.sh"))
        .args(["-q", "-r", "1", "-b", env!("CARGO_BIN_EXE_memfs"), "-o"])
        .arg(&out)
        .args(&targets)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    assert_eq!(mounts_under(dir.path()), Vec::<String>::new());

    let names: Vec<&str> = std::iter::once("tmpfs")
        .chain(targets.iter().map(|t| t.split(':').next().unwrap()))
        .collect();
    let phases = [
        "clone",
        "walk-cold",
        "walk-warm",
        "untar",
        "write",
        "read",
        "small",
        "rm",
    ];
    let raw = std::fs::read_to_string(out.join("raw.csv")).unwrap();
    assert_eq!(raw.lines().count(), 1 + phases.len() * names.len(), "{raw}");
    for line in raw.lines().skip(1) {
        assert!(line.ends_with(",ok"), "a failed or wrong run: {line}");
    }

    let labels = std::fs::read_to_string(out.join("phases.tsv")).unwrap();
    let keys: Vec<&str> = labels
        .lines()
        .map(|l| l.split('\t').next().unwrap())
        .collect();
    assert_eq!(keys, phases);
    let table = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(
        table.contains(&format!("| phase | {} |", names.join(" | "))),
        "{table}"
    );
    for line in labels.lines() {
        let label = line.split('\t').nth(1).unwrap();
        // In the wall-time ratios, the CPU ratios, the medians and the spread of the
        // ratios, a number in every cell.
        let rows: Vec<&str> = table
            .lines()
            .filter(|l| l.starts_with(&format!("| {label} |")))
            .collect();
        assert_eq!(rows.len(), 4, "{label}: {table}");
        assert!(
            rows[3].contains('–'),
            "no lowest–highest spread: {}",
            rows[3]
        );
        for row in rows {
            assert!(!row.contains('—') && !row.contains('!'), "{row}");
        }
    }
    let memory = table
        .lines()
        .find(|l| l.starts_with("| peak RSS / bytes stored |"))
        .unwrap_or_else(|| panic!("no memory row: {table}"));
    assert_eq!(memory.matches('(').count(), names.len() - 1, "{memory}");

    let svg = out.join("phases.svg");
    let check = Command::new("python3")
        .args([
            "-c",
            "import sys, xml.dom.minidom as m; m.parse(sys.argv[1])",
        ])
        .arg(&svg)
        .status()
        .unwrap();
    assert!(check.success(), "phases.svg is not well-formed XML");
    let text = std::fs::read_to_string(&svg).unwrap();
    for word in phases.iter().chain(&names[1..]) {
        assert!(
            text.contains(&format!(">{word}<")),
            "{word} missing from the chart"
        );
    }
}
