//! Reads of streams: a partition's shards and records, served by any
//! replica of the partition that has caught up (stream records are
//! replicated state like items), whichever group they belong to.

use atoll_partition::{SequenceNumber, StreamRecord, StreamState};
use atoll_replication::{GroupId, ReplicationError};
use tokio::time::Instant;

use super::{ClusterReply, ClusterRequest, ROUTE_RETRY, Router, Target, backoff, unexpected_reply};
use crate::error::ClusterError;

impl Router {
    /// Sends `request` (a read of group `group`) to a caught-up replica of
    /// the group, here or on another node, retrying others for a while.
    async fn routed_group_read(
        &self,
        group: GroupId,
        request: &ClusterRequest,
    ) -> Result<ClusterReply, ClusterError> {
        let deadline = Instant::now() + ROUTE_RETRY;
        let mut attempt = 0;
        loop {
            let outcome = match self.target(group, false, attempt) {
                None => Err(ReplicationError::NotLeader {
                    group,
                    leader: None,
                }
                .into()),
                Some(Target::Local(_)) => match self.stream_read_here(request) {
                    Ok(reply) => Ok(reply),
                    Err(reply) => Err(reply.into_error(group, self.me)),
                },
                Some(Target::Remote(node)) => self.forward_to(group, node, request).await,
            };
            match outcome {
                Ok(reply) => return Ok(reply),
                Err(e) if Instant::now() >= deadline => return Err(e),
                Err(_) => {}
            }
            tokio::time::sleep(backoff(attempt)).await;
            attempt += 1;
        }
    }

    /// Partition `group`'s streams and shards.
    pub(crate) async fn stream_state(&self, group: GroupId) -> Result<StreamState, ClusterError> {
        match self
            .routed_group_read(group, &ClusterRequest::StreamState { group })
            .await?
        {
            ClusterReply::StreamState(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| ClusterError::UnexpectedOutcome(e.to_string())),
            _ => Err(unexpected_reply()),
        }
    }

    /// Up to `limit` records (and about `max_bytes`) of shard `number` of
    /// partition `group` from `from` on, and whether more follow.
    pub(crate) async fn read_stream(
        &self,
        (group, number): (GroupId, u32),
        from: SequenceNumber,
        limit: usize,
        max_bytes: u64,
    ) -> Result<(Vec<StreamRecord>, bool), ClusterError> {
        let request = ClusterRequest::ReadStream {
            group,
            number,
            from,
            limit,
            max_bytes,
        };
        match self.routed_group_read(group, &request).await? {
            ClusterReply::StreamRecords { records, more } => Ok((records, more)),
            _ => Err(unexpected_reply()),
        }
    }

    /// The sequence number of the last record of shard `number` of `group`.
    pub(crate) async fn last_stream_sequence(
        &self,
        (group, number): (GroupId, u32),
    ) -> Result<Option<SequenceNumber>, ClusterError> {
        let request = ClusterRequest::LastStreamSequence { group, number };
        match self.routed_group_read(group, &request).await? {
            ClusterReply::LastStreamSequence(last) => Ok(last),
            _ => Err(unexpected_reply()),
        }
    }

    /// Answers a stream read from this node's replica.
    pub(super) fn stream_read_here(
        &self,
        request: &ClusterRequest,
    ) -> Result<ClusterReply, ClusterReply> {
        let failed = |e: &dyn std::fmt::Display| ClusterReply::failed(e.to_string(), false);
        let group = match request {
            ClusterRequest::StreamState { group }
            | ClusterRequest::ReadStream { group, .. }
            | ClusterRequest::LastStreamSequence { group, .. } => *group,
            _ => return Err(ClusterReply::failed("not a stream read", false)),
        };
        let handle = self.host.handle(group).ok_or(ClusterReply::NotHosted)?;
        if handle.group.applied_index().is_none() || handle.group.is_installing_snapshot() {
            return Err(ClusterReply::NotHosted);
        }
        handle.traffic.count_read(None);
        match request {
            ClusterRequest::StreamState { .. } => serde_json::to_vec(&*handle.sm.stream_state())
                .map(ClusterReply::StreamState)
                .map_err(|e| failed(&e)),
            ClusterRequest::ReadStream {
                number,
                from,
                limit,
                max_bytes,
                ..
            } => handle
                .sm
                .read_stream(*number, *from, *limit, *max_bytes)
                .map(|(records, more)| ClusterReply::StreamRecords { records, more })
                .map_err(|e| failed(&e)),
            ClusterRequest::LastStreamSequence { number, .. } => handle
                .sm
                .last_stream_sequence(*number)
                .map(ClusterReply::LastStreamSequence)
                .map_err(|e| failed(&e)),
            _ => Err(ClusterReply::failed("not a stream read", false)),
        }
    }
}
