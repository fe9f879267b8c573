//! A Redis Cluster for tests: `redis-server` processes on free loopback ports, made a
//! cluster with `redis-cli --cluster create`, killed when the guard drops. The servers are
//! started by one thread that lives as long as the test process and die with it
//! (`PR_SET_PDEATHSIG`), so a test killed by a timeout leaves none behind.

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

pub struct Cluster {
    dir: tempfile::TempDir,
    /// Masters first, then replicas (as `--cluster create` pairs them).
    pub nodes: Vec<Node>,
    pub masters: usize,
}

pub struct Node {
    pub port: u16,
    child: Option<Child>,
}

type SpawnRequest = (Command, mpsc::Sender<std::io::Result<Child>>);

/// Spawns children from a thread that never exits, so their parent-death signal fires only
/// when the test process goes.
fn spawner() -> &'static Mutex<mpsc::Sender<SpawnRequest>> {
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<SpawnRequest>>> = OnceLock::new();
    SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<SpawnRequest>();
        std::thread::spawn(move || {
            for (mut cmd, reply) in rx {
                let _ = reply.send(cmd.spawn());
            }
            // Keep this thread (the servers' parent) alive until the process exits.
            loop {
                std::thread::park();
            }
        });
        Mutex::new(tx)
    })
}

fn spawn_tied(mut cmd: Command) -> Child {
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    let (tx, rx) = mpsc::channel();
    spawner().lock().unwrap().send((cmd, tx)).expect("spawner");
    rx.recv()
        .expect("spawner reply")
        .expect("spawn redis-server")
}

/// A port that is free, with its cluster bus port (+10000) free too. Both are below the
/// kernel's ephemeral range (32768 up), so no outgoing connection takes one between this
/// check and the server's bind; a counter keeps this process's clusters apart.
fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    const FIRST: u32 = 10000;
    const SPAN: u32 = 12000;
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    let _ = NEXT.compare_exchange(
        u32::MAX,
        std::process::id().wrapping_mul(7919) % SPAN,
        Ordering::Relaxed,
        Ordering::Relaxed,
    );
    loop {
        let port = (FIRST + NEXT.fetch_add(1, Ordering::Relaxed) % SPAN) as u16;
        let free = |p: u16| TcpListener::bind(("127.0.0.1", p)).is_ok();
        if free(port) && free(port + 10000) {
            return port;
        }
    }
}

pub fn redis_cli(port: u16, args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .arg("-p")
        .arg(port.to_string())
        .args(args)
        .output()
        .expect("run redis-cli");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl Cluster {
    /// `masters` masters with `replicas` replicas each. Panics (failing the test) if the
    /// cluster does not come up within a few seconds.
    pub fn start(masters: usize, replicas: usize) -> Cluster {
        let dir = tempfile::Builder::new()
            .prefix("memfs-redis-")
            .tempdir()
            .expect("temp dir");
        let n = masters * (1 + replicas);
        let mut nodes = Vec::with_capacity(n);
        for _ in 0..n {
            let port = free_port();
            let home = dir.path().join(port.to_string());
            std::fs::create_dir_all(&home).expect("node dir");
            let mut cmd = Command::new("redis-server");
            cmd.args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--cluster-enabled", "yes", "--cluster-node-timeout", "1000"])
                // A replica takes over however long ago it last heard from its master.
                .args(["--cluster-replica-validity-factor", "0"])
                .args([
                    "--cluster-config-file",
                    "nodes.conf",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                ])
                .arg("--dir")
                .arg(&home)
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            nodes.push(Node {
                port,
                child: Some(spawn_tied(cmd)),
            });
        }
        let cluster = Cluster {
            dir,
            nodes,
            masters,
        };
        for node in &cluster.nodes {
            wait_for(Duration::from_secs(5), || {
                redis_cli(node.port, &["PING"]).contains("PONG")
            });
        }
        let addrs: Vec<String> = cluster
            .nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        let out = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&addrs)
            .args(["--cluster-replicas", &replicas.to_string(), "--cluster-yes"])
            .output()
            .expect("run redis-cli --cluster create");
        assert!(
            out.status.success(),
            "cluster create failed: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        wait_for(Duration::from_secs(10), || {
            cluster
                .nodes
                .iter()
                .all(|n| redis_cli(n.port, &["CLUSTER", "INFO"]).contains("cluster_state:ok"))
        });
        // Replicas in sync before any test relies on them.
        wait_for(Duration::from_secs(20), || {
            cluster.master_ports().iter().all(|&p| {
                let info = redis_cli(p, &["INFO", "replication"]);
                info.matches("state=online").count() == replicas
            })
        });
        cluster
    }

    /// `--store` for this cluster (every node, so any one answering will do).
    pub fn url(&self) -> String {
        let nodes: Vec<String> = self
            .nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        format!("redis://{}", nodes.join(","))
    }

    /// Ports of the nodes alive now that are masters.
    pub fn master_ports(&self) -> Vec<u16> {
        self.nodes
            .iter()
            .filter(|n| n.child.is_some())
            .filter(|n| redis_cli(n.port, &["ROLE"]).starts_with("master"))
            .map(|n| n.port)
            .collect()
    }

    /// Kills a node with SIGKILL.
    pub fn kill(&mut self, port: u16) {
        if let Some(node) = self.nodes.iter_mut().find(|n| n.port == port) {
            if let Some(mut child) = node.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }

    /// Keys matching `pattern` on every master alive.
    pub fn count_keys(&self, pattern: &str) -> usize {
        self.master_ports()
            .iter()
            .map(|&p| {
                redis_cli(p, &["--scan", "--pattern", pattern])
                    .lines()
                    .filter(|l| !l.is_empty())
                    .count()
            })
            .sum()
    }

    /// Whether every live node says the cluster is ok.
    pub fn healthy(&self) -> bool {
        self.nodes
            .iter()
            .filter(|n| n.child.is_some())
            .all(|n| redis_cli(n.port, &["CLUSTER", "INFO"]).contains("cluster_state:ok"))
    }

    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            if let Some(mut child) = node.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

/// One cluster for a whole test process (`MEMFS_TEST_STORE=cluster`): started on first
/// use, its servers die with the process.
pub fn shared() -> &'static Cluster {
    static SHARED: OnceLock<Cluster> = OnceLock::new();
    SHARED.get_or_init(|| Cluster::start(3, 0))
}

/// Polls `ok` until it holds; panics after `limit`.
pub fn wait_for(limit: Duration, mut ok: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ok() {
        assert!(
            start.elapsed() < limit,
            "condition not met within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
