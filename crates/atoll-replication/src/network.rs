//! The Raft network of a single node: it has no peers to reach.
//!
//! A group with one voter never sends a message; anything that tries gets
//! `Unreachable`. The inter-node transport arrives with the cluster work.

use std::future::Future;

use openraft::error::{RPCError, ReplicationClosed, StreamingError, Unreachable};
use openraft::network::{RPCOption, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, VoteRequest, VoteResponse,
};
use openraft::{BasicNode, OptionalSend, RaftNetworkV2};

use crate::state_machine::GroupSnapshot;
use crate::{NodeId, TypeConfig};

#[derive(Debug, thiserror::Error)]
#[error("node {0} is not reachable: this node has no inter-node transport")]
struct NoTransport(NodeId);

/// Creates clients that cannot reach anyone.
pub(crate) struct LocalOnlyNetwork;

/// A client for a peer that cannot be reached.
pub(crate) struct UnreachablePeer(NodeId);

impl RaftNetworkFactory<TypeConfig> for LocalOnlyNetwork {
    type Network = UnreachablePeer;

    async fn new_client(&mut self, target: NodeId, _node: &BasicNode) -> Self::Network {
        UnreachablePeer(target)
    }
}

impl RaftNetworkV2<TypeConfig> for UnreachablePeer {
    type SnapshotData = GroupSnapshot;

    async fn append_entries(
        &mut self,
        _rpc: AppendEntriesRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<AppendEntriesResponse<TypeConfig>, RPCError<TypeConfig>> {
        Err(RPCError::Unreachable(Unreachable::new(&NoTransport(
            self.0,
        ))))
    }

    async fn vote(
        &mut self,
        _rpc: VoteRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        Err(RPCError::Unreachable(Unreachable::new(&NoTransport(
            self.0,
        ))))
    }

    async fn full_snapshot(
        &mut self,
        _vote: openraft::alias::VoteOf<TypeConfig>,
        _snapshot: openraft::alias::SnapshotOf<TypeConfig, GroupSnapshot>,
        _cancel: impl Future<Output = ReplicationClosed> + OptionalSend + 'static,
        _option: RPCOption,
    ) -> Result<SnapshotResponse<TypeConfig>, StreamingError<TypeConfig>> {
        Err(StreamingError::Unreachable(Unreachable::new(&NoTransport(
            self.0,
        ))))
    }
}
