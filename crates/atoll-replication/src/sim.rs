//! An in-process network for deterministic simulations of replication:
//! nodes hand each other Raft messages directly (the receiving side runs the
//! transport's own dispatch), after a seeded delay, unless the message is
//! lost or the link is cut. On a current-thread Tokio runtime with paused
//! time, with the in-memory storage (whose work runs inline) and seeded
//! openraft draws (`NodeOptions::rng_seed`), a run is a function of its seeds.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use crate::NodeId;
use crate::error::ReplicationError;
use crate::node::RaftNode;
use crate::transport::{Envelope, Reply, Request, dispatch};

/// Faults the network injects.
#[derive(Clone, Debug, Default)]
pub struct Faults {
    /// Percent of messages lost (the sender sees a timeout).
    pub loss_percent: u64,
    /// Each message is delayed by up to this many milliseconds.
    pub max_delay_ms: u64,
    /// Links that are cut, both ways: (smaller id, larger id).
    pub cut: BTreeSet<(NodeId, NodeId)>,
}

type Incoming = Option<crate::snapshot::IncomingSnapshot>;

/// A link, one way, a stream on it (a group, or a service call's payload)
/// and a kind of message.
type Channel = (NodeId, NodeId, u64, &'static str);

/// The simulated network of one run.
pub struct SimNetwork {
    nodes: Mutex<BTreeMap<NodeId, Weak<RaftNode>>>,
    random: Mutex<u64>,
    faults: Mutex<Faults>,
    // Snapshot chunks being assembled, per link and direction.
    incoming: Mutex<HashMap<(NodeId, NodeId), Incoming>>,
    trace: Mutex<Vec<String>>,
    started: tokio::time::Instant,
    seed: u64,
    // Messages sent so far per link and kind: a message's fate is drawn
    // from its own identity, not from the order in which tasks woken at
    // the same instant happen to send (Tokio does not fix that order).
    sent: Mutex<HashMap<Channel, u64>>,
}

impl std::fmt::Debug for SimNetwork {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SimNetwork")
    }
}

/// FNV-1a, to name a payload.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x100_0000_01b3)
    })
}

/// SplitMix64: a tiny generator whose sequence depends only on its seed.
fn next_random(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl SimNetwork {
    /// A network whose delays and losses are drawn from `seed`.
    pub fn new(seed: u64) -> Arc<SimNetwork> {
        Arc::new(SimNetwork {
            nodes: Mutex::default(),
            random: Mutex::new(seed),
            faults: Mutex::default(),
            incoming: Mutex::default(),
            trace: Mutex::default(),
            started: tokio::time::Instant::now(),
            seed,
            sent: Mutex::default(),
        })
    }

    /// Connects `node` (again, after a restart).
    pub fn register(&self, node: &Arc<RaftNode>) {
        self.lock_nodes()
            .insert(node.node_id(), Arc::downgrade(node));
    }

    /// The id of the registered node that advertises `addr`.
    pub(crate) fn node_at(&self, addr: &str) -> Option<NodeId> {
        self.lock_nodes().iter().find_map(|(id, node)| {
            node.upgrade()
                .filter(|node| node.advertise_addr() == addr)
                .map(|_| *id)
        })
    }

    /// Replaces the faults injected from now on.
    pub fn set_faults(&self, faults: Faults) {
        self.record(format!("faults {faults:?}"));
        *self.faults.lock().unwrap_or_else(|e| e.into_inner()) = faults;
    }

    /// The faults injected now.
    pub fn faults(&self) -> Faults {
        self.faults
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// A number drawn from the network's seed (for the test's own choices,
    /// so that they replay too).
    pub fn draw(&self, below: u64) -> u64 {
        let mut state = self.random.lock().unwrap_or_else(|e| e.into_inner());
        next_random(&mut state) % below.max(1)
    }

    /// Notes an event in the run's trace.
    pub fn record(&self, event: String) {
        let at = self.started.elapsed().as_micros();
        self.trace
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(format!("{at} {event}"));
    }

    /// Every delivery and event so far with its simulated time, in time
    /// order (events of one instant sorted, as Tokio may run tasks woken at
    /// the same instant in either order): two runs of one seed must give
    /// the same trace.
    pub fn trace(&self) -> Vec<String> {
        let mut trace = self.trace.lock().unwrap_or_else(|e| e.into_inner()).clone();
        trace.sort_by_key(|event| {
            let at: u128 = event
                .split(' ')
                .next()
                .and_then(|t| t.parse().ok())
                .unwrap_or(0);
            (at, event.clone())
        });
        trace
    }

    fn lock_nodes(&self) -> std::sync::MutexGuard<'_, BTreeMap<NodeId, Weak<RaftNode>>> {
        self.nodes.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A service call from `from` to `target` (see `RaftNode::call_service`),
    /// with the errors the TCP pool gives: `Unreachable` when the message
    /// certainly did not arrive (link cut, node down, call refused),
    /// `OutcomeUnknown` when it or its answer was lost.
    pub(crate) async fn call_service(
        &self,
        from: NodeId,
        target: NodeId,
        payload: Vec<u8>,
        timeout: Duration,
    ) -> Result<Vec<u8>, ReplicationError> {
        let envelope = Envelope {
            group: 0,
            target,
            request: Request::Service(payload),
        };
        let unreachable = |reason: String| ReplicationError::Unreachable {
            node: target,
            reason,
        };
        match tokio::time::timeout(timeout, self.deliver(from, envelope)).await {
            Ok(Ok(Reply::Service(payload))) => Ok(payload),
            Ok(Ok(Reply::Refused(reason))) => Err(unreachable(reason)),
            Ok(Ok(_)) => Err(ReplicationError::OutcomeUnknown(format!(
                "node {target} answered a service call with another reply"
            ))),
            Ok(Err(e)) if e.kind() == io::ErrorKind::ConnectionRefused => {
                Err(unreachable(e.to_string()))
            }
            Ok(Err(e)) => Err(ReplicationError::OutcomeUnknown(format!(
                "call to node {target}: {e}"
            ))),
            Err(_) => Err(ReplicationError::OutcomeUnknown(format!(
                "node {target} did not answer in {timeout:?}"
            ))),
        }
    }

    /// Carries `envelope` from `from` to its target and returns the reply.
    pub(crate) async fn deliver(&self, from: NodeId, envelope: Envelope) -> io::Result<Reply> {
        let to = envelope.target;
        let group = envelope.group;
        let (class, kind) = match &envelope.request {
            Request::AppendEntries(rpc) if rpc.entries.is_empty() => {
                ("heartbeat", "append 0".to_string())
            }
            Request::AppendEntries(rpc) => ("append", format!("append {}", rpc.entries.len())),
            Request::Vote(_) => ("vote", "vote".to_string()),
            Request::PreVote(_) => ("pre-vote", "pre-vote".to_string()),
            Request::TransferLeader(_) => ("transfer", "transfer".to_string()),
            Request::SnapshotChunk { offset, .. } => ("snapshot", format!("snapshot@{offset}")),
            Request::Service(_) => ("service", "service".to_string()),
        };
        // Service calls all name group 0: they are told apart by their
        // payload, so that two calls made at the same instant keep their
        // fates whichever is sent first.
        let stream = match &envelope.request {
            Request::Service(payload) => fnv1a(payload),
            _ => group,
        };
        let count = {
            let mut sent = self.sent.lock().unwrap_or_else(|e| e.into_inner());
            let count = sent.entry((from, to, stream, class)).or_insert(0);
            *count += 1;
            *count
        };
        let (cut, lost, answer_lost, delay_ms) = {
            let faults = self.faults();
            let mut state = self.seed
                ^ from.wrapping_mul(0x100_0000_01b3)
                ^ to.wrapping_mul(0xcbf2_9ce4_8422_2325)
                ^ stream.rotate_left(17)
                ^ count.rotate_left(29)
                ^ class.len() as u64;
            for byte in class.bytes() {
                state = next_random(&mut state) ^ u64::from(byte);
            }
            let lost = next_random(&mut state) % 100 < faults.loss_percent;
            let delay_ms = next_random(&mut state) % (faults.max_delay_ms + 1);
            // A lost service call loses its answer half the time: the call
            // took effect, but the caller cannot know.
            let answer_lost =
                lost && class == "service" && next_random(&mut state).is_multiple_of(2);
            let link = (from.min(to), from.max(to));
            (
                faults.cut.contains(&link),
                lost && !answer_lost,
                answer_lost,
                delay_ms,
            )
        };
        if cut {
            self.record(format!("{from}->{to} g{group} {kind} cut"));
            return Err(io::Error::new(io::ErrorKind::ConnectionRefused, "link cut"));
        }
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        if lost {
            self.record(format!("{from}->{to} g{group} {kind} lost"));
            return Err(io::Error::new(io::ErrorKind::TimedOut, "message lost"));
        }
        let node = self.lock_nodes().get(&to).and_then(Weak::upgrade);
        let Some(node) = node else {
            self.record(format!("{from}->{to} g{group} {kind} down"));
            return Err(io::Error::new(
                io::ErrorKind::ConnectionRefused,
                "node down",
            ));
        };
        // Only snapshot chunks use the link's buffer: a service call's
        // handler may run for seconds, and must not hold it meanwhile.
        let reply = if matches!(envelope.request, Request::SnapshotChunk { .. }) {
            let mut incoming = self
                .incoming
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&(from, to))
                .flatten();
            let reply = dispatch(&node, envelope, &mut incoming).await;
            self.incoming
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert((from, to), incoming);
            reply
        } else {
            dispatch(&node, envelope, &mut None).await
        };
        let outcome = match &reply {
            Reply::Refused(_) => "refused",
            _ if answer_lost => "answer lost",
            _ => "ok",
        };
        self.record(format!("{from}->{to} g{group} {kind} {outcome}"));
        if answer_lost {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "answer lost"));
        }
        Ok(reply)
    }
}

static PANICS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// Panics in this process so far, counted from the first call on: a run
/// compares the count before and after, to fail on panics in tasks nobody
/// joins (openraft's replication tasks).
pub fn panics_so_far() -> u32 {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            default(info);
        }));
    });
    PANICS.load(std::sync::atomic::Ordering::SeqCst)
}
