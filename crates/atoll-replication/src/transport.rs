//! The inter-node transport of Raft messages: plain TCP between nodes.
//!
//! Each (group, peer) client openraft creates owns one connection and sends
//! one request at a time on it, so replies come back in order without request
//! ids. A frame is a big-endian u32 length and a postcard-encoded body. The
//! receiving node hands each request to the group it names, and answers
//! `Refused` when it is not the node asked for or does not host the group.
//!
//! A snapshot (for a follower behind the leader's purged log) travels as a
//! series of chunks on the same connection, exported as they are sent; the
//! receiver spools them to a file (see `snapshot`) and installs the whole
//! when the last arrives.

use std::future::Future;
use std::io;
use std::sync::Weak;
use std::time::Duration;

use openraft::error::{NetworkError, RPCError, ReplicationClosed, StreamingError, Unreachable};
use openraft::network::{RPCOption, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, TransferLeaderRequest,
    TransferLeaderResponse, VoteRequest, VoteResponse,
};
use openraft::{BasicNode, OptionalSend, RaftNetworkV2};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::{TcpListener, TcpStream};

use crate::codec::{decode, encode};
use crate::node::RaftNode;
use crate::snapshot::{ChunkSource, GroupSnapshot, IncomingSnapshot};
use crate::{GroupId, NodeId, TypeConfig};

/// Largest frame either side accepts; a longer length prefix is a broken or
/// hostile peer, and the connection is dropped instead of allocating it.
const MAX_FRAME_BYTES: u32 = 64 * 1024 * 1024;

/// Time allowed to open a connection to a peer.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// Time allowed to install a received snapshot, at the least.
const SNAPSHOT_INSTALL_TIMEOUT: Duration = Duration::from_secs(60);

/// The slowest import of a snapshot the sender waits for: a partition
/// near its 10 GB split size takes minutes to import on a slow disk.
const SLOWEST_IMPORT_BYTES_PER_S: u64 = 8 * 1024 * 1024;

/// The target of a service call that whichever node listens may answer.
pub(crate) const ANY_NODE: NodeId = NodeId::MAX;

/// A Raft message for one group on one node.
#[derive(Serialize, Deserialize)]
pub(crate) struct Envelope {
    pub(crate) group: GroupId,
    /// The node the sender means to reach: a node that restarted under another
    /// id at the same address must not answer for the old one.
    pub(crate) target: NodeId,
    pub(crate) request: Request,
}

#[derive(Serialize, Deserialize)]
pub(crate) enum Request {
    AppendEntries(AppendEntriesRequest<TypeConfig>),
    Vote(VoteRequest<TypeConfig>),
    PreVote(VoteRequest<TypeConfig>),
    TransferLeader(TransferLeaderRequest<TypeConfig>),
    /// Part of a snapshot: `data` belongs at `offset`; the last part installs it.
    SnapshotChunk {
        vote: openraft::alias::VoteOf<TypeConfig>,
        meta: openraft::alias::SnapshotMetaOf<TypeConfig>,
        offset: u64,
        data: Vec<u8>,
        done: bool,
    },
    /// A call of the layer above (see `service`); `group` is unused.
    Service(Vec<u8>),
}

#[derive(Serialize, Deserialize)]
pub(crate) enum Reply {
    AppendEntries(AppendEntriesResponse<TypeConfig>),
    Vote(VoteResponse<TypeConfig>),
    TransferLeader(TransferLeaderResponse<TypeConfig>),
    /// A snapshot chunk was taken; send the next.
    ChunkReceived,
    /// The snapshot was installed (or refused for a newer vote).
    Snapshot(SnapshotResponse<TypeConfig>),
    /// The receiver cannot handle the request (wrong node, group not hosted,
    /// group stopped); the sender treats the peer as unreachable for now.
    Refused(String),
    /// The answer to a service call.
    Service(Vec<u8>),
}

pub(crate) async fn write_frame<W: AsyncWriteExt + Unpin>(
    writer: &mut W,
    body: &[u8],
) -> io::Result<()> {
    let length = u32::try_from(body.len())
        .ok()
        .filter(|length| *length <= MAX_FRAME_BYTES)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "frame too large"))?;
    writer.write_all(&length.to_be_bytes()).await?;
    writer.write_all(body).await?;
    writer.flush().await
}

pub(crate) async fn read_frame<R: AsyncReadExt + Unpin>(reader: &mut R) -> io::Result<Vec<u8>> {
    let length = reader.read_u32().await?;
    if length > MAX_FRAME_BYTES {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("frame of {length} bytes is over the limit"),
        ));
    }
    let mut body = vec![0u8; length as usize];
    reader.read_exact(&mut body).await?;
    Ok(body)
}

/// Accepts peers' connections and serves their requests until the node is dropped.
pub(crate) async fn serve(listener: TcpListener, node: Weak<RaftNode>) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors and the like: back off, keep serving.
                tracing::warn!(error = %e, "accepting a peer connection failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        if node.strong_count() == 0 {
            return;
        }
        let node = node.clone();
        tokio::spawn(async move {
            if let Err(e) = serve_connection(stream, node).await {
                tracing::debug!(%peer, error = %e, "peer connection closed");
            }
        });
    }
}

async fn serve_connection(stream: TcpStream, node: Weak<RaftNode>) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let (reader, writer) = stream.into_split();
    let (mut reader, mut writer) = (BufReader::new(reader), BufWriter::new(writer));
    // A snapshot being received on this connection.
    let mut incoming: Option<IncomingSnapshot> = None;
    loop {
        let frame = match read_frame(&mut reader).await {
            Ok(frame) => frame,
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e),
        };
        let envelope: Envelope = decode(&frame)?;
        let reply = match node.upgrade() {
            Some(node) => dispatch(&node, envelope, &mut incoming).await,
            None => return Ok(()),
        };
        write_frame(&mut writer, &encode(&reply)?).await?;
    }
}

pub(crate) async fn dispatch(
    node: &RaftNode,
    envelope: Envelope,
    incoming: &mut Option<IncomingSnapshot>,
) -> Reply {
    if node.is_stopped() {
        return Reply::Refused(format!("node {} has stopped", node.node_id()));
    }
    let any_node_may_answer =
        envelope.target == ANY_NODE && matches!(envelope.request, Request::Service(_));
    if envelope.target != node.node_id() && !any_node_may_answer {
        return Reply::Refused(format!(
            "this is node {}, not node {}",
            node.node_id(),
            envelope.target
        ));
    }
    if let Request::Service(payload) = envelope.request {
        return match node.service_handler() {
            Some(handler) => Reply::Service(handler.handle(payload).await),
            None => Reply::Refused(format!("node {} is not serving yet", node.node_id())),
        };
    }
    let Some(raft) = node.raft_of(envelope.group) else {
        return Reply::Refused(format!(
            "group {} is not hosted on node {}",
            envelope.group,
            node.node_id()
        ));
    };
    let refused = |e: &dyn std::fmt::Display| Reply::Refused(e.to_string());
    match envelope.request {
        Request::AppendEntries(rpc) => match raft.append_entries(rpc).await {
            Ok(response) => Reply::AppendEntries(response),
            Err(e) => refused(&e),
        },
        Request::Vote(rpc) => match raft.vote(rpc).await {
            Ok(response) => Reply::Vote(response),
            Err(e) => refused(&e),
        },
        Request::PreVote(rpc) => match raft.pre_vote(rpc).await {
            Ok(response) => Reply::Vote(response),
            Err(e) => refused(&e),
        },
        Request::Service(_) => Reply::Refused("service call routed as a Raft message".into()),
        Request::TransferLeader(rpc) => match raft.handle_transfer_leader(rpc).await {
            Ok(response) => Reply::TransferLeader(response),
            Err(e) => refused(&e),
        },
        Request::SnapshotChunk {
            vote,
            meta,
            offset,
            data,
            done,
        } => {
            let group = envelope.group;
            if offset == 0 {
                *incoming = match IncomingSnapshot::start(group, node.spool_dir()).await {
                    Ok(started) => Some(started),
                    Err(e) => return Reply::Refused(format!("cannot spool a snapshot: {e}")),
                };
            }
            let Some(receiving) = incoming.as_mut() else {
                return Reply::Refused("snapshot chunk without its beginning".into());
            };
            if receiving.group() != group || receiving.received_bytes() != offset {
                *incoming = None;
                return Reply::Refused("snapshot chunk out of order".into());
            }
            if let Err(e) = receiving.append(&data).await {
                *incoming = None;
                return Reply::Refused(format!("cannot spool a snapshot: {e}"));
            }
            if !done {
                return Reply::ChunkReceived;
            }
            let Some(received) = incoming.take() else {
                return Reply::Refused("snapshot lost".into());
            };
            let spool = match received.finish().await {
                Ok(spool) => spool,
                Err(e) => return Reply::Refused(format!("cannot spool a snapshot: {e}")),
            };
            let snapshot = openraft::Snapshot {
                meta,
                snapshot: GroupSnapshot::Received(spool),
            };
            match raft.install_full_snapshot(vote, snapshot).await {
                Ok(response) => Reply::Snapshot(response),
                Err(e) => refused(&e),
            }
        }
    }
}

/// Whether fault injection cuts `node` off from every peer: fail point
/// `raft-isolate`, configured as `return(ID,ID,...)` (tests only; without
/// the `failpoints` feature this is always false). Checked by every sender,
/// so both directions of every link to the node are cut.
#[cfg_attr(not(feature = "failpoints"), allow(unused_variables))]
pub(crate) fn isolated(node: NodeId) -> bool {
    fail::fail_point!("raft-isolate", |ids: Option<String>| {
        ids.is_some_and(|ids| ids.split(',').any(|id| id.trim().parse() == Ok(node)))
    });
    false
}

/// Creates a TCP client per peer of one group.
pub(crate) struct TcpNetwork {
    pub(crate) group: GroupId,
    /// This node, for fault injection.
    pub(crate) local: NodeId,
    /// Where peers are reached (configured addresses win over membership's).
    pub(crate) addresses: std::sync::Arc<crate::service::AddressBook>,
    /// The in-process network of a simulation, instead of TCP.
    pub(crate) simulated: Option<std::sync::Arc<crate::sim::SimNetwork>>,
}

impl RaftNetworkFactory<TypeConfig> for TcpNetwork {
    type Network = TcpPeer;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> Self::Network {
        TcpPeer {
            local: self.local,
            group: self.group,
            target,
            addr: self.addresses.resolve(target, &node.addr),
            connection: None,
            simulated: self.simulated.clone(),
        }
    }
}

type Connection = (
    BufReader<tokio::net::tcp::OwnedReadHalf>,
    BufWriter<tokio::net::tcp::OwnedWriteHalf>,
);

/// One group's client of one peer: a lazily opened connection, reopened after any failure.
pub(crate) struct TcpPeer {
    local: NodeId,
    group: GroupId,
    target: NodeId,
    addr: String,
    connection: Option<Connection>,
    simulated: Option<std::sync::Arc<crate::sim::SimNetwork>>,
}

/// Why a call to a peer failed.
enum CallError {
    /// No answer: the peer is down, unreachable or too slow.
    Unreachable(io::Error),
    /// The peer answered that it cannot take the request.
    Refused(String),
}

impl CallError {
    /// Both kinds are "unreachable" to openraft, which then backs off
    /// before retrying: a refusing peer (group not started there yet, node
    /// stopping) would otherwise be retried in a tight loop.
    fn into_rpc_error(self) -> RPCError<TypeConfig> {
        match self {
            CallError::Unreachable(e) => RPCError::Unreachable(Unreachable::new(&e)),
            CallError::Refused(reason) => {
                RPCError::Unreachable(Unreachable::new(&io::Error::other(reason)))
            }
        }
    }
}

impl TcpPeer {
    async fn call(&mut self, request: Request, timeout: Duration) -> Result<Reply, CallError> {
        if isolated(self.local) || isolated(self.target) {
            self.connection = None;
            return Err(CallError::Unreachable(io::Error::new(
                io::ErrorKind::ConnectionRefused,
                "cut off by fault injection",
            )));
        }
        let envelope = Envelope {
            group: self.group,
            target: self.target,
            request,
        };
        if let Some(network) = self.simulated.clone() {
            return match tokio::time::timeout(timeout, network.deliver(self.local, envelope)).await
            {
                Ok(Ok(Reply::Refused(reason))) => Err(CallError::Refused(reason)),
                Ok(Ok(reply)) => Ok(reply),
                Ok(Err(e)) => Err(CallError::Unreachable(e)),
                Err(_) => Err(CallError::Unreachable(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "no answer in time",
                ))),
            };
        }
        let frame = encode(&envelope).map_err(CallError::Unreachable)?;
        let outcome = tokio::time::timeout(timeout, self.exchange(&frame)).await;
        let reply = match outcome {
            Ok(Ok(reply)) => reply,
            Ok(Err(e)) => {
                self.connection = None;
                return Err(CallError::Unreachable(e));
            }
            Err(_) => {
                // The reply may still arrive; the connection is out of step.
                self.connection = None;
                return Err(CallError::Unreachable(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "node {} at {} did not answer in time",
                        self.target, self.addr
                    ),
                )));
            }
        };
        match reply {
            Reply::Refused(reason) => Err(CallError::Refused(reason)),
            reply => Ok(reply),
        }
    }

    async fn exchange(&mut self, frame: &[u8]) -> io::Result<Reply> {
        let connection = match &mut self.connection {
            Some(connection) => connection,
            None => {
                let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(&self.addr))
                    .await
                    .map_err(|_| {
                        io::Error::new(io::ErrorKind::TimedOut, "connecting timed out")
                    })??;
                stream.set_nodelay(true)?;
                let (reader, writer) = stream.into_split();
                self.connection
                    .insert((BufReader::new(reader), BufWriter::new(writer)))
            }
        };
        write_frame(&mut connection.1, frame).await?;
        decode(&read_frame(&mut connection.0).await?)
    }

    fn mismatch(&self, what: &str) -> RPCError<TypeConfig> {
        self.connection_lost(format!(
            "node {} answered {what} with another reply",
            self.target
        ))
    }

    fn connection_lost(&self, reason: String) -> RPCError<TypeConfig> {
        RPCError::Network(NetworkError::new(&io::Error::other(reason)))
    }
}

impl RaftNetworkV2<TypeConfig> for TcpPeer {
    type SnapshotData = GroupSnapshot;

    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<TypeConfig>, RPCError<TypeConfig>> {
        match self
            .call(Request::AppendEntries(rpc), option.hard_ttl())
            .await
        {
            Ok(Reply::AppendEntries(response)) => Ok(response),
            Ok(_) => Err(self.mismatch("AppendEntries")),
            Err(e) => Err(e.into_rpc_error()),
        }
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        match self.call(Request::Vote(rpc), option.hard_ttl()).await {
            Ok(Reply::Vote(response)) => Ok(response),
            Ok(_) => Err(self.mismatch("Vote")),
            Err(e) => Err(e.into_rpc_error()),
        }
    }

    async fn pre_vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        match self.call(Request::PreVote(rpc), option.hard_ttl()).await {
            Ok(Reply::Vote(response)) => Ok(response),
            Ok(_) => Err(self.mismatch("PreVote")),
            Err(e) => Err(e.into_rpc_error()),
        }
    }

    async fn transfer_leader(
        &mut self,
        rpc: TransferLeaderRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<TransferLeaderResponse<TypeConfig>, RPCError<TypeConfig>> {
        match self
            .call(Request::TransferLeader(rpc), option.hard_ttl())
            .await
        {
            Ok(Reply::TransferLeader(response)) => Ok(response),
            Ok(_) => Err(self.mismatch("TransferLeader")),
            Err(e) => Err(e.into_rpc_error()),
        }
    }

    async fn full_snapshot(
        &mut self,
        vote: openraft::alias::VoteOf<TypeConfig>,
        snapshot: openraft::alias::SnapshotOf<TypeConfig, GroupSnapshot>,
        _cancel: impl Future<Output = ReplicationClosed> + OptionalSend + 'static,
        option: RPCOption,
    ) -> Result<SnapshotResponse<TypeConfig>, StreamingError<TypeConfig>> {
        let meta = snapshot.meta;
        let network_error = |e: &io::Error| StreamingError::Network(NetworkError::new(e));
        // In a simulation everything runs on one thread, in order.
        let mut chunks = ChunkSource::start(snapshot.snapshot, self.simulated.is_some());
        let mut current = match chunks.next().await {
            Some(chunk) => chunk.map_err(|e| network_error(&e))?,
            None => {
                return Err(network_error(&io::Error::other(
                    "an export without a chunk",
                )));
            }
        };
        let mut offset = 0u64;
        loop {
            // One chunk ahead, to know which is the last.
            let next = chunks
                .next()
                .await
                .transpose()
                .map_err(|e| network_error(&e))?;
            let done = next.is_none();
            let length = current.len() as u64;
            let request = Request::SnapshotChunk {
                vote,
                meta: meta.clone(),
                offset,
                data: current,
                done,
            };
            let timeout = if done {
                let import_s = (offset + length) / SLOWEST_IMPORT_BYTES_PER_S;
                option
                    .hard_ttl()
                    .max(SNAPSHOT_INSTALL_TIMEOUT + Duration::from_secs(import_s))
            } else {
                option.hard_ttl().max(CONNECT_TIMEOUT)
            };
            match self.call(request, timeout).await {
                Ok(Reply::ChunkReceived) if !done => {}
                Ok(Reply::Snapshot(response)) if done => return Ok(response),
                Ok(_) => {
                    return Err(network_error(&io::Error::other(
                        "unexpected reply to a snapshot chunk",
                    )));
                }
                Err(CallError::Unreachable(e)) => {
                    return Err(StreamingError::Unreachable(Unreachable::new(&e)));
                }
                Err(CallError::Refused(reason)) => {
                    return Err(StreamingError::Unreachable(Unreachable::new(
                        &io::Error::other(reason),
                    )));
                }
            }
            offset += length;
            match next {
                Some(chunk) => current = chunk,
                None => {
                    return Err(network_error(&io::Error::other(
                        "snapshot sent without a final chunk",
                    )));
                }
            }
        }
    }
}
