//! `atoll dev-cluster`: three node processes come up, serve one table
//! together, survive `kill -9` of one node, and all stop on Ctrl-C.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::hash::{BuildHasher, RandomState};
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::types::{AttributeValue, ScalarAttributeType};
use common::*;

/// dev-cluster gives up after 60 s; waiting longer shows its own error.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(90);
/// Table creation and routing may take a moment to reach every node.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(30);
/// After a node is killed, its leaderships must move within this.
const FAILOVER_TIMEOUT: Duration = Duration::from_secs(10);
const EXIT_TIMEOUT: Duration = Duration::from_secs(20);

/// The dev-cluster process, in its own process group so that a failing test
/// takes the nodes down with it.
struct DevCluster {
    child: Child,
    dir: PathBuf,
    stderr_path: PathBuf,
    _scratch: tempfile::TempDir,
}

impl DevCluster {
    fn start(api_port: u16, cluster_port: u16) -> (DevCluster, mpsc::Receiver<String>) {
        let scratch = tempfile::Builder::new()
            .prefix("atoll-dev-cluster-")
            .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .expect("create scratch dir");
        let dir = scratch.path().join("cluster");
        let stderr_path = scratch.path().join("dev-cluster.stderr");
        let stderr = File::create(&stderr_path).expect("create stderr log");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_atoll"));
        cmd.arg("dev-cluster")
            .args(["--nodes", "3", "--dir"])
            .arg(&dir)
            .args(["--api-port", &api_port.to_string()])
            .args(["--cluster-port", &cluster_port.to_string()])
            .env_remove("ATOLL_CONFIG")
            .env_remove("ATOLL_LISTEN")
            .env_remove("ATOLL_DATA_DIR")
            .env_remove("ATOLL_NODE_ID")
            .env_remove("ATOLL_PEERS")
            .env_remove("ATOLL_CLUSTER_LISTEN")
            .env_remove("ATOLL_ADVERTISE")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr))
            .process_group(0);
        // SAFETY: prctl(2) is async-signal-safe. The forking thread is this
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
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                // Keep draining even once nobody listens.
                let _ = tx.send(line);
            }
        });
        let cluster = DevCluster {
            child,
            dir,
            stderr_path,
            _scratch: scratch,
        };
        (cluster, rx)
    }

    fn pid(&self) -> libc::pid_t {
        libc::pid_t::try_from(self.child.id()).expect("pid fits pid_t")
    }

    /// dev-cluster's stderr and the tail of every node log, for failure messages.
    fn logs(&self) -> String {
        let mut out = format!("--- dev-cluster stderr ---\n{}", read(&self.stderr_path));
        for id in 1..=3 {
            let log = read(&self.dir.join(format!("node-{id}.log")));
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            out += &format!("\n--- node-{id}.log (last 40 lines) ---\n");
            for line in tail.into_iter().rev() {
                out += line;
                out.push('\n');
            }
        }
        out
    }

    fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().expect("waitpid") {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

impl Drop for DevCluster {
    fn drop(&mut self) {
        // The whole group: dev-cluster and every node it started.
        // SAFETY: kill(2) on a process group this test created.
        unsafe { libc::kill(-self.pid(), libc::SIGKILL) };
        let _ = self.child.wait();
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| format!("<cannot read {}: {e}>", path.display()))
}

/// A port in 20000..60000 that is free on 127.0.0.1-3 right now.
fn free_port(avoid: u16) -> u16 {
    let random = RandomState::new();
    for attempt in 0u64..1000 {
        let port = 20_000 + (random.hash_one(attempt) % 40_000) as u16;
        let free = port != avoid
            && (1..=3).all(|i| TcpListener::bind(format!("127.0.0.{i}:{port}")).is_ok());
        if free {
            return port;
        }
    }
    panic!("no free port in 20000..60000 on 127.0.0.1-3");
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

fn alive(pid: libc::pid_t) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

/// Retries `attempt` until it yields `Some` or `timeout` passes; each call
/// gets at most the time left. Returns the last failure on timeout.
async fn retry<T, F, Fut>(timeout: Duration, mut attempt: F) -> Result<T, String>
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

async fn put(client: &Client, table: &str, pk: &str, value: &str) -> Result<(), String> {
    let req = client.put_item().table_name(table);
    let req = req.set_item(Some(item([("pk", s(pk)), ("v", s(value))])));
    req.send()
        .await
        .map(drop)
        .map_err(|e| DisplayErrorContext(&e).to_string())
}

/// ConsistentRead GetItem; `Ok(None)` is an answer, not a failure to retry.
async fn get(
    client: &Client,
    table: &str,
    pk: &str,
) -> Result<Option<HashMap<String, AttributeValue>>, String> {
    let req = client
        .get_item()
        .table_name(table)
        .key("pk", s(pk))
        .consistent_read(true);
    match req.send().await {
        Ok(out) => Ok(out.item().cloned()),
        Err(e) => Err(DisplayErrorContext(&e).to_string()),
    }
}

#[test]
fn dev_cluster_serves_survives_a_crash_and_stops_on_ctrl_c() {
    let api_port = free_port(0);
    let cluster_port = free_port(api_port);
    let (mut cluster, lines) = DevCluster::start(api_port, cluster_port);

    // Every stdout line must be a node line; three of them, one per node.
    let mut nodes: BTreeMap<u8, (libc::pid_t, String)> = BTreeMap::new();
    let deadline = Instant::now() + STARTUP_TIMEOUT;
    while nodes.len() < 3 {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = match lines.recv_timeout(left) {
            Ok(line) => line,
            Err(RecvTimeoutError::Timeout) => panic!(
                "only {} of 3 node lines within {STARTUP_TIMEOUT:?}: {nodes:?}\n{}",
                nodes.len(),
                cluster.logs()
            ),
            Err(RecvTimeoutError::Disconnected) => panic!(
                "dev-cluster exited ({:?}) after {} of 3 node lines\n{}",
                cluster.wait_exit(Duration::from_secs(5)),
                nodes.len(),
                cluster.logs()
            ),
        };
        let (id, pid, url) =
            parse_node_line(&line, api_port).unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
        assert!(
            (1..=3).contains(&id),
            "node id {id} out of 1..=3 in {line:?}"
        );
        assert!(
            nodes.insert(id, (pid, url)).is_none(),
            "node {id} announced twice"
        );
    }
    let endpoint = |id: u8| nodes[&id].1.clone();
    let pid = |id: u8| nodes[&id].0;

    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    runtime.block_on(async {
        let (c1, c2, c3) = (sdk_client(&endpoint(1)), sdk_client(&endpoint(2)), sdk_client(&endpoint(3)));
        let table = "dev_cluster";
        create_table(&c1, table, ScalarAttributeType::S, None).await;

        let result = retry(SETTLE_TIMEOUT, || put(&c2, table, "k1", "one")).await;
        result.unwrap_or_else(|e| panic!("PutItem through node 2 failed for {SETTLE_TIMEOUT:?}: {e}\n{}", cluster.logs()));
        let got = retry(SETTLE_TIMEOUT, || get(&c3, table, "k1")).await;
        let got = got.unwrap_or_else(|e| panic!("GetItem through node 3 failed for {SETTLE_TIMEOUT:?}: {e}\n{}", cluster.logs()));
        assert_eq!(got, Some(item([("pk", s("k1")), ("v", s("one"))])), "consistent read through node 3 after an acknowledged put through node 2");

        // Node 3 crashes; nodes 1 and 2 are still a quorum.
        // SAFETY: plain kill(2) of a node pid that dev-cluster printed.
        assert_eq!(unsafe { libc::kill(pid(3), libc::SIGKILL) }, 0, "kill -9 node 3");
        for (pk, value) in [("k1", "two"), ("k2", "three")] {
            let result = retry(FAILOVER_TIMEOUT, || put(&c1, table, pk, value)).await;
            result.unwrap_or_else(|e| panic!("PutItem {pk} through node 1 after kill -9 of node 3 did not succeed within {FAILOVER_TIMEOUT:?}: {e}\n{}", cluster.logs()));
            let got = retry(FAILOVER_TIMEOUT, || get(&c2, table, pk)).await;
            let got = got.unwrap_or_else(|e| panic!("GetItem {pk} through node 2 after kill -9 of node 3 did not succeed within {FAILOVER_TIMEOUT:?}: {e}\n{}", cluster.logs()));
            assert_eq!(got, Some(item([("pk", s(pk)), ("v", s(value))])), "consistent read through node 2 after kill -9 of node 3");
        }
    });

    // dev-cluster notices the crash, does not restart node 3, keeps running.
    let crash_line = format!(
        "atoll dev-cluster: node 3 (pid {}) exited: signal 9",
        pid(3)
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while !read(&cluster.stderr_path).contains(&crash_line) {
        assert!(
            Instant::now() < deadline,
            "dev-cluster did not report {crash_line:?}\n{}",
            cluster.logs()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        cluster.child.try_wait().expect("waitpid").is_none(),
        "dev-cluster exited after one node crashed\n{}",
        cluster.logs()
    );
    assert!(
        lines.try_recv().is_err(),
        "unexpected stdout after start-up (a restarted node?)"
    );

    // Ctrl-C: dev-cluster stops the remaining nodes and exits 0.
    // SAFETY: kill(2) of the dev-cluster process this test started.
    assert_eq!(
        unsafe { libc::kill(cluster.pid(), libc::SIGINT) },
        0,
        "SIGINT dev-cluster"
    );
    let status = cluster.wait_exit(EXIT_TIMEOUT);
    let status = status.unwrap_or_else(|| {
        panic!(
            "dev-cluster still running {EXIT_TIMEOUT:?} after SIGINT\n{}",
            cluster.logs()
        )
    });
    assert!(
        status.success(),
        "dev-cluster exited with {status} after SIGINT\n{}",
        cluster.logs()
    );
    for id in 1..=3 {
        assert!(
            !alive(pid(id)),
            "node {id} (pid {}) still runs after dev-cluster exited",
            pid(id)
        );
    }
}
