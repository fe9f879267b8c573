//! The `memfs` command line.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

use memfs::mount::{self, MountConfig};
use memfs::request::KernelOptions;

mod explore;
mod history;
mod snapshot_cli;
mod tree;

#[derive(Parser)]
#[command(name = "memfs", version, about = "An in-memory FUSE file system")]
struct Cli {
    /// More log output (-v: info, -vv: debug, -vvv: trace); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Mount an empty memfs at MOUNTPOINT and serve it until unmounted.
    Mount(MountArgs),
    /// Print the directory tree under PATH with each directory's descendant count.
    Tree {
        path: PathBuf,
        /// Show directories at most this deep below PATH.
        #[arg(long)]
        depth: Option<usize>,
        /// Show each directory's Merkle hash (the first 16 hex digits of user.memfs.hash).
        #[arg(long)]
        hash: bool,
    },
    /// List the versions memfs keeps of a file.
    Log { path: PathBuf },
    /// Make version N of a file its current content (committed as a new version), or with
    /// --snapshot NAME make PATH (a file or a whole subtree) what it was in that snapshot.
    Restore {
        path: PathBuf,
        #[arg(required_unless_present = "snapshot")]
        version: Option<u64>,
        /// Restore from this snapshot (see `memfs snapshot`) instead of a version.
        #[arg(long, conflicts_with = "version")]
        snapshot: Option<String>,
        /// With --snapshot: also delete what the snapshot did not have below PATH.
        #[arg(long, requires = "snapshot")]
        delete: bool,
    },
    /// Take, list or delete whole-tree snapshots (.memfs/snapshots/NAME).
    #[command(subcommand)]
    Snapshot(SnapshotCommand),
    /// Compare two directories on memfs (live or snapshots) by their Merkle hashes: one line
    /// per difference, `A PATH`, `D PATH` or `M PATH`, sorted by path.
    Diff {
        a: PathBuf,
        b: PathBuf,
        /// Print {"changes": [{"kind", "path"}...], "visited": N} instead.
        #[arg(long)]
        json: bool,
    },
    /// Show the blob, dedup and memory statistics of a live mount.
    Stats {
        mount: PathBuf,
        /// Print the raw JSON of .memfs/stats.json.
        #[arg(long)]
        json: bool,
    },
    /// Analyse a trace written by `memfs mount --trace`.
    #[command(subcommand)]
    Trace(TraceCommand),
    /// Chunk FILE and list its chunks; with EDITED, compare fixed-size and FastCDC chunking
    /// of the two versions.
    Chunks {
        file: PathBuf,
        edited: Option<PathBuf>,
        #[command(flatten)]
        chunking: ChunkArgs,
        /// Draw the chunks of both files as coloured bars into this SVG file.
        #[arg(long)]
        svg: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum SnapshotCommand {
    /// Take a snapshot of the whole tree (NAME defaults to the UTC time).
    Create {
        mount: PathBuf,
        name: Option<String>,
    },
    /// List the snapshots with their entry counts and root hashes.
    List { mount: PathBuf },
    /// Delete a snapshot (its chunks go unless something else holds them).
    Delete { mount: PathBuf, name: String },
}

#[derive(Subcommand)]
enum TraceCommand {
    /// Per op: calls, errors, total and mean time, p50/p99 latency, bytes (like strace -c);
    /// with --by process, per program.
    Summary {
        file: PathBuf,
        /// Print the numbers as one JSON object instead of a table.
        #[arg(long)]
        json: bool,
        /// Group by op, or by program (the command name of the pid that asked).
        #[arg(long, default_value = "op", value_parser = ["op", "process"])]
        by: String,
    },
    /// Write the trace as a Parquet table, one row per request record.
    Export {
        file: PathBuf,
        /// The Parquet file to write.
        #[arg(long, value_name = "OUT")]
        parquet: PathBuf,
    },
    /// Draw the trace into an SVG: open-to-release sessions per file (or per process) on a
    /// timeline, and a latency histogram per op.
    Plot {
        file: PathBuf,
        /// The SVG file to write.
        #[arg(long, value_name = "OUT")]
        svg: PathBuf,
        /// Only files at or below this path (relative to the mount, e.g. /src).
        #[arg(long)]
        path: Option<String>,
        /// One lane per file, or per process.
        #[arg(long, default_value = "file", value_parser = ["file", "process"])]
        lanes: String,
    },
    /// Every open paired with its release, then per-file overlaps and close-to-open windows.
    Sessions {
        file: PathBuf,
        /// Only files at or below this path (relative to the mount, e.g. /src).
        #[arg(long)]
        path: Option<String>,
    },
    /// A log2 histogram of one op's latency or size.
    Hist {
        file: PathBuf,
        #[arg(long)]
        op: String,
        #[arg(long, default_value = "latency", value_parser = ["latency", "size"])]
        by: String,
    },
    /// strace-like lines, filtered.
    Show {
        file: PathBuf,
        #[arg(long)]
        op: Option<String>,
        #[arg(long)]
        pid: Option<u32>,
        /// Only records about this path or below it.
        #[arg(long)]
        path: Option<String>,
    },
}

/// Runs a trace analysis, writing to stdout; a closed pipe (`| head`) ends it quietly.
fn trace(cmd: TraceCommand) -> Result<()> {
    use memfs::trace::{analyze, by_process, export, plot};
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let result = match &cmd {
        TraceCommand::Summary { file, json, by } => match (by.as_str(), json) {
            ("process", false) => by_process::summary(file, &mut out),
            ("process", true) => by_process::summary_json(file, &mut out),
            (_, false) => analyze::summary(file, &mut out),
            (_, true) => analyze::summary_json(file, &mut out),
        },
        TraceCommand::Export { file, parquet } => {
            let started = std::time::Instant::now();
            export::parquet(file, parquet).map(|done| {
                eprintln!(
                    "memfs: wrote {} rows in {} row groups to {} in {:.2}s",
                    done.rows,
                    done.row_groups,
                    parquet.display(),
                    started.elapsed().as_secs_f64()
                )
            })
        }
        TraceCommand::Plot {
            file,
            svg,
            path,
            lanes,
        } => plot::svg(file, svg, path.as_deref(), lanes == "process"),
        TraceCommand::Sessions { file, path } => analyze::sessions(file, path.as_deref(), &mut out),
        TraceCommand::Hist { file, op, by } => analyze::hist(file, op, by == "size", &mut out),
        TraceCommand::Show {
            file,
            op,
            pid,
            path,
        } => analyze::show_records(file, op.as_deref(), *pid, path.as_deref(), &mut out),
    };
    result.and_then(|_| std::io::Write::flush(&mut out).map_err(Into::into))
}

/// Help and version print as clap prints them; a usage mistake becomes one line.
fn usage_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = e.print();
            return ExitCode::from(2);
        }
        _ => {}
    }
    eprintln!("memfs: {} (see memfs --help)", one_line(&e));
    ExitCode::from(2)
}

/// clap's message for a usage mistake, from the error's kind and context, on one line:
/// what clap would print before its usage block, with its tips joined by spaces.
fn one_line(e: &clap::Error) -> String {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    let text = |kind| match e.get(kind) {
        Some(ContextValue::String(s)) => Some(s.as_str()),
        _ => None,
    };
    let list = |kind| match e.get(kind) {
        Some(ContextValue::Strings(v)) => v.clone(),
        Some(ContextValue::String(s)) => vec![s.clone()],
        _ => Vec::new(),
    };
    let cause = std::error::Error::source(e).map(|s| s.to_string());
    let arg = text(ContextKind::InvalidArg);
    let value = text(ContextKind::InvalidValue);
    let mut line = match (e.kind(), arg, value) {
        (ErrorKind::InvalidValue, Some(arg), Some("")) => {
            format!("a value is required for '{arg}' but none was supplied")
        }
        (ErrorKind::InvalidValue, Some(arg), Some(value)) => {
            format!("invalid value '{value}' for '{arg}'")
        }
        (ErrorKind::ValueValidation, Some(arg), Some(value)) => match &cause {
            Some(cause) => format!("invalid value '{value}' for '{arg}': {cause}"),
            None => format!("invalid value '{value}' for '{arg}'"),
        },
        (ErrorKind::UnknownArgument, Some(arg), _) => format!("unexpected argument '{arg}' found"),
        (ErrorKind::MissingRequiredArgument, ..) => format!(
            "the following required arguments were not provided: {}",
            list(ContextKind::InvalidArg).join(" ")
        ),
        (ErrorKind::InvalidSubcommand, ..) if text(ContextKind::InvalidSubcommand).is_some() => {
            let sub = text(ContextKind::InvalidSubcommand).unwrap_or_default();
            format!("unrecognized subcommand '{sub}'")
        }
        // Kinds this command line cannot produce (conflicts, value counts): clap's generic text.
        (kind, ..) => kind
            .as_str()
            .map(str::to_string)
            .or(cause)
            .unwrap_or_else(|| "unknown cause".to_string()),
    };
    let possible = list(ContextKind::ValidValue);
    if e.kind() == ErrorKind::InvalidValue && !possible.is_empty() {
        line += &format!(" [possible values: {}]", possible.join(", "));
    }
    for (kind, what) in [
        (ContextKind::SuggestedSubcommand, "subcommand"),
        (ContextKind::SuggestedArg, "argument"),
        (ContextKind::SuggestedValue, "value"),
    ] {
        let similar: Vec<String> = list(kind).iter().map(|s| format!("'{s}'")).collect();
        match similar.len() {
            0 => {}
            1 => line += &format!(" tip: a similar {what} exists: {}", similar[0]),
            _ => line += &format!(" tip: some similar {what}s exist: {}", similar.join(", ")),
        }
    }
    if let Some(ContextValue::StyledStrs(tips)) = e.get(ContextKind::Suggested) {
        for tip in tips {
            line += &format!(" tip: {tip}");
        }
    }
    line
}

/// A closed stdout (`memfs stats M | head`) is how a reader says "enough", not an error.
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// How file contents are cut into chunks.
#[derive(clap::Args, Clone, Debug)]
pub struct ChunkArgs {
    /// `fastcdc` (content-defined) or `fixed` (blocks of --chunk-avg bytes).
    #[arg(long, default_value = "fastcdc", value_parser = ["fastcdc", "fixed"])]
    pub chunker: String,
    /// Smallest chunk FastCDC cuts, in bytes.
    #[arg(long, default_value_t = memfs::store::chunker::DEFAULT_MIN)]
    pub chunk_min: usize,
    /// Average chunk size, in bytes (the block size of --chunker fixed).
    #[arg(long, default_value_t = memfs::store::chunker::DEFAULT_AVG)]
    pub chunk_avg: usize,
    /// Largest chunk, in bytes.
    #[arg(long, default_value_t = memfs::store::chunker::DEFAULT_MAX)]
    pub chunk_max: usize,
}

impl ChunkArgs {
    /// The chunker these options describe, or a one-line message about a bad size.
    pub fn chunker(&self) -> Result<memfs::store::Chunker> {
        let kind = match self.chunker.as_str() {
            "fixed" => memfs::store::ChunkerKind::Fixed,
            _ => memfs::store::ChunkerKind::FastCdc,
        };
        memfs::store::Chunker::new(kind, self.chunk_min, self.chunk_avg, self.chunk_max)
            .map_err(|e| anyhow::anyhow!(e))
    }
}

#[derive(clap::Args)]
struct MountArgs {
    mountpoint: PathBuf,
    /// Threads serving requests (default: the number of CPUs).
    #[arg(long, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=1024))]
    threads: Option<usize>,
    /// Let other users use the mount (needs user_allow_other in /etc/fuse.conf for non-root).
    #[arg(long)]
    allow_other: bool,
    /// Clear a stale mount left at MOUNTPOINT by a memfs that was killed, then mount.
    #[arg(long)]
    force: bool,
    /// Seconds the kernel may cache attributes and names.
    #[arg(long, default_value_t = 60.0)]
    ttl: f64,
    /// Send every write(2) to memfs instead of letting the kernel cache writes.
    #[arg(long)]
    no_writeback_cache: bool,
    /// Answer readdir without attributes.
    #[arg(long)]
    no_readdirplus: bool,
    /// Drop a file's cached pages and a directory's cached listing at every open.
    #[arg(long)]
    no_keep_cache: bool,
    /// Let the kernel check security.capability on every write and chown instead of
    /// memfs clearing setuid/setgid itself.
    #[arg(long)]
    no_handle_killpriv: bool,
    /// Largest write request in bytes (the kernel takes no less than 4096).
    #[arg(long, default_value_t = 1 << 20,
          value_parser = clap::value_parser!(u32).range(4096..=(16 << 20)))]
    max_write: u32,
    /// Share one /dev/fuse descriptor among threads instead of one each.
    #[arg(long)]
    no_clone_fd: bool,
    /// Microseconds a serving thread polls /dev/fuse for the next request before it
    /// sleeps, while requests come back to back; 0 never polls (README "Kernel settings").
    #[arg(long, value_name = "MICROSECONDS", default_value_t = mount::DEFAULT_POLL_US,
          value_parser = clap::value_parser!(u64).range(0..=100_000))]
    poll_us: u64,
    /// KiB the kernel reads ahead of a sequential reader, set after mounting (needs root);
    /// 0 keeps the kernel's 128 (README "Kernel settings").
    #[arg(long, value_name = "KIB", default_value_t = mount::DEFAULT_READ_AHEAD_KB,
          value_parser = clap::value_parser!(u32).range(0..=65_536))]
    read_ahead_kb: u32,
    /// Serve requests over io_uring queues, one per CPU (Linux 6.14+, with
    /// /sys/module/fuse/parameters/enable_uring set to 1); fail if the kernel cannot.
    /// Without --io-uring or --dev-fuse, memfs uses rings where the kernel offers them.
    #[arg(long, conflicts_with = "dev_fuse")]
    io_uring: bool,
    /// Serve requests by reads and writes on /dev/fuse (the default where the kernel
    /// offers no FUSE over io_uring).
    #[arg(long)]
    dev_fuse: bool,
    #[command(flatten)]
    chunking: ChunkArgs,
    /// Versions kept per file; older ones are dropped with the chunks only they held.
    #[arg(long, default_value_t = memfs::fs::DEFAULT_KEEP_VERSIONS)]
    keep_versions: usize,
    /// Cap on the memory memfs holds for file contents and metadata: bytes, K/M/G/T (powers
    /// of 1024, e.g. 512M, 2G) or a percentage of physical RAM (25%). Writes, creates and
    /// commits past it fail with ENOSPC, after old versions are dropped to make room; df
    /// shows it as the size.
    #[arg(long, value_name = "SIZE", default_value = "50%", value_parser = mount::parse_max_memory)]
    max_memory: u64,
    /// Keep chunks on Redis Cluster (or one Redis server) instead of in this process:
    /// redis://HOST:PORT[,HOST:PORT...][?lease=SECONDS&replicas=N] (README "Beyond one
    /// machine").
    #[arg(long, value_name = "URL")]
    store: Option<String>,
    /// Keep every chunk's bytes as they are, instead of LZ4-compressed when that saves an
    /// eighth or more (the in-memory store; README "Compressed chunks").
    #[arg(long)]
    no_compress: bool,
    /// With --store: the bound on the local cache of recent chunks.
    #[arg(long, value_name = "SIZE", default_value = "256M", value_parser = mount::parse_max_memory)]
    cache_memory: u64,
    /// Write the final statistics (JSON) to this file at unmount.
    #[arg(long)]
    stats_out: Option<PathBuf>,
    /// Record every FUSE request to this file (JSON Lines; see README "Tracing").
    #[arg(long)]
    trace: Option<PathBuf>,
}

fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    // fuser warns that its own unmount failed after an unmount from outside: not news.
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("{default},fuser::session=error")));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Mount(args) => {
            let threads = args
                .threads
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
            if !(args.ttl >= 0.0 && args.ttl < 1e9) {
                anyhow::bail!("--ttl {}: give seconds between 0 and 1e9", args.ttl);
            }
            mount::run(MountConfig {
                mountpoint: args.mountpoint,
                threads,
                allow_other: args.allow_other,
                clone_fd: !args.no_clone_fd,
                poll_wait: std::time::Duration::from_micros(args.poll_us),
                read_ahead_kb: args.read_ahead_kb,
                chunker: args.chunking.chunker()?,
                keep_versions: args.keep_versions,
                max_memory: args.max_memory,
                stats_out: args.stats_out,
                trace: args.trace,
                force: args.force,
                transport: if args.io_uring {
                    mount::Transport::IoUring
                } else if args.dev_fuse {
                    mount::Transport::DevFuse
                } else {
                    mount::Transport::Auto
                },
                store: args
                    .store
                    .as_deref()
                    .map(|url| memfs::store::redis::RedisConfig::parse(url, args.cache_memory))
                    .transpose()
                    .map_err(anyhow::Error::msg)?,
                compress: !args.no_compress,
                kernel: KernelOptions {
                    ttl: std::time::Duration::from_secs_f64(args.ttl),
                    writeback_cache: !args.no_writeback_cache,
                    max_write: args.max_write,
                    readdirplus: !args.no_readdirplus,
                    keep_cache: !args.no_keep_cache,
                    handle_killpriv: !args.no_handle_killpriv,
                },
            })
        }
        Command::Tree { path, depth, hash } => tree::print(&path, depth, hash),
        Command::Log { path } => history::log(&path),
        Command::Trace(cmd) => trace(cmd),
        Command::Restore {
            path,
            snapshot: Some(name),
            delete,
            ..
        } => snapshot_cli::restore(&name, &path, delete),
        Command::Restore {
            path,
            version: Some(version),
            ..
        } => history::restore(&path, version),
        Command::Restore { .. } => anyhow::bail!("give a VERSION or --snapshot NAME"),
        Command::Snapshot(SnapshotCommand::Create { mount, name }) => {
            snapshot_cli::create(&mount, name.as_deref())
        }
        Command::Snapshot(SnapshotCommand::List { mount }) => snapshot_cli::list(&mount),
        Command::Snapshot(SnapshotCommand::Delete { mount, name }) => {
            snapshot_cli::delete(&mount, &name)
        }
        Command::Diff { a, b, json } => snapshot_cli::diff(&a, &b, json),
        Command::Stats { mount, json } => history::stats(&mount, json),
        Command::Chunks {
            file,
            edited,
            chunking,
            svg,
        } => explore::run(
            &file,
            edited.as_deref(),
            &chunking.chunker()?,
            svg.as_deref(),
        ),
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    init_logging(cli.verbose);
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("memfs: {e:#}");
            ExitCode::FAILURE
        }
    }
}
