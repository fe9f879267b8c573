//! The `memfs` command line.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

use memfs::fuse::KernelOptions;
use memfs::mount::{self, MountConfig};

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
    },
}

#[derive(clap::Args)]
struct MountArgs {
    mountpoint: PathBuf,
    /// Threads serving requests (default: the number of CPUs).
    #[arg(long)]
    threads: Option<usize>,
    /// Let other users use the mount (needs user_allow_other in /etc/fuse.conf for non-root).
    #[arg(long)]
    allow_other: bool,
    /// Seconds the kernel may cache attributes and names.
    #[arg(long, default_value_t = 60.0)]
    ttl: f64,
    /// Send every write(2) to memfs instead of letting the kernel cache writes.
    #[arg(long)]
    no_writeback_cache: bool,
    /// Answer readdir without attributes.
    #[arg(long)]
    no_readdirplus: bool,
    /// Largest write request in bytes.
    #[arg(long, default_value_t = 1 << 20)]
    max_write: u32,
    /// Share one /dev/fuse descriptor among threads instead of one each.
    #[arg(long)]
    no_clone_fd: bool,
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
                kernel: KernelOptions {
                    ttl: std::time::Duration::from_secs_f64(args.ttl),
                    writeback_cache: !args.no_writeback_cache,
                    max_write: args.max_write,
                    readdirplus: !args.no_readdirplus,
                },
            })
        }
        Command::Tree { path, depth } => tree::print(&path, depth),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose);
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("memfs: {e:#}");
            ExitCode::FAILURE
        }
    }
}
