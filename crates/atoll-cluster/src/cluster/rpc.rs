//! Requests one node forwards to another: catalog commands to the catalog's
//! leader, item writes and consistent reads to a partition's leader, and
//! any read of a partition this node holds no replica of.
//!
//! They travel as service calls of the replication transport. The answering
//! node acts only on what it hosts and says why it did not otherwise
//! (`NotLeader`, `NotHosted`, `WrongPartition`), which the caller retries.

use std::ops::Bound;
use std::sync::{Arc, Weak};
use std::time::Duration;

use atoll_model::Item;
use atoll_partition::{PartitionCommand, PartitionOutput, SequenceNumber, StreamRecord};
use atoll_replication::{
    GroupId, NodeId, RaftNode, ReplicationError, ServiceFuture, ServiceHandler,
};
use serde::{Deserialize, Serialize};

use tracing::Instrument;

use super::Cluster;
use crate::catalog::legacy::{CatalogCommandV1, TableDefinitionV1};
use crate::catalog::{CatalogCommand, CatalogOutcome, Rejection};
use crate::error::{ClusterError, RemoteError};
use crate::trace::{RequestTrailer, current_request_id, with_request_id};

/// How long a forwarded request may take before its outcome counts as
/// unknown (a write waits for a quorum; a leader cut off from its peers
/// would hold it until then).
pub(super) const FORWARD_TIMEOUT: Duration = Duration::from_secs(6);

/// How long a forwarded read may take before it is tried elsewhere: reads
/// have no effect, so a stalled node is given up on sooner.
const FORWARDED_READ_TIMEOUT: Duration = Duration::from_secs(2);

/// How long admitting a node may take: its catalog replica catches up
/// first, which may take a snapshot's transfer.
pub(super) const JOIN_TIMEOUT: Duration = Duration::from_secs(60);

/// A forwarded request.
#[derive(Serialize, Deserialize)]
pub(super) enum ClusterRequest {
    /// Propose a catalog command (to the catalog's leader), as nodes of
    /// the version before send it; this one sends `CatalogCommand`.
    Catalog(CatalogCommandV1),
    /// Propose a partition command (to the partition's leader).
    Write {
        group: GroupId,
        command: PartitionCommand,
    },
    /// Read one item of a partition.
    ReadItem {
        group: GroupId,
        token: u64,
        row_key: Vec<u8>,
        consistent: bool,
    },
    /// Item count and size of a partition, as a replica knows them.
    Stats { group: GroupId },
    /// Host a new replica of a partition (its leader is about to add it).
    HostReplica { group: GroupId },
    /// Read items of a partition in row-key order.
    ReadRange {
        group: GroupId,
        token: u64,
        range: RangeRequest,
        consistent: bool,
    },
    // Variants are only ever appended: postcard numbers them in order, and
    // nodes of two versions talk during a rolling upgrade.
    /// The catalog's applied index once its leader confirmed it still
    /// leads (to the catalog's leader).
    CatalogIndex,
    /// Snapshot a partition and purge its log (to its leader, or with
    /// `any_replica` to any replica), so that a replica joining empty is
    /// sent the snapshot, by this leader or a later one.
    CompactLog { group: GroupId, any_replica: bool },
    /// Admit a new node to the catalog group (to its leader; any member
    /// passes it on). The node then registers itself.
    Join {
        node_id: NodeId,
        cluster_addr: String,
    },
    /// The members of a partition's last committed membership (to its
    /// leader): a replica the catalog no longer names asks before it
    /// deletes itself.
    Members { group: GroupId },
    /// `Join`, as incarnation `incarnation` of the node (drawn when it
    /// first joined): the same id with another incarnation lost its data.
    JoinAs {
        node_id: NodeId,
        cluster_addr: String,
        incarnation: u64,
    },
    /// Propose a catalog command (to the catalog's leader), in the
    /// catalog's own encoding (it grows with features; postcard cannot).
    CatalogCommand(Vec<u8>),
    /// Read entries of a partition's local secondary index `index` (its
    /// storage number) in key order; with `fetch_items`, the items they
    /// index rather than the entries.
    ReadIndexRange {
        group: GroupId,
        token: u64,
        index: u8,
        fetch_items: bool,
        range: RangeRequest,
        consistent: bool,
    },
    /// A partition's streams and shards, as a replica applied them.
    StreamState { group: GroupId },
    /// Records of a partition's shard `number` from `from` on (any replica).
    ReadStream {
        group: GroupId,
        number: u32,
        from: SequenceNumber,
        limit: usize,
        max_bytes: u64,
    },
    /// The sequence number of the last record of a partition's shard.
    LastStreamSequence { group: GroupId, number: u32 },
    /// Items of a partition read for a transaction (by its leader), with
    /// their versions and holds; with `check`, the second round's read.
    ReadForTransaction {
        group: GroupId,
        row_keys: Vec<Vec<u8>>,
        check: bool,
    },
}

/// A row-key range to read and how much of it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RangeRequest {
    /// Start of the range.
    pub start: Bound<Vec<u8>>,
    /// End of the range.
    pub end: Bound<Vec<u8>>,
    /// Descending order.
    pub reverse: bool,
    /// Most items to return.
    pub max_items: usize,
    /// Stop once the items returned reach this many bytes (the item that
    /// crosses it is included, as a DynamoDB page includes it).
    pub max_bytes: u64,
}

/// Items read from a range.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct RangeChunk {
    /// The items, in the order asked.
    pub items: Vec<RangeItem>,
}

/// An item read from a range, with its DynamoDB size.
#[derive(Debug, Serialize, Deserialize)]
pub struct RangeItem {
    /// The item.
    pub item: Item,
    /// Its DynamoDB size (for capacity and the 1 MB page limit).
    pub size_bytes: u32,
}

/// The answer to a forwarded request.
#[derive(Serialize, Deserialize)]
pub(super) enum ClusterReply {
    /// The catalog applied the command; the catalog's log had applied
    /// `applied_index` when it answered. The answer to `Catalog`.
    Catalog {
        outcome: Result<Option<Box<TableDefinitionV1>>, Rejection>,
        applied_index: u64,
    },
    Written(PartitionOutput),
    Item(Option<Item>),
    Range(RangeChunk),
    /// The replica is hosted here.
    Hosted,
    /// A partition's item count and size.
    Stats {
        item_count: u64,
        size_bytes: u64,
    },
    /// This node does not lead the group (`leader`, when it knows).
    NotLeader {
        leader: Option<NodeId>,
    },
    /// This node holds no replica of the group (yet, or any more).
    NotHosted,
    /// The partition no longer owns the token (it split).
    WrongPartition,
    /// The request failed; `retryable` when it certainly had no effect.
    /// Sent by nodes of the previous version; this one sends `Error`.
    Failed {
        message: String,
        retryable: bool,
    },
    // Appended only (see `ClusterRequest`).
    /// The replica snapshotted the partition and purged its log.
    Compacted,
    /// The catalog leader's applied index, after a read barrier.
    CatalogIndex {
        applied_index: u64,
    },
    /// The node is a member of the catalog group, whose leader had applied
    /// `applied_index` when it answered.
    Joined {
        applied_index: u64,
    },
    /// The members (voters and learners) of the group's last committed
    /// membership, as its leader knows them.
    Members {
        members: Vec<NodeId>,
    },
    /// The request failed, with the error as the answering node had it.
    Error(RemoteError),
    /// `Catalog`, answering `CatalogCommand`: the outcome in the catalog's
    /// encoding (`catalog::encode_outcome`).
    CatalogOutcome {
        outcome: Vec<u8>,
        applied_index: u64,
    },
    /// A partition's stream state (`StreamState`), as JSON.
    StreamState(Vec<u8>),
    /// Stream records (`ReadStream`), and whether more follow.
    StreamRecords {
        records: Vec<StreamRecord>,
        more: bool,
    },
    /// The last record's sequence number (`LastStreamSequence`).
    LastStreamSequence(Option<SequenceNumber>),
    /// Items read for a transaction (`ReadForTransaction`), in its order.
    TransactionalReads(Vec<atoll_partition::TransactionalRead>),
}

impl ClusterReply {
    /// A failure known only by its text; `retryable` when the request
    /// certainly had no effect.
    pub(super) fn failed(message: impl Into<String>, retryable: bool) -> ClusterReply {
        ClusterReply::Error(RemoteError::Other {
            message: message.into(),
            retryable,
        })
    }

    pub(super) fn from_error(error: ClusterError) -> ClusterReply {
        match error {
            ClusterError::Replication(ReplicationError::NotLeader { leader, .. }) => {
                ClusterReply::NotLeader { leader }
            }
            other => ClusterReply::Error(other.into()),
        }
    }

    /// The error a caller sees for a reply that carries no result.
    pub(super) fn into_error(self, group: GroupId, node: NodeId) -> ClusterError {
        let replication = match self {
            ClusterReply::NotLeader { leader } => ReplicationError::NotLeader { group, leader },
            ClusterReply::NotHosted => ReplicationError::UnknownGroup(group),
            ClusterReply::WrongPartition => {
                return ClusterError::PartitionMoved {
                    table: String::new(),
                };
            }
            ClusterReply::Error(error) => return error.into_error(node),
            ClusterReply::Failed { message, retryable } => {
                return RemoteError::Other { message, retryable }.into_error(node);
            }
            _ => ReplicationError::OutcomeUnknown(format!(
                "node {node} answered group {group} with an unexpected reply"
            )),
        };
        ClusterError::Replication(replication)
    }
}

/// Answers peers' forwarded requests on behalf of a cluster.
pub(super) struct Endpoint {
    pub(super) cluster: Weak<Cluster>,
}

impl ServiceHandler for Endpoint {
    fn handle(&self, payload: Vec<u8>) -> ServiceFuture {
        let cluster = self.cluster.clone();
        Box::pin(async move {
            let decoded = postcard::take_from_bytes::<ClusterRequest>(&payload);
            let reply = match (cluster.upgrade(), decoded) {
                (Some(cluster), Ok((request, trailer))) => {
                    // The client request this one serves, when the sender named it.
                    let request_id = postcard::from_bytes::<RequestTrailer>(trailer)
                        .map(|t| t.request_id)
                        .unwrap_or_default();
                    // Debug, as the receiving node's `request` span; the
                    // request-id scope names the request at every level.
                    let span = tracing::debug_span!(
                        "forwarded",
                        request_id = %request_id,
                        kind = request.kind(),
                    );
                    let work = async move {
                        tracing::debug!("answering a forwarded request");
                        cluster.answer(request).await
                    };
                    if request_id.is_empty() {
                        work.instrument(span).await
                    } else {
                        with_request_id(request_id.into(), work)
                            .instrument(span)
                            .await
                    }
                }
                (None, _) => ClusterReply::failed("node stopping", true),
                (_, Err(e)) => ClusterReply::failed(format!("undecodable request: {e}"), false),
            };
            postcard::to_stdvec(&reply).unwrap_or_default()
        })
    }
}

impl ClusterRequest {
    /// A short name of the request's kind, for logs.
    fn kind(&self) -> &'static str {
        match self {
            ClusterRequest::Catalog(_) | ClusterRequest::CatalogCommand(_) => "catalog",
            ClusterRequest::Write { .. } => "write",
            ClusterRequest::ReadItem { .. } => "read_item",
            ClusterRequest::Stats { .. } => "stats",
            ClusterRequest::HostReplica { .. } => "host_replica",
            ClusterRequest::ReadRange { .. } => "read_range",
            ClusterRequest::ReadIndexRange { .. } => "read_index_range",
            ClusterRequest::CatalogIndex => "catalog_index",
            ClusterRequest::CompactLog { .. } => "compact_log",
            ClusterRequest::Join { .. } | ClusterRequest::JoinAs { .. } => "join",
            ClusterRequest::Members { .. } => "members",
            ClusterRequest::StreamState { .. } => "stream_state",
            ClusterRequest::ReadStream { .. } => "read_stream",
            ClusterRequest::LastStreamSequence { .. } => "last_stream_sequence",
            ClusterRequest::ReadForTransaction { .. } => "read_for_transaction",
        }
    }
}

/// How this node reaches its peers' cluster endpoints.
#[derive(Clone)]
pub(super) struct Peers {
    node: Arc<RaftNode>,
}

impl Peers {
    /// Peers reached through `node`'s transport.
    pub(super) fn new(node: Arc<RaftNode>) -> Peers {
        Peers { node }
    }

    /// This node's id.
    pub(super) fn node_id(&self) -> NodeId {
        self.node.node_id()
    }

    /// Sends `request` to node `node` and decodes its reply.
    pub(super) async fn forward(
        &self,
        node: NodeId,
        request: &ClusterRequest,
    ) -> Result<ClusterReply, ClusterError> {
        let mut payload =
            postcard::to_stdvec(request).map_err(|e| ClusterError::Catalog(e.to_string()))?;
        if let Some(request_id) = current_request_id() {
            let trailer = RequestTrailer {
                request_id: request_id.to_string(),
            };
            payload = postcard::to_extend(&trailer, payload)
                .map_err(|e| ClusterError::Catalog(e.to_string()))?;
        }
        let timeout = match request {
            ClusterRequest::ReadItem { .. }
            | ClusterRequest::ReadRange { .. }
            | ClusterRequest::ReadIndexRange { .. }
            | ClusterRequest::StreamState { .. }
            | ClusterRequest::ReadStream { .. }
            | ClusterRequest::LastStreamSequence { .. }
            | ClusterRequest::ReadForTransaction { .. }
            | ClusterRequest::Stats { .. }
            | ClusterRequest::Members { .. }
            | ClusterRequest::CatalogIndex => FORWARDED_READ_TIMEOUT,
            ClusterRequest::Join { .. }
            | ClusterRequest::JoinAs { .. }
            | ClusterRequest::CompactLog { .. } => JOIN_TIMEOUT,
            _ => FORWARD_TIMEOUT,
        };
        let reply = self.node.call_service(node, payload, timeout).await?;
        postcard::from_bytes(&reply).map_err(|e| {
            ClusterError::Replication(ReplicationError::OutcomeUnknown(format!(
                "undecodable reply from node {node}: {e}"
            )))
        })
    }
}

impl Cluster {
    async fn answer(self: Arc<Self>, request: ClusterRequest) -> ClusterReply {
        let answered = match request {
            ClusterRequest::Catalog(command) => {
                self.answer_catalog(command.into())
                    .await
                    .map(|(outcome, applied_index)| ClusterReply::Catalog {
                        outcome: outcome.map(|t| t.map(|t| Box::new(TableDefinitionV1::from(&*t)))),
                        applied_index,
                    })
            }
            ClusterRequest::CatalogCommand(bytes) => match crate::catalog::decode_command(&bytes) {
                Ok(command) => match self.answer_catalog(command).await {
                    Ok((outcome, applied_index)) => {
                        match crate::catalog::encode_outcome(&outcome) {
                            Ok(outcome) => Ok(ClusterReply::CatalogOutcome {
                                outcome,
                                applied_index,
                            }),
                            Err(e) => Err(ClusterReply::from_error(e)),
                        }
                    }
                    Err(reply) => Err(reply),
                },
                Err(e) => Err(ClusterReply::from_error(e)),
            },
            ClusterRequest::Write { group, command } => {
                let handle = self.hosted_replica(group, true);
                match handle {
                    Ok(handle) => super::routing::propose_to(&handle, &command)
                        .await
                        .map(ClusterReply::Written)
                        .map_err(ClusterReply::from_error),
                    Err(reply) => Err(reply),
                }
            }
            ClusterRequest::HostReplica { group } => Ok(self.host.host_new_replica(group).await),
            ClusterRequest::Join {
                node_id,
                cluster_addr,
            } => Ok(self.replicas.admit(node_id, cluster_addr, None).await),
            ClusterRequest::JoinAs {
                node_id,
                cluster_addr,
                incarnation,
            } => Ok(self
                .replicas
                .admit(node_id, cluster_addr, Some(incarnation))
                .await),
            ClusterRequest::CatalogIndex => self.answer_catalog_index().await,
            ClusterRequest::CompactLog { group, any_replica } => {
                match self.hosted_replica(group, !any_replica) {
                    Ok(handle) => handle
                        .group
                        .compact_log()
                        .await
                        .map(|()| ClusterReply::Compacted)
                        .map_err(|e| ClusterReply::from_error(e.into())),
                    Err(reply) => Err(reply),
                }
            }
            ClusterRequest::Members { group } => match self.hosted_replica(group, true) {
                Ok(handle) => handle
                    .group
                    .committed_members()
                    .await
                    .map(|members| ClusterReply::Members { members })
                    .map_err(|e| ClusterReply::from_error(e.into())),
                Err(reply) => Err(reply),
            },
            ClusterRequest::Stats { group } => {
                self.hosted_replica(group, false)
                    .map(|handle| ClusterReply::Stats {
                        item_count: handle.stats.item_count(),
                        size_bytes: handle.stats.size_bytes(),
                    })
            }
            read @ (ClusterRequest::ReadItem { .. }
            | ClusterRequest::ReadRange { .. }
            | ClusterRequest::ReadIndexRange { .. }
            | ClusterRequest::StreamState { .. }
            | ClusterRequest::ReadStream { .. }
            | ClusterRequest::LastStreamSequence { .. }
            | ClusterRequest::ReadForTransaction { .. }) => Ok(self.router.read_here(read).await),
        };
        answered.unwrap_or_else(|reply| reply)
    }

    /// This node's replica of `group`, when it runs one and, with
    /// `must_lead`, leads the group; otherwise the reply saying why not.
    fn hosted_replica(
        &self,
        group: GroupId,
        must_lead: bool,
    ) -> Result<super::PartitionHandle, ClusterReply> {
        let handle = self.host.handle(group).ok_or(ClusterReply::NotHosted)?;
        if must_lead && !handle.group.is_leader() {
            return Err(ClusterReply::NotLeader {
                leader: handle.group.current_leader(),
            });
        }
        Ok(handle)
    }

    /// `NotLeader` unless this node leads the catalog.
    fn lead_catalog(&self) -> Result<(), ClusterReply> {
        if self.catalog.group().is_leader() {
            Ok(())
        } else {
            Err(ClusterReply::NotLeader {
                leader: self.catalog.group().current_leader(),
            })
        }
    }

    /// Proposes a forwarded catalog command, on the catalog's leader:
    /// its outcome and the index the caller waits for.
    async fn answer_catalog(
        &self,
        command: CatalogCommand,
    ) -> Result<(CatalogOutcome, u64), ClusterReply> {
        self.lead_catalog()?;
        // The entry's own index: the applied-index metric may not show it
        // yet, and the caller waits for what is named here.
        let (outcome, index) = self
            .catalog
            .propose_here_indexed(command)
            .await
            .map_err(ClusterReply::from_error)?;
        Ok((
            outcome,
            index.max(self.catalog.group().applied_index().unwrap_or(0)),
        ))
    }

    /// The catalog leader's applied index, once it confirmed it leads.
    async fn answer_catalog_index(&self) -> Result<ClusterReply, ClusterReply> {
        self.lead_catalog()?;
        let index = self
            .catalog
            .group()
            .read_barrier_index()
            .await
            .map_err(|e| ClusterReply::from_error(e.into()))?;
        Ok(ClusterReply::CatalogIndex {
            applied_index: index.max(self.catalog.group().applied_index().unwrap_or(0)),
        })
    }
}
