//! `atoll dev-cluster`: runs N `atoll serve` processes on 127.0.0.1 ..
//! 127.0.0.N, so that each node keeps the same ports and only the address
//! tells the nodes apart, as it would on separate machines.

use std::fs::OpenOptions;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::time::Duration;

use clap::Args;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc::{UnboundedSender, unbounded_channel};
use tokio::time::Instant;

/// Flags of `atoll dev-cluster`.
#[derive(Args, Debug)]
pub struct DevClusterArgs {
    /// How many nodes to start (node i listens on 127.0.0.i).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u8).range(1..=9))]
    pub nodes: u8,
    /// Holds each node's data directory (`node-i`) and stderr log (`node-i.log`).
    #[arg(long, value_name = "DIR")]
    pub dir: PathBuf,
    /// The DynamoDB API port, the same on every node's address.
    #[arg(long, value_name = "PORT", default_value_t = 8000)]
    pub api_port: u16,
    /// The inter-node port, the same on every node's address.
    #[arg(long, value_name = "PORT", default_value_t = 8100,
          value_parser = clap::value_parser!(u16).range(1..))]
    pub cluster_port: u16,
    /// Extra `atoll serve` flags for every node, after `--`.
    #[arg(last = true, value_name = "SERVE_FLAGS")]
    pub serve_args: Vec<String>,
}

type DevClusterError = Box<dyn std::error::Error>;

/// The line `atoll serve` prints once it answers requests.
const LISTENING_PREFIX: &str = "atoll: listening on ";
/// A cluster needs a quorum of its nodes before any of them serves; this
/// covers a slow debug build starting all of them on a loaded machine.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// Long enough for a node to hand its leaderships to the others.
const STOP_GRACE: Duration = Duration::from_secs(15);
/// How often exits are noticed: `try_wait` polling keeps each `Child` owned
/// by this loop, so a pid is never signalled after it was reaped.
const POLL: Duration = Duration::from_millis(100);

struct Node {
    id: u8,
    child: Child,
    pid: u32,
    log: PathBuf,
    ready: bool,
    /// Cleared once reaped: an exited node is neither signalled nor waited for again.
    running: bool,
}

/// Starts the nodes and supervises them until SIGINT or SIGTERM.
pub fn run(args: DevClusterArgs) -> Result<(), DevClusterError> {
    if args.api_port == args.cluster_port {
        return Err("--api-port and --cluster-port must differ".into());
    }
    std::fs::create_dir_all(&args.dir)
        .map_err(|e| format!("cannot create {}: {e}", args.dir.display()))?;
    let exe = std::env::current_exe()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        // Installed before any child exists, so an early Ctrl-C still stops them all.
        let mut interrupt = signal(SignalKind::interrupt())?;
        let mut terminate = signal(SignalKind::terminate())?;
        let (ready_tx, mut ready_rx) = unbounded_channel::<(u8, String)>();
        let mut nodes = Vec::new();
        let outcome = async {
            for id in 1..=args.nodes {
                nodes.push(spawn_node(&exe, &args, id, ready_tx.clone())?);
            }
            let deadline = Instant::now() + READY_TIMEOUT;
            let mut tick = tokio::time::interval(POLL);
            loop {
                tokio::select! {
                    _ = interrupt.recv() => return Ok(()),
                    _ = terminate.recv() => return Ok(()),
                    Some((id, url)) = ready_rx.recv() => announce(&mut nodes, &args, id, &url)?,
                    _ = tick.tick() => {
                        // A line read just before the exit must count as served.
                        while let Ok((id, url)) = ready_rx.try_recv() {
                            announce(&mut nodes, &args, id, &url)?;
                        }
                        reap(&mut nodes)?;
                        let waiting = nodes.iter().filter(|n| !n.ready).count();
                        if waiting > 0 && Instant::now() >= deadline {
                            return Err(format!(
                                "{waiting} of {} nodes did not serve within {} s; see {}/node-*.log",
                                args.nodes, READY_TIMEOUT.as_secs(), args.dir.display()
                            ).into());
                        }
                    }
                }
            }
        }
        .await;
        let graceful = outcome.is_ok();
        stop(&mut nodes, graceful).await;
        outcome
    })
}

fn spawn_node(
    exe: &Path,
    args: &DevClusterArgs,
    id: u8,
    ready: UnboundedSender<(u8, String)>,
) -> Result<Node, DevClusterError> {
    let host = |i: u8| format!("127.0.0.{i}");
    let peers = (1..=args.nodes)
        .map(|i| format!("{i}={}:{}", host(i), args.cluster_port))
        .collect::<Vec<_>>()
        .join(",");
    let log = args.dir.join(format!("node-{id}.log"));
    let stderr = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .map_err(|e| format!("cannot open {}: {e}", log.display()))?;
    let mut command = Command::new(exe);
    command
        .arg("serve")
        .args(["--node-id", &id.to_string()])
        .args(["--listen", &format!("{}:{}", host(id), args.api_port)])
        .args([
            "--cluster-listen",
            &format!("{}:{}", host(id), args.cluster_port),
        ])
        .args(["--peers", &peers])
        .arg("--data-dir")
        .arg(args.dir.join(format!("node-{id}")))
        .args(&args.serve_args)
        // The logs are files for grep and less, not a terminal.
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr);
    die_with_parent(&mut command);
    let mut child = command
        .spawn()
        .map_err(|e| format!("cannot start node {id} ({}): {e}", exe.display()))?;
    let pid = child.id();
    if let Some(stdout) = child.stdout.take() {
        std::thread::Builder::new()
            .name(format!("node-{id}-stdout"))
            .spawn(move || watch_stdout(id, stdout, ready))?;
    }
    Ok(Node {
        id,
        child,
        pid,
        log,
        ready: false,
        running: true,
    })
}

/// Without this, `kill -9` of dev-cluster would leave its nodes running,
/// holding the ports the next dev-cluster needs.  SIGTERM lets them stop
/// gracefully.  PDEATHSIG fires when the forking thread exits: children are
/// spawned from the runtime's only thread, the main one.
#[cfg(target_os = "linux")]
fn die_with_parent(command: &mut Command) {
    // SAFETY: prctl(2) is async-signal-safe and the closure touches no memory
    // shared with the parent.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
fn die_with_parent(_command: &mut Command) {}

/// Reports the listening line, then keeps reading so that a node never
/// blocks on a full stdout pipe.
fn watch_stdout(id: u8, stdout: ChildStdout, ready: UnboundedSender<(u8, String)>) {
    let mut reader = BufReader::new(stdout);
    let mut line = Vec::new();
    let mut announced = false;
    while matches!(reader.read_until(b'\n', &mut line), Ok(n) if n > 0) {
        let text = String::from_utf8_lossy(&line);
        if let Some(url) = text.strip_prefix(LISTENING_PREFIX).filter(|_| !announced) {
            announced = true;
            let _ = ready.send((id, url.trim().to_string()));
        }
        line.clear();
    }
}

fn announce(
    nodes: &mut [Node],
    args: &DevClusterArgs,
    id: u8,
    url: &str,
) -> Result<(), DevClusterError> {
    let Some(node) = nodes.iter_mut().find(|n| n.id == id && !n.ready) else {
        return Ok(());
    };
    node.ready = true;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "node {id} pid={} api={url}", node.pid)?;
    stdout.flush()?;
    if nodes.iter().all(|n| n.ready) {
        eprintln!(
            "atoll dev-cluster: {} nodes serving; logs in {}/node-*.log; Ctrl-C stops them",
            nodes.len(),
            args.dir.display()
        );
    }
    Ok(())
}

/// Notices nodes that exited on their own.  A crash after start-up is left
/// as it is (trying failures is what a dev cluster is for); one before
/// start-up means the cluster cannot come up, so it is an error.
fn reap(nodes: &mut [Node]) -> Result<(), DevClusterError> {
    for node in nodes.iter_mut().filter(|n| n.running) {
        let Some(status) = node.child.try_wait()? else {
            continue;
        };
        node.running = false;
        if !node.ready {
            return Err(format!(
                "node {} exited before serving ({}); {}: {}",
                node.id,
                describe(status),
                node.log.display(),
                last_line(&node.log)
            )
            .into());
        }
        eprintln!(
            "atoll dev-cluster: node {} (pid {}) exited: {}",
            node.id,
            node.pid,
            describe(status)
        );
    }
    Ok(())
}

/// Stops every running node: SIGTERM first when `graceful`, SIGKILL for
/// whoever is still there after the grace period (or at once otherwise).
async fn stop(nodes: &mut [Node], graceful: bool) {
    let deadline = Instant::now() + STOP_GRACE;
    if graceful {
        for node in nodes.iter().filter(|n| n.running) {
            if let Ok(pid) = libc::pid_t::try_from(node.pid) {
                // SAFETY: kill(2) on a child that has not been reaped yet.
                unsafe { libc::kill(pid, libc::SIGTERM) };
            }
        }
    }
    while graceful && Instant::now() < deadline {
        for node in nodes.iter_mut().filter(|n| n.running) {
            // An error here means the child is gone as far as we can tell.
            node.running = matches!(node.child.try_wait(), Ok(None));
        }
        if nodes.iter().all(|n| !n.running) {
            return;
        }
        tokio::time::sleep(POLL).await;
    }
    for node in nodes.iter_mut().filter(|n| n.running) {
        if graceful {
            eprintln!(
                "atoll dev-cluster: node {} (pid {}) did not stop within {} s; killing it",
                node.id,
                node.pid,
                STOP_GRACE.as_secs()
            );
        }
        let _ = node.child.kill();
        let _ = node.child.wait();
        node.running = false;
    }
}

fn describe(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit code {code}"),
        (None, Some(signal)) => format!("signal {signal}"),
        (None, None) => status.to_string(),
    }
}

/// The line of the node's log that most likely says why it stopped: its
/// `atoll: ...` error, clap's `error: ...` (usage follows it), else the last.
fn last_line(log: &Path) -> String {
    let text = match std::fs::read_to_string(log) {
        Ok(text) => text,
        Err(e) => return format!("cannot read the log: {e}"),
    };
    let mut lines = text.lines().rev().filter(|l| !l.trim().is_empty());
    let error = lines
        .clone()
        .find(|l| l.starts_with("atoll: ") || l.starts_with("error: "));
    error
        .or_else(|| lines.next())
        .unwrap_or("(empty log)")
        .to_string()
}
