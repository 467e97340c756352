//! The cluster under test: `atoll serve` processes on 127.0.0.x, each
//! reaching every peer through its own proxy, and the faults done to them.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use atoll_faults::proxy::Proxy;
use rand::Rng;
use rand::rngs::StdRng;

type HarnessError = Box<dyn std::error::Error>;

/// One node: how to start it, and its process when running.
struct Node {
    args: Vec<String>,
    log: PathBuf,
    child: Option<Child>,
    stopped: bool,
}

/// The nodes and the proxies between them.
pub struct Cluster {
    bin: PathBuf,
    nodes: Mutex<BTreeMap<u8, Node>>,
    /// Proxy of the link from node a to node b, by (a, b).
    proxies: BTreeMap<(u8, u8), Arc<Proxy>>,
    /// API endpoint of each node.
    pub endpoints: BTreeMap<u8, String>,
}

fn free_port(rng: &mut StdRng) -> u16 {
    rng.gen_range(20000..60000)
}

impl Cluster {
    /// Starts `count` nodes with proxies on every link and waits until all
    /// serve; a node silent for `dead_node_after_ms` has its replicas rebuilt.
    pub async fn start(
        bin: &Path,
        count: u8,
        dir: &Path,
        dead_node_after_ms: u64,
        extra_args: &[String],
        rng: &mut StdRng,
    ) -> Result<Cluster, HarnessError> {
        let api_port = free_port(rng);
        let cluster_port = api_port + 1;
        let mut proxies = BTreeMap::new();
        for from in 1..=count {
            for to in (1..=count).filter(|to| *to != from) {
                let proxy =
                    Proxy::start("127.0.0.1:0", format!("127.0.0.{to}:{cluster_port}")).await?;
                proxies.insert((from, to), proxy);
            }
        }
        let mut nodes = BTreeMap::new();
        let mut endpoints = BTreeMap::new();
        for id in 1..=count {
            let peers: Vec<String> = (1..=count)
                .map(|peer| match proxies.get(&(id, peer)) {
                    Some(proxy) => format!("{peer}={}", proxy.addr),
                    None => format!("{peer}=127.0.0.{peer}:{cluster_port}"),
                })
                .collect();
            let mut args = vec![
                "serve".to_string(),
                "--node-id".into(),
                id.to_string(),
                "--listen".into(),
                format!("127.0.0.{id}:{api_port}"),
                "--cluster-listen".into(),
                format!("127.0.0.{id}:{cluster_port}"),
                "--peers".into(),
                peers.join(","),
                "--data-dir".into(),
                dir.join(format!("node-{id}")).display().to_string(),
                "--dead-node-after-ms".into(),
                dead_node_after_ms.to_string(),
            ];
            args.extend(extra_args.iter().cloned());
            endpoints.insert(id, format!("http://127.0.0.{id}:{api_port}"));
            let log = dir.join(format!("node-{id}.log"));
            nodes.insert(
                id,
                Node {
                    args,
                    log,
                    child: None,
                    stopped: false,
                },
            );
        }
        let cluster = Cluster {
            bin: bin.to_path_buf(),
            nodes: Mutex::new(nodes),
            proxies,
            endpoints,
        };
        for id in 1..=count {
            cluster.spawn(id)?;
        }
        for id in 1..=count {
            cluster.wait_serving(id).await?;
        }
        Ok(cluster)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u8, Node>> {
        self.nodes.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn spawn(&self, id: u8) -> Result<(), HarnessError> {
        let mut nodes = self.lock();
        let node = nodes.get_mut(&id).ok_or("no such node")?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&node.log)?;
        let child = Command::new(&self.bin)
            .args(&node.args)
            .env("NO_COLOR", "1")
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()?;
        node.child = Some(child);
        node.stopped = false;
        Ok(())
    }

    /// Waits until node `id` prints its listening line (60 s at most).
    async fn wait_serving(&self, id: u8) -> Result<(), HarnessError> {
        let stdout = {
            let mut nodes = self.lock();
            let node = nodes.get_mut(&id).ok_or("no such node")?;
            node.child
                .as_mut()
                .and_then(|c| c.stdout.take())
                .ok_or("node not running")?
        };
        let ready = tokio::task::spawn_blocking(move || {
            let mut lines = BufReader::new(stdout).lines();
            let serving = lines
                .by_ref()
                .map_while(Result::ok)
                .any(|line| line.starts_with("atoll: listening on "));
            // Keep draining, so the node never blocks on a full pipe.
            std::thread::spawn(move || lines.for_each(drop));
            serving
        });
        match tokio::time::timeout(Duration::from_secs(60), ready).await {
            Ok(Ok(true)) => Ok(()),
            _ => Err(format!("node {id} did not serve within 60 s").into()),
        }
    }

    fn signal(&self, id: u8, signal: libc::c_int) {
        if let Some(child) = self.lock().get(&id).and_then(|n| n.child.as_ref())
            && let Ok(pid) = libc::pid_t::try_from(child.id())
        {
            // SAFETY: kill(2) on the pid of a child this harness spawned and has not reaped.
            unsafe {
                libc::kill(pid, signal);
            }
        }
    }

    fn reap(&self, id: u8) {
        let child = self.lock().get_mut(&id).and_then(|n| n.child.take());
        if let Some(mut child) = child {
            let _ = child.wait();
        }
    }

    fn cut(&self, node: u8, cut: bool) {
        for ((from, to), proxy) in &self.proxies {
            if *from == node || *to == node {
                proxy.set_cut(cut);
            }
        }
    }

    /// Does fault `kind` to node `id`, holds it for `hold`, then undoes it.
    pub async fn inject(&self, kind: &str, id: u8, hold: Duration) -> Result<(), HarnessError> {
        match kind {
            "kill" => {
                self.signal(id, libc::SIGKILL);
                self.reap(id);
                tokio::time::sleep(hold).await;
                self.spawn(id)?;
                self.wait_serving(id).await?;
            }
            "stop" => {
                self.signal(id, libc::SIGSTOP);
                if let Some(node) = self.lock().get_mut(&id) {
                    node.stopped = true;
                }
                tokio::time::sleep(hold).await;
                self.signal(id, libc::SIGCONT);
                if let Some(node) = self.lock().get_mut(&id) {
                    node.stopped = false;
                }
            }
            "restart" => {
                self.signal(id, libc::SIGTERM);
                let reaped = {
                    let child = self.lock().get_mut(&id).and_then(|n| n.child.take());
                    tokio::task::spawn_blocking(move || child.map(|mut c| c.wait()))
                };
                let _ = tokio::time::timeout(Duration::from_secs(20), reaped).await;
                self.spawn(id)?;
                self.wait_serving(id).await?;
            }
            "partition" => {
                self.cut(id, true);
                tokio::time::sleep(hold).await;
                self.cut(id, false);
            }
            other => return Err(format!("unknown fault {other}").into()),
        }
        Ok(())
    }

    /// Heals every link and resumes every paused node.
    pub async fn heal_all(&self) -> Result<(), HarnessError> {
        for proxy in self.proxies.values() {
            proxy.set_cut(false);
        }
        let ids: Vec<u8> = self.lock().keys().copied().collect();
        for id in ids {
            self.signal(id, libc::SIGCONT);
        }
        Ok(())
    }

    /// Stops every node (SIGCONT first, so a paused one can stop).
    pub async fn stop_all(&self) {
        let ids: Vec<u8> = self.lock().keys().copied().collect();
        for id in &ids {
            self.signal(*id, libc::SIGCONT);
            self.signal(*id, libc::SIGTERM);
        }
        for id in ids {
            let child = self.lock().get_mut(&id).and_then(|n| n.child.take());
            let pid = child
                .as_ref()
                .and_then(|c| libc::pid_t::try_from(c.id()).ok());
            let waited = tokio::task::spawn_blocking(move || child.map(|mut c| c.wait()));
            if tokio::time::timeout(Duration::from_secs(15), waited)
                .await
                .is_err()
                && let Some(pid) = pid
            {
                // SAFETY: kill(2) on a child that did not stop in time.
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                }
            }
        }
    }
}
