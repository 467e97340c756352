//! Calls between nodes that are not Raft messages: the cluster layer forwards
//! item requests to partition leaders and catalog commands to the catalog's
//! leader this way, on the Raft transport's port and frames.
//!
//! A call takes a pooled connection to its peer for its whole exchange (the
//! peer answers a connection's requests in order), so concurrent calls use
//! several connections.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

use tokio::io::{BufReader, BufWriter};
use tokio::net::TcpStream;

use crate::NodeId;
use crate::codec::{decode, encode};
use crate::error::ReplicationError;
use crate::transport::{
    CONNECT_TIMEOUT, Envelope, Reply, Request, isolated, read_frame, write_frame,
};

/// A reply being computed.
pub type ServiceFuture = Pin<Box<dyn Future<Output = Vec<u8>> + Send>>;

/// Answers service calls from peers (the cluster layer implements it).
pub trait ServiceHandler: Send + Sync {
    /// Handles one call's payload and returns the reply's payload.
    fn handle(&self, payload: Vec<u8>) -> ServiceFuture;
}

/// Where peers are reached: the addresses this node was configured with
/// (`--peers`; they win, so a test can put a proxy between two nodes),
/// then the ones the cluster learnt.
#[derive(Default)]
pub(crate) struct AddressBook {
    configured: BTreeMap<NodeId, String>,
    learnt: RwLock<BTreeMap<NodeId, String>>,
}

impl AddressBook {
    pub(crate) fn new(configured: BTreeMap<NodeId, String>) -> Self {
        AddressBook {
            configured,
            learnt: RwLock::default(),
        }
    }

    /// The address of `node`, or `fallback` (what the group's membership
    /// recorded) when neither list has it.
    pub(crate) fn resolve(&self, node: NodeId, fallback: &str) -> String {
        self.lookup(node).unwrap_or_else(|| fallback.to_string())
    }

    pub(crate) fn lookup(&self, node: NodeId) -> Option<String> {
        if let Some(addr) = self.configured.get(&node) {
            return Some(addr.clone());
        }
        self.learnt
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&node)
            .cloned()
    }

    pub(crate) fn learn(&self, node: NodeId, addr: String) {
        self.learnt
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(node, addr);
    }
}

type Connection = (
    BufReader<tokio::net::tcp::OwnedReadHalf>,
    BufWriter<tokio::net::tcp::OwnedWriteHalf>,
    Instant,
);

/// An idle connection older than this is closed rather than reused: the
/// peer may have restarted since, and a dead connection makes a call's
/// outcome unknown instead of plainly failed.
const IDLE_CONNECTION_MAX_AGE: Duration = Duration::from_secs(20);

/// Idle connections kept per peer.
const IDLE_CONNECTIONS_PER_PEER: usize = 64;

/// Pooled connections to peers.
#[derive(Default)]
pub(crate) struct ServicePool {
    idle: Mutex<HashMap<NodeId, Vec<Connection>>>,
}

impl ServicePool {
    fn take(&self, target: NodeId) -> Option<Connection> {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        let connections = idle.get_mut(&target)?;
        while let Some(connection) = connections.pop() {
            if connection.2.elapsed() > IDLE_CONNECTION_MAX_AGE {
                continue;
            }
            // A connection the peer closed reads end-of-file at once.
            let mut probe = [0u8; 1];
            match connection.0.get_ref().try_read(&mut probe) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Some(connection),
                _ => continue,
            }
        }
        None
    }

    fn put_back(&self, target: NodeId, mut connection: Connection) {
        connection.2 = Instant::now();
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        let connections = idle.entry(target).or_default();
        if connections.len() < IDLE_CONNECTIONS_PER_PEER {
            connections.push(connection);
        }
    }

    /// Sends `payload` to node `target` at `addr` and returns its reply.
    /// `Unreachable` means the peer certainly did not act on it;
    /// `OutcomeUnknown` that it may have.
    pub(crate) async fn call(
        &self,
        local: NodeId,
        target: NodeId,
        addr: &str,
        payload: Vec<u8>,
        timeout: Duration,
    ) -> Result<Vec<u8>, ReplicationError> {
        let unreachable = |reason: String| ReplicationError::Unreachable {
            node: target,
            reason,
        };
        if isolated(local) || isolated(target) {
            return Err(unreachable("cut off by fault injection".into()));
        }
        let frame = encode(&Envelope {
            group: 0,
            target,
            request: Request::Service(payload),
        })
        .map_err(|e| unreachable(e.to_string()))?;
        let mut connection = match self.take(target) {
            Some(connection) => connection,
            None => connect(addr)
                .await
                .map_err(|e| unreachable(e.to_string()))?,
        };
        let exchange = async {
            write_frame(&mut connection.1, &frame).await?;
            read_frame(&mut connection.0).await
        };
        let reply = match tokio::time::timeout(timeout, exchange).await {
            Ok(Ok(reply)) => reply,
            Ok(Err(e)) => {
                return Err(ReplicationError::OutcomeUnknown(format!(
                    "call to node {target} at {addr}: {e}"
                )));
            }
            Err(_) => {
                return Err(ReplicationError::OutcomeUnknown(format!(
                    "node {target} at {addr} did not answer in {timeout:?}"
                )));
            }
        };
        let reply: Reply = decode(&reply).map_err(|e| {
            ReplicationError::OutcomeUnknown(format!("bad reply from node {target}: {e}"))
        })?;
        self.put_back(target, connection);
        match reply {
            Reply::Service(payload) => Ok(payload),
            Reply::Refused(reason) => Err(unreachable(reason)),
            _ => Err(ReplicationError::OutcomeUnknown(format!(
                "node {target} answered a service call with another reply"
            ))),
        }
    }
}

async fn connect(addr: &str) -> io::Result<Connection> {
    let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connecting timed out"))??;
    stream.set_nodelay(true)?;
    let (reader, writer) = stream.into_split();
    Ok((
        BufReader::new(reader),
        BufWriter::new(writer),
        Instant::now(),
    ))
}
