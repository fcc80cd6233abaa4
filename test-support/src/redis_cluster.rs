//! A throwaway Redis Cluster for the Redis ledger's Cluster tests, so that
//! `cargo test --workspace --all-features` needs nothing running beyond
//! PostgreSQL and Redis: three `redis-server --cluster-enabled yes`
//! primaries on spare loopback ports, in a temporary directory of their
//! own, persisting nothing and running `maxmemory-policy noeviction` (which
//! the ledger requires).
//!
//! [`url`] is what a test calls: the cluster named by
//! `TOKEN_REFRESH_REDIS_CLUSTER_URL` when that is set (an operator testing
//! against a real cluster), else one cluster per test binary, started on
//! first use and shared by its tests (each test works under a key prefix of
//! its own). Starting one takes about two seconds, most of it Redis's own
//! delay before a new primary accepts writes, so a cluster per test would
//! cost more than the tests.
//!
//! Stopping, by PID: an owned [`RedisCluster`] kills its nodes and removes
//! its directory when dropped. The shared one lives in a `static`, which is
//! never dropped, so every cluster also starts a small reaper (`sh`) that
//! holds the read end of a pipe whose write end only the test process has:
//! when the test process ends, however it ends (passed, failed, aborted,
//! killed), the pipe reads end-of-file and the reaper kills the nodes it
//! was given by PID and removes the directory. No `atexit`, no signal
//! handler, no unsafe code; nothing of another test run is ever touched.
//!
//! Fails loudly (never skips) when `redis-server` is missing or the
//! cluster does not come up.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::tls::spare_cluster_port;

/// The environment variable naming a cluster to use instead of starting
/// one: `redis-cluster://HOST:PORT[,HOST:PORT…]`.
pub const URL_VAR: &str = "TOKEN_REFRESH_REDIS_CLUSTER_URL";

/// How many primaries a cluster has.
const NODES: usize = 3;

/// The slots of a Redis Cluster.
const SLOTS: usize = 16_384;

/// How long a node may take to answer after it was spawned.
const NODE_START: Duration = Duration::from_secs(10);

/// How long the cluster may take to reach `cluster_state:ok` on every node
/// (Redis alone waits two seconds before a new primary turns writable).
const CLUSTER_START: Duration = Duration::from_secs(30);

/// The `redis-cluster://` URL the Cluster tests use: `TOKEN_REFRESH_REDIS_CLUSTER_URL`
/// when set (and not empty), else that of this test binary's own cluster,
/// started on the first call (by whichever test gets there first; the
/// others wait for it) and stopped when the test process exits.
///
/// Panics, failing the calling test, when the cluster cannot be started.
pub fn url() -> String {
    if let Some(url) = std::env::var(URL_VAR).ok().filter(|url| !url.is_empty()) {
        return url;
    }
    static SHARED: OnceLock<RedisCluster> = OnceLock::new();
    SHARED.get_or_init(RedisCluster::start).url()
}

/// A Redis Cluster of three primaries this process started on spare
/// loopback ports; its nodes are stopped by PID and its directory removed
/// when it is dropped or, at the latest, when the process exits.
#[derive(Debug)]
pub struct RedisCluster {
    nodes: Vec<Node>,
    dir: PathBuf,
    /// The reaper and the write end of its pipe (see the module docs).
    reaper: Option<(Child, ChildStdin)>,
}

#[derive(Debug)]
struct Node {
    child: Child,
    port: u16,
}

impl RedisCluster {
    /// Starts the nodes, assigns each a third of the slots, introduces them
    /// to each other (`CLUSTER MEET`) and waits until every node reports
    /// `cluster_state:ok` and knows the other two.
    ///
    /// Panics when `redis-server` is not installed, or when the cluster is
    /// not up within 30 seconds (the message carries each node's
    /// `CLUSTER INFO` and log).
    pub fn start() -> Self {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("tr-redis-cluster-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
        // Built first, so a panic below drops it and stops what was started.
        let mut cluster = Self { nodes: Vec::new(), dir, reaper: None };
        for _ in 0..NODES {
            let node = start_node(&cluster.dir);
            cluster.nodes.push(node);
        }
        cluster.reaper = Some(start_reaper(&cluster.dir, cluster.nodes.iter().map(|node| node.child.id())));

        for (i, node) in cluster.nodes.iter().enumerate() {
            let (first, last) = (i * SLOTS / NODES, (i + 1) * SLOTS / NODES - 1);
            cluster.command(node.port, &["CLUSTER", "ADDSLOTSRANGE", &first.to_string(), &last.to_string()]);
        }
        // Every pair meets directly rather than by gossip: it comes up sooner.
        for (i, node) in cluster.nodes.iter().enumerate() {
            for other in &cluster.nodes[i + 1..] {
                cluster.command(node.port, &["CLUSTER", "MEET", "127.0.0.1", &other.port.to_string()]);
            }
        }
        cluster.wait_until_ok();
        cluster
    }

    /// Its `redis-cluster://127.0.0.1:A,127.0.0.1:B,127.0.0.1:C` URL.
    pub fn url(&self) -> String {
        let nodes: Vec<String> = self.ports().iter().map(|port| format!("127.0.0.1:{port}")).collect();
        format!("redis-cluster://{}", nodes.join(","))
    }

    /// Its nodes' ports on 127.0.0.1.
    pub fn ports(&self) -> Vec<u16> {
        self.nodes.iter().map(|node| node.port).collect()
    }

    /// Its nodes' process ids.
    pub fn pids(&self) -> Vec<u32> {
        self.nodes.iter().map(|node| node.child.id()).collect()
    }

    /// `args` sent to the node on `port`; panics with the nodes' logs on an
    /// error reply.
    fn command(&self, port: u16, args: &[&str]) -> String {
        command(port, args)
            .unwrap_or_else(|e| panic!("{args:?} on the Redis Cluster node at {port}: {e}{}", self.logs()))
    }

    fn wait_until_ok(&self) {
        let deadline = Instant::now() + CLUSTER_START;
        let ok = |info: &str| {
            let lines: Vec<&str> = info.lines().map(str::trim_end).collect();
            lines.contains(&"cluster_state:ok") && lines.contains(&format!("cluster_known_nodes:{NODES}").as_str())
        };
        let mut infos = Vec::new();
        while Instant::now() < deadline {
            infos = self.nodes.iter().map(|node| command(node.port, &["CLUSTER", "INFO"])).collect::<Vec<_>>();
            if infos.iter().all(|info| info.as_deref().is_ok_and(ok)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let states: Vec<String> = self
            .nodes
            .iter()
            .zip(&infos)
            .map(|(node, info)| format!("node {}: {}", node.port, info.as_deref().unwrap_or_else(|e| e).trim()))
            .collect();
        panic!(
            "the throwaway Redis Cluster did not reach cluster_state:ok on every node within {CLUSTER_START:?}\n{}{}",
            states.join("\n"),
            self.logs()
        );
    }

    /// The last lines of each node's log, for a failure message.
    fn logs(&self) -> String {
        let mut logs = String::new();
        for node in &self.nodes {
            let log = std::fs::read_to_string(log_file(&self.dir, node.port)).unwrap_or_default();
            let lines: Vec<&str> = log.lines().collect();
            let tail = lines[lines.len().saturating_sub(20)..].join("\n");
            logs.push_str(&format!("\n--- log of node {} ---\n{tail}", node.port));
        }
        logs
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        // The reaper first, so it never acts on PIDs after this.
        if let Some((mut reaper, _pipe)) = self.reaper.take() {
            let _ = reaper.kill();
            let _ = reaper.wait();
        }
        for node in &mut self.nodes {
            let _ = node.child.kill();
            let _ = node.child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn log_file(dir: &Path, port: u16) -> PathBuf {
    dir.join(format!("redis-{port}.log"))
}

/// One cluster-enabled `redis-server` on a spare port (its bus port, 10 000
/// above, spare too), answering and known to be the process spawned here:
/// a port taken between choosing and binding (another test, another
/// program) makes the server exit, or answers with another server's process
/// id, and a new port is tried.
fn start_node(dir: &Path) -> Node {
    let mut last = String::new();
    for _ in 0..20 {
        let port = spare_cluster_port();
        let mut child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--cluster-enabled", "yes"])
            .args(["--cluster-config-file", &dir.join(format!("nodes-{port}.conf")).to_string_lossy()])
            .args(["--cluster-node-timeout", "5000"])
            .args(["--save", "", "--appendonly", "no", "--maxmemory-policy", "noeviction"])
            .args(["--dir", &dir.to_string_lossy(), "--logfile", &log_file(dir, port).to_string_lossy()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "redis-server must be installed for the Redis Cluster tests (Debian/Ubuntu: apt-get install \
                     redis-server; macOS: brew install redis), or {URL_VAR} set to a running cluster: {e}"
                )
            });
        let pid = child.id();
        let deadline = Instant::now() + NODE_START;
        let answered = loop {
            if let Ok(Some(status)) = child.try_wait() {
                last = format!("redis-server on port {port} exited ({status}): {}", tail(&log_file(dir, port)));
                break false;
            }
            if let Ok(info) = command(port, &["INFO", "server"]) {
                if info.lines().any(|line| line.trim_end() == format!("process_id:{pid}")) {
                    break true;
                }
                last = format!("port {port} is another server's");
                break false;
            }
            if Instant::now() > deadline {
                last = format!("redis-server on port {port} did not answer within {NODE_START:?}");
                break false;
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        if answered {
            return Node { child, port };
        }
        let _ = child.kill();
        let _ = child.wait();
    }
    panic!("could not start a Redis Cluster node on a spare port: {last}");
}

/// The last lines of a log file.
fn tail(path: &Path) -> String {
    let log = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(5)..].join(" | ")
}

/// The reaper: `sh` blocked reading a pipe only this process writes to;
/// at end of file (this process gone) it kills `pids` and removes `dir`.
fn start_reaper(dir: &Path, pids: impl Iterator<Item = u32>) -> (Child, ChildStdin) {
    // `cat` returns at end of file only: nothing is ever written.
    const SCRIPT: &str = r#"dir=$1; shift; cat >/dev/null; kill -KILL "$@" 2>/dev/null; sleep 1; rm -rf "$dir""#;
    let mut reaper = Command::new("sh")
        .args(["-c", SCRIPT, "token-refresh-redis-cluster-reaper", &dir.to_string_lossy()])
        .args(pids.map(|pid| pid.to_string()))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start sh (the Redis Cluster's reaper): {e}"));
    let pipe = reaper.stdin.take().expect("piped stdin");
    (reaper, pipe)
}

/// One command on a new connection to 127.0.0.1:`port`, in RESP: the reply
/// (status, integer or bulk string) as text, or what went wrong. Enough for
/// setting a cluster up without a client library.
pub(crate) fn command(port: u16, args: &[&str]) -> Result<String, String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).map_err(|e| e.to_string())?;
    stream.set_write_timeout(Some(Duration::from_secs(5))).map_err(|e| e.to_string())?;
    let mut request = format!("*{}\r\n", args.len());
    for arg in args {
        request.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
    }
    stream.write_all(request.as_bytes()).map_err(|e| e.to_string())?;
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).map_err(|e| e.to_string())?;
    let line = line.trim_end();
    let (kind, rest) = line.split_at_checked(1).ok_or("the connection closed without a reply")?;
    match kind {
        "+" | ":" => Ok(rest.to_owned()),
        "-" => Err(rest.to_owned()),
        "$" => {
            let len: usize = rest.parse().map_err(|_| format!("unexpected reply {line:?}"))?;
            let mut body = vec![0; len + 2];
            reader.read_exact(&mut body).map_err(|e| e.to_string())?;
            body.truncate(len);
            String::from_utf8(body).map_err(|e| e.to_string())
        }
        _ => Err(format!("unexpected reply {line:?}")),
    }
}
