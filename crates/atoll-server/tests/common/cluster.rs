//! Multi-node harness: `atoll dev-cluster`, or `atoll serve` processes
//! started one by one (to restart them), on 127.0.0.1 .. 127.0.0.N with the
//! same ports on every address, as dev-cluster runs them.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::hash::{BuildHasher, RandomState};
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::retry::RetryConfig;

use super::{LISTENING_PREFIX, RawRequest, raw, read_log, sdk_client};

/// dev-cluster gives up after 60 s; waiting longer shows its own error.
pub const CLUSTER_STARTUP_TIMEOUT: Duration = Duration::from_secs(90);

/// Lines of each node log that failure messages show.
const LOG_TAIL: usize = 40;

/// Serializes the cluster tests of one test binary: several clusters at once
/// would starve each other on a small machine and blur every timing.
pub fn exclusive() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// A port in 20000..60000 that is free on 127.0.0.1 ..= 127.0.0.`nodes`
/// right now, other than `avoid`.
pub fn free_port(nodes: u8, avoid: u16) -> u16 {
    let random = RandomState::new();
    for attempt in 0u64..1000 {
        let port = 20_000 + (random.hash_one(attempt) % 40_000) as u16;
        let free = port != avoid
            && (1..=nodes).all(|i| TcpListener::bind(format!("127.0.0.{i}:{port}")).is_ok());
        if free {
            return port;
        }
    }
    panic!("no free port in 20000..60000 on 127.0.0.1-{nodes}");
}

/// A client that retries as the SDK does by default (standard mode, three
/// attempts: connection errors, throttling and 5xx), as a user's would.
pub fn retrying_client(endpoint: &str) -> Client {
    let config = sdk_client(endpoint)
        .config()
        .to_builder()
        .retry_config(RetryConfig::standard())
        .build();
    Client::from_conf(config)
}

/// `GET /atoll/admin` of the node at `endpoint` (`http://host:port`).
pub async fn admin(endpoint: &str) -> serde_json::Value {
    let addr = endpoint.trim_start_matches("http://").to_string();
    let response =
        tokio::task::spawn_blocking(move || raw(&addr, &RawRequest::get("/atoll/admin")))
            .await
            .unwrap_or_else(|e| panic!("GET {endpoint}/atoll/admin failed: {e}"));
    assert_eq!(
        response.status,
        200,
        "GET {endpoint}/atoll/admin: {}",
        response.text()
    );
    response.json()
}

/// The partitions of `table` in an admin view (empty if it has no such table).
pub fn partitions(report: &serde_json::Value, table: &str) -> Vec<serde_json::Value> {
    report["tables"]
        .as_array()
        .and_then(|tables| tables.iter().find(|t| t["name"] == table))
        .and_then(|t| t["partitions"].as_array())
        .cloned()
        .unwrap_or_default()
}

/// A partition's replica ids in an admin view.
pub fn replicas(partition: &serde_json::Value) -> Vec<u64> {
    partition["replicas"]
        .as_array()
        .map(|ids| ids.iter().filter_map(|id| id.as_u64()).collect())
        .unwrap_or_default()
}

/// Tails of `dir/node-{1..=nodes}.log`, for failure messages.
fn node_logs(dir: &Path, nodes: u8) -> String {
    let mut out = String::new();
    for id in 1..=nodes {
        let log = read_log(&dir.join(format!("node-{id}.log")));
        let lines: Vec<&str> = log.lines().collect();
        let tail = &lines[lines.len().saturating_sub(LOG_TAIL)..];
        out += &format!("\n--- node-{id}.log (last {LOG_TAIL} lines) ---\n");
        for line in tail {
            out += line;
            out.push('\n');
        }
    }
    out
}

fn scratch(prefix: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .expect("create scratch dir")
}

/// Keeps the scratch directory (logs, data) when a test fails, or always
/// with `ATOLL_KEEP_CLUSTER_LOGS` set, and says where.
fn keep_if_failed(scratch: &mut Option<tempfile::TempDir>) {
    let keep = std::thread::panicking() || std::env::var_os("ATOLL_KEEP_CLUSTER_LOGS").is_some();
    if keep && let Some(dir) = scratch.take() {
        eprintln!("cluster logs and data kept in {}", dir.keep().display());
    }
}

/// Forwards every stdout line of `child` to the returned channel, and keeps
/// draining after nobody listens so the process never blocks on a full pipe.
fn stdout_lines(child: &mut Child) -> Receiver<String> {
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let _ = tx.send(line);
        }
    });
    rx
}

/// Settings from the environment must not leak into the nodes.
fn clean_env(cmd: &mut Command) {
    for var in [
        "ATOLL_CONFIG",
        "ATOLL_LISTEN",
        "ATOLL_DATA_DIR",
        "ATOLL_REGION",
        "ATOLL_NODE_ID",
        "ATOLL_PEERS",
        "ATOLL_JOIN",
        "ATOLL_CLUSTER_LISTEN",
        "ATOLL_ADVERTISE",
        "ATOLL_ZONE",
        "ATOLL_DEAD_NODE_AFTER_MS",
        "ATOLL_PARTITION_SPLIT_BYTES",
        "ATOLL_PARTITION_CHECK_MS",
        "ATOLL_PARTITION_SPLIT_OPS",
    ] {
        cmd.env_remove(var);
    }
}

/// Whether process `pid` exists (a zombie not yet reaped counts).
pub fn alive(pid: libc::pid_t) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

// ---------------------------------------------------------------------------
// atoll dev-cluster
// ---------------------------------------------------------------------------

/// A running `atoll dev-cluster` whose nodes all serve. It runs in its own
/// process group, which dropping it kills (dev-cluster and every node).
pub struct DevCluster {
    child: Child,
    nodes: u8,
    /// Per node: pid and API endpoint, as dev-cluster printed them.
    announced: BTreeMap<u8, (libc::pid_t, String)>,
    dir: PathBuf,
    stderr_path: PathBuf,
    lines: Receiver<String>,
    scratch: Option<tempfile::TempDir>,
}

impl DevCluster {
    /// Starts `atoll dev-cluster --nodes N ... -- serve_args` on free ports
    /// and waits until every node serves.
    pub fn start(nodes: u8, serve_args: &[&str]) -> DevCluster {
        DevCluster::start_with_env(nodes, serve_args, &[])
    }

    /// `start`, with environment variables for dev-cluster and its nodes
    /// (`FAILPOINTS`, say).
    pub fn start_with_env(nodes: u8, serve_args: &[&str], env: &[(&str, &str)]) -> DevCluster {
        let api_port = free_port(nodes, 0);
        let cluster_port = free_port(nodes, api_port);
        let scratch = scratch("atoll-cluster-");
        let dir = scratch.path().join("cluster");
        let stderr_path = scratch.path().join("dev-cluster.stderr");
        let stderr = File::create(&stderr_path).expect("create stderr log");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_atoll"));
        cmd.arg("dev-cluster")
            .args(["--nodes", &nodes.to_string(), "--dir"])
            .arg(&dir)
            .args(["--api-port", &api_port.to_string()])
            .args(["--cluster-port", &cluster_port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr))
            .process_group(0);
        if !serve_args.is_empty() {
            cmd.arg("--").args(serve_args);
        }
        clean_env(&mut cmd);
        cmd.envs(env.iter().copied());
        // SAFETY: prctl(2) is async-signal-safe. The forking thread is the
        // test's, which outlives the cluster unless the test binary dies.
        unsafe {
            cmd.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = cmd.spawn().expect("start atoll dev-cluster");
        let lines = stdout_lines(&mut child);
        let mut cluster = DevCluster {
            child,
            nodes,
            announced: BTreeMap::new(),
            dir,
            stderr_path,
            lines,
            scratch: Some(scratch),
        };
        let deadline = Instant::now() + CLUSTER_STARTUP_TIMEOUT;
        while cluster.announced.len() < usize::from(nodes) {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = match cluster.lines.recv_timeout(left) {
                Ok(line) => line,
                Err(RecvTimeoutError::Timeout) => panic!(
                    "only {} of {nodes} nodes served within {CLUSTER_STARTUP_TIMEOUT:?}\n{}",
                    cluster.announced.len(),
                    cluster.logs()
                ),
                Err(RecvTimeoutError::Disconnected) => panic!(
                    "dev-cluster exited ({:?}) after {} of {nodes} node lines\n{}",
                    cluster.child.wait(),
                    cluster.announced.len(),
                    cluster.logs()
                ),
            };
            let (id, pid, url) = parse_node_line(&line, api_port)
                .unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
            assert!(
                (1..=nodes).contains(&id),
                "node id {id} out of 1..={nodes} in {line:?}"
            );
            assert!(
                cluster.announced.insert(id, (pid, url)).is_none(),
                "node {id} announced twice"
            );
        }
        cluster
    }

    /// Node `id`'s API endpoint, `http://127.0.0.<id>:<port>`.
    pub fn endpoint(&self, id: u8) -> &str {
        &self.announced[&id].1
    }

    /// A client of node `id` that does not retry (see `sdk_client`).
    pub fn client(&self, id: u8) -> Client {
        sdk_client(self.endpoint(id))
    }

    /// Node `id`'s process id.
    pub fn node_pid(&self, id: u8) -> libc::pid_t {
        self.announced[&id].0
    }

    /// The node ids, 1 ..= N.
    pub fn ids(&self) -> std::ops::RangeInclusive<u8> {
        1..=self.nodes
    }

    /// `kill -9` of node `id`; returns once the process is gone.
    pub fn kill9(&self, id: u8) {
        let pid = self.node_pid(id);
        // SAFETY: plain kill(2) of a node pid that dev-cluster printed; its
        // parent (dev-cluster) reaps it, so the pid is not reused meanwhile.
        assert_eq!(
            unsafe { libc::kill(pid, libc::SIGKILL) },
            0,
            "kill -9 node {id}"
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        while alive(pid) {
            assert!(
                Instant::now() < deadline,
                "node {id} (pid {pid}) survived kill -9"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The dev-cluster process's id.
    pub fn pid(&self) -> libc::pid_t {
        libc::pid_t::try_from(self.child.id()).expect("pid fits pid_t")
    }

    /// Sends `signal` to the dev-cluster process (not its nodes).
    pub fn signal(&self, signal: libc::c_int) {
        // SAFETY: kill(2) of the dev-cluster process this harness started
        // and has not reaped.
        assert_eq!(
            unsafe { libc::kill(self.pid(), signal) },
            0,
            "kill(dev-cluster, {signal})"
        );
    }

    /// dev-cluster's exit status, if it has exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().expect("waitpid")
    }

    /// Waits up to `timeout` for dev-cluster to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.exited() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A stdout line printed after the node lines, if there is one.
    pub fn next_line(&self) -> Option<String> {
        self.lines.try_recv().ok()
    }

    /// What dev-cluster printed on stderr so far.
    pub fn stderr(&self) -> String {
        read_log(&self.stderr_path)
    }

    /// All of node `id`'s log.
    pub fn node_log(&self, id: u8) -> String {
        read_log(&self.dir.join(format!("node-{id}.log")))
    }

    /// dev-cluster's stderr and the tail of every node log.
    pub fn logs(&self) -> String {
        format!(
            "--- dev-cluster stderr ---\n{}{}",
            self.stderr(),
            node_logs(&self.dir, self.nodes)
        )
    }
}

impl Drop for DevCluster {
    fn drop(&mut self) {
        // The whole group: dev-cluster and every node it started.
        // SAFETY: kill(2) on the process group this harness created.
        unsafe { libc::kill(-self.pid(), libc::SIGKILL) };
        let _ = self.child.wait();
        keep_if_failed(&mut self.scratch);
    }
}

/// Parses `node <id> pid=<pid> api=http://127.0.0.<id>:<port>` exactly.
fn parse_node_line(line: &str, api_port: u16) -> Result<(u8, libc::pid_t, String), String> {
    let bad = |why: &str| format!("bad node line {line:?}: {why}");
    let rest = line
        .strip_prefix("node ")
        .ok_or_else(|| bad("no `node ` prefix"))?;
    let parts: Vec<&str> = rest.split(' ').collect();
    let [id, pid, api] = parts[..] else {
        return Err(bad("expected `<id> pid=<pid> api=<url>`"));
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(id) {
        return Err(bad("node id is not a number"));
    }
    let id: u8 = id.parse().map_err(|_| bad("node id out of range"))?;
    let pid = pid
        .strip_prefix("pid=")
        .filter(|p| digits(p))
        .ok_or_else(|| bad("no pid=<digits>"))?;
    let pid: libc::pid_t = pid.parse().map_err(|_| bad("pid out of range"))?;
    // kill(0 or 1, ...) would hit this test's process group or init.
    if pid <= 1 {
        return Err(bad("implausible pid"));
    }
    let url = api.strip_prefix("api=").ok_or_else(|| bad("no api="))?;
    let expected = format!("http://127.0.0.{id}:{api_port}");
    if url != expected {
        return Err(bad(&format!("api should be {expected}")));
    }
    Ok((id, pid, url.to_string()))
}

// ---------------------------------------------------------------------------
// atoll serve processes, one per node, that can be restarted
// ---------------------------------------------------------------------------

/// N `atoll serve` nodes started by the test itself, with the flags
/// dev-cluster would give them, so that each can be stopped and started
/// again. Dropping it kills the nodes still running.
pub struct ServeCluster {
    nodes: u8,
    /// Node 1 starts alone and the others join it (`--join`), rather than
    /// all being named by `--peers`.
    joined: bool,
    api_port: u16,
    cluster_port: u16,
    dir: PathBuf,
    extra_args: Vec<String>,
    children: BTreeMap<u8, Child>,
    scratch: Option<tempfile::TempDir>,
}

impl ServeCluster {
    /// Starts nodes 1 ..= `nodes` together (none serves before a quorum is
    /// up) and waits until each prints its listening line.
    pub fn start(nodes: u8, extra_args: &[&str]) -> ServeCluster {
        let mut cluster = ServeCluster::unstarted(nodes, false, extra_args);
        let starting: Vec<(u8, Receiver<String>)> =
            (1..=nodes).map(|id| (id, cluster.spawn(id))).collect();
        let deadline = Instant::now() + CLUSTER_STARTUP_TIMEOUT;
        for (id, lines) in starting {
            cluster.wait_serving(id, &lines, deadline);
        }
        cluster
    }

    /// Starts node 1 alone, with an inter-node port that nodes 2 ..=
    /// `max_nodes` join later (`join`), and waits until it serves.
    pub fn start_alone(max_nodes: u8, extra_args: &[&str]) -> ServeCluster {
        let mut cluster = ServeCluster::unstarted(max_nodes, true, extra_args);
        cluster.restart(1, CLUSTER_STARTUP_TIMEOUT);
        cluster
    }

    /// Starts node `id` with `--join` naming node 1, and waits (up to
    /// `timeout`) until it serves.
    pub fn join(&mut self, id: u8, timeout: Duration) {
        assert!(
            self.joined && id > 1,
            "only a cluster started alone takes joins"
        );
        self.restart(id, timeout);
    }

    fn unstarted(nodes: u8, joined: bool, extra_args: &[&str]) -> ServeCluster {
        let api_port = free_port(nodes, 0);
        let cluster_port = free_port(nodes, api_port);
        let scratch = scratch("atoll-serve-cluster-");
        let dir = scratch.path().join("cluster");
        std::fs::create_dir_all(&dir).expect("create cluster dir");
        ServeCluster {
            nodes,
            joined,
            api_port,
            cluster_port,
            dir,
            extra_args: extra_args.iter().map(|a| a.to_string()).collect(),
            children: BTreeMap::new(),
            scratch: Some(scratch),
        }
    }

    /// Node `id`'s API endpoint, `http://127.0.0.<id>:<port>`.
    pub fn endpoint(&self, id: u8) -> String {
        format!("http://127.0.0.{id}:{}", self.api_port)
    }

    /// SIGTERM to node `id`; waits (up to `timeout`) for it to exit.
    pub fn stop(&mut self, id: u8, timeout: Duration) -> ExitStatus {
        let child = self.children.get_mut(&id).expect("node is running");
        let pid = libc::pid_t::try_from(child.id()).expect("pid fits pid_t");
        // SAFETY: kill(2) of a child we own and have not reaped.
        assert_eq!(
            unsafe { libc::kill(pid, libc::SIGTERM) },
            0,
            "SIGTERM node {id}"
        );
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = child.try_wait().expect("waitpid") {
                self.children.remove(&id);
                return status;
            }
            if Instant::now() >= deadline {
                panic!(
                    "node {id} still runs {timeout:?} after SIGTERM\n{}",
                    self.logs()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits (up to `timeout`) for node `id` to exit by itself; `None` if
    /// it still runs.
    pub fn wait_exit(&mut self, id: u8, timeout: Duration) -> Option<ExitStatus> {
        let child = self.children.get_mut(&id).expect("node is running");
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(status) = child.try_wait().expect("waitpid") {
                self.children.remove(&id);
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    /// Runs `atoll serve` for node `id` as `restart` would, expecting it to
    /// refuse to start; returns its exit status and log.
    pub fn start_refused(&mut self, id: u8, timeout: Duration) -> (Option<ExitStatus>, String) {
        let _lines = self.spawn(id);
        let status = self.wait_exit(id, timeout);
        if status.is_none() {
            self.kill9(id);
        }
        (status, self.node_log(id))
    }

    /// `kill -9` of node `id`; returns once it is gone.
    pub fn kill9(&mut self, id: u8) {
        let mut child = self.children.remove(&id).expect("node is running");
        child.kill().expect("kill -9 node");
        child.wait().expect("reap node");
    }

    /// Starts node `id` again with the same flags and data directory, and
    /// waits until it serves (within `timeout`).
    pub fn restart(&mut self, id: u8, timeout: Duration) {
        assert!(!self.children.contains_key(&id), "node {id} still runs");
        let lines = self.spawn(id);
        self.wait_serving(id, &lines, Instant::now() + timeout);
    }

    /// The tail of every node log.
    pub fn logs(&self) -> String {
        node_logs(&self.dir, self.nodes)
    }

    /// All of node `id`'s log (its stderr, over its restarts).
    pub fn node_log(&self, id: u8) -> String {
        read_log(&self.dir.join(format!("node-{id}.log")))
    }

    fn spawn(&mut self, id: u8) -> Receiver<String> {
        let host = |i: u8| format!("127.0.0.{i}");
        let peers = (1..=self.nodes)
            .map(|i| format!("{i}={}:{}", host(i), self.cluster_port))
            .collect::<Vec<_>>()
            .join(",");
        let log = self.dir.join(format!("node-{id}.log"));
        let stderr = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .expect("open node log");
        let membership: Vec<String> = match (self.joined, id) {
            (false, _) => vec!["--peers".into(), peers],
            (true, 1) => Vec::new(),
            (true, _) => vec![
                "--join".into(),
                format!("{}:{}", host(1), self.cluster_port),
            ],
        };
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_atoll"));
        cmd.arg("serve")
            .args(["--node-id", &id.to_string()])
            .args(["--listen", &format!("{}:{}", host(id), self.api_port)])
            .args([
                "--cluster-listen",
                &format!("{}:{}", host(id), self.cluster_port),
            ])
            .args(&membership)
            .arg("--data-dir")
            .arg(self.dir.join(format!("node-{id}")))
            .args(&self.extra_args)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr));
        clean_env(&mut cmd);
        let mut child = super::spawn_tied_to_this_process(cmd);
        let lines = stdout_lines(&mut child);
        self.children.insert(id, child);
        lines
    }

    fn wait_serving(&mut self, id: u8, lines: &Receiver<String>, deadline: Instant) {
        let expected = format!("{LISTENING_PREFIX}{}", self.endpoint(id));
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match lines.recv_timeout(left) {
                Ok(line) if line.trim() == expected => return,
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout) => {
                    panic!("node {id} did not serve in time\n{}", self.logs())
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let status = self.children.get_mut(&id).map(|c| c.wait());
                    self.children.remove(&id);
                    panic!(
                        "node {id} exited ({status:?}) before serving\n{}",
                        self.logs()
                    );
                }
            }
        }
    }
}

impl Drop for ServeCluster {
    fn drop(&mut self) {
        for child in self.children.values_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
        keep_if_failed(&mut self.scratch);
    }
}

/// Retries `attempt` until it yields `Ok` or `timeout` passes; each call
/// gets at most the time left. Returns the last failure on timeout.
pub async fn retry<T, F, Fut>(timeout: Duration, mut attempt: F) -> Result<T, String>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    let mut last = String::from("no attempt finished");
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            return Err(last);
        }
        match tokio::time::timeout(left, attempt()).await {
            Ok(Ok(value)) => return Ok(value),
            Ok(Err(e)) => last = e,
            Err(_) => last = format!("no answer within {timeout:?}"),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// xorshift64*: enough randomness for keys, values and operations.
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }

    /// The next number.
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number below `n`.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() >> 33) as usize % n
    }
}

/// An SDK error with its causes, for failure messages.
pub fn error_text<E: std::error::Error + 'static>(e: E) -> String {
    aws_sdk_dynamodb::error::DisplayErrorContext(&e).to_string()
}
