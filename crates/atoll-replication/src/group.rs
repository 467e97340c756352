//! One Raft group as the layers above see it: proposing, consistent reads,
//! leadership and membership changes.

use std::marker::PhantomData;
use std::time::Duration;

use openraft::async_runtime::WatchReceiver;
use openraft::error::{ClientWriteError, LinearizableReadError, RaftError};
use openraft::{BasicNode, ReadPolicy};

use crate::error::ReplicationError;
use crate::log_store::GroupLogStore;
use crate::node::{Raft, stopped};
use crate::{GroupId, LogCommand, NodeId, TypeConfig};

/// How long a consistent read waits for its leader to confirm its leadership.
const READ_BARRIER_TIMEOUT: Duration = Duration::from_secs(2);

/// How long a log purge may be held back by replication streams still
/// reading the entries.
const PURGE_TIMEOUT: Duration = Duration::from_secs(10);

/// A replica's view of its group at one moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GroupStatus {
    /// The term this replica is in.
    pub term: u64,
    /// Whether this replica leads the group.
    pub is_leader: bool,
    /// Entries in this replica's log it has not applied yet.
    pub apply_lag_entries: u64,
}

/// Counts the leaderships group `id` goes through, as this replica sees
/// them (`atoll_raft_leader_changes_total`). Waits on openraft's server
/// metrics, which change with votes and leaders only (not with each
/// write), so it sleeps between elections; it ends with the group.
pub(crate) async fn count_leader_changes(id: GroupId, raft: Raft) {
    let mut server = raft.server_metrics();
    let mut leader = server.borrow_watched().current_leader;
    let changes = metrics::counter!("atoll_raft_leader_changes_total", "group" => id.to_string());
    while server.changed().await.is_ok() {
        let now = server.borrow_watched().current_leader;
        if now.is_some() && now != leader {
            changes.increment(1);
            tracing::debug!(leader = ?now, "group has a new leader");
        }
        leader = now;
    }
}

/// One Raft group hosted on this node, whose state machine's outputs are
/// `O` (`GroupStateMachine::Output`): `propose` returns them as such.
pub struct Group<O> {
    pub(crate) id: GroupId,
    pub(crate) raft: Raft,
    pub(crate) log: GroupLogStore,
    // Serialises this node's membership changes of the group: each reads
    // the voters and writes a new set, and two at once would lose one.
    pub(crate) membership_change: std::sync::Arc<tokio::sync::Mutex<()>>,
    // Raised while this replica imports a snapshot (see `GroupSm`).
    pub(crate) installing_snapshot: std::sync::Arc<std::sync::atomic::AtomicBool>,
    pub(crate) output: PhantomData<fn() -> O>,
}

/// The output type of a group as the node's registry holds it, whatever
/// its state machine: such a group is retyped before anything is proposed.
pub enum Untyped {}

impl<O> Clone for Group<O> {
    fn clone(&self) -> Self {
        Group {
            id: self.id,
            raft: self.raft.clone(),
            log: self.log.clone(),
            membership_change: self.membership_change.clone(),
            installing_snapshot: self.installing_snapshot.clone(),
            output: PhantomData,
        }
    }
}

impl<O: Clone + Send + Sync + 'static> Group<O> {
    /// Replicates `command`, waits until it is durable on a quorum and applied,
    /// and returns what applying it produced.
    pub async fn propose(&self, command: bytes::Bytes) -> Result<O, ReplicationError> {
        Ok(self.propose_indexed(command).await?.0)
    }

    /// `propose`, also returning the log index the command was applied at
    /// (this node's applied-index metric may not show it yet when the
    /// output arrives: a peer told to wait for that metric would wait for
    /// too little).
    pub async fn propose_indexed(
        &self,
        command: bytes::Bytes,
    ) -> Result<(O, u64), ReplicationError> {
        match self.raft.client_write(LogCommand(command)).await {
            Ok(response) => {
                // Only a group retyped to another state machine's output
                // (`RaftNode::group` with the wrong type) gets none.
                let output = response.data.take::<O>().ok_or_else(|| {
                    ReplicationError::OutcomeUnknown(format!(
                        "group {}: its state machine produces another output type",
                        self.id
                    ))
                })?;
                Ok((output, response.log_id.index))
            }
            // Refused before it was appended, or appended and then truncated
            // by a new leader: either way it was not applied and will not be.
            Err(RaftError::APIError(
                ClientWriteError::ForwardToLeader(f) | ClientWriteError::LogEntryDiscarded(f),
            )) => Err(ReplicationError::NotLeader {
                group: self.id,
                leader: f.leader_id,
            }),
            Err(RaftError::APIError(e)) => Err(ReplicationError::OutcomeUnknown(e.to_string())),
            Err(RaftError::Fatal(e)) => Err(ReplicationError::OutcomeUnknown(e.to_string())),
        }
    }
}

impl<O> Group<O> {
    /// The same group, its outputs taken as `P`.
    pub(crate) fn retyped<P>(self) -> Group<P> {
        Group {
            id: self.id,
            raft: self.raft,
            log: self.log,
            membership_change: self.membership_change,
            installing_snapshot: self.installing_snapshot,
            output: PhantomData,
        }
    }

    /// The group's id.
    pub fn id(&self) -> GroupId {
        self.id
    }

    pub(crate) async fn wait_ready(&self, timeout: Duration) -> Result<(), ReplicationError> {
        self.raft
            .wait(Some(timeout))
            .metrics(|m| m.current_leader.is_some(), "group elects its leader")
            .await
            .map_err(|e| ReplicationError::Timeout(format!("group {}: {e}", self.id)))?;
        self.raft
            .wait_for_recovery(Some(timeout))
            .await
            .map_err(|e| ReplicationError::Timeout(format!("group {}: {e}", self.id)))?;
        Ok(())
    }

    /// Waits until this replica has applied entry `index` (or `timeout`).
    pub async fn wait_applied(
        &self,
        index: u64,
        timeout: Duration,
    ) -> Result<(), ReplicationError> {
        self.raft
            .wait(Some(timeout))
            .metrics(
                |m| m.last_applied.is_some_and(|id| id.index >= index),
                "entry applied",
            )
            .await
            .map(|_| ())
            .map_err(|e| ReplicationError::Timeout(format!("group {}: {e}", self.id)))
    }

    /// Returns once this node may serve a linearizable read of the group.
    pub async fn read_barrier(&self) -> Result<(), ReplicationError> {
        self.read_barrier_index().await.map(|_| ())
    }

    /// `read_barrier`, returning the log index a linearizable read sees
    /// (everything committed before the barrier began).
    pub async fn read_barrier_index(&self) -> Result<u64, ReplicationError> {
        let barrier = async {
            let mut outcome = self.raft.ensure_linearizable(ReadPolicy::LeaseRead).await;
            if outcome.is_err() && self.is_leader() {
                // A leader whose lease lapsed (just elected, or heartbeats slow)
                // confirms its leadership with a quorum round instead.
                outcome = self.raft.ensure_linearizable(ReadPolicy::ReadIndex).await;
            }
            outcome
        };
        // A leader cut off from its quorum would wait for it indefinitely.
        let outcome = tokio::time::timeout(READ_BARRIER_TIMEOUT, barrier)
            .await
            .map_err(|_| {
                ReplicationError::Timeout(format!(
                    "group {}: leadership not confirmed in {READ_BARRIER_TIMEOUT:?}",
                    self.id
                ))
            })?;
        match outcome {
            Ok(read) => Ok(read.index()),
            Err(RaftError::APIError(LinearizableReadError::ForwardToLeader(f))) => {
                Err(ReplicationError::NotLeader {
                    group: self.id,
                    leader: f.leader_id,
                })
            }
            Err(RaftError::APIError(e)) => Err(ReplicationError::Timeout(e.to_string())),
            Err(RaftError::Fatal(e)) => Err(stopped(e)),
        }
    }

    /// On the leader: replaces voter `old` by node `new` (reached at
    /// `new_addr`, hosting the group with `RaftNode::join_group`). The new
    /// node first catches up as a learner (a snapshot, then the log), then
    /// the voter set changes in one joint-consensus step; `old` leaves.
    pub async fn replace_voter(
        &self,
        old: NodeId,
        new: NodeId,
        new_addr: String,
    ) -> Result<(), ReplicationError> {
        self.compact_log().await?;
        self.add_member(new, new_addr, false).await?;
        self.swap_voter_for_learner(old, new, false).await
    }

    /// On the leader: adds node `new` (reached at `new_addr`, hosting the
    /// group with `RaftNode::join_group`) as a voter, as `replace_voter` does
    /// but with no voter leaving: the replication factor rises by one.
    pub async fn add_voter(&self, new: NodeId, new_addr: String) -> Result<(), ReplicationError> {
        self.compact_log().await?;
        self.add_member(new, new_addr, true).await
    }

    /// On the leader: adds node `node` (reached at `addr`) to the group,
    /// first as a learner, which returns once it has caught up, then as a
    /// voter when `as_voter`. Adding a member again changes nothing.
    pub async fn add_member(
        &self,
        node: NodeId,
        addr: String,
        as_voter: bool,
    ) -> Result<(), ReplicationError> {
        let _change = self.membership_change.lock().await;
        if self.voters().contains(&node) {
            return Ok(());
        }
        self.raft
            .add_learner(node, BasicNode { addr }, true)
            .await
            .map_err(|e| self.membership_error(e))?;
        if as_voter {
            let mut voters: std::collections::BTreeSet<NodeId> =
                self.voters().into_iter().collect();
            voters.insert(node);
            self.raft
                .change_membership(voters, false)
                .await
                .map_err(|e| self.membership_error(e))?;
        }
        Ok(())
    }

    /// On the leader: makes learner `new` a voter in place of voter `old`,
    /// in one step; `old` stays on as a learner when `keep_old` (other
    /// learners stay learners).
    pub async fn swap_voter_for_learner(
        &self,
        old: NodeId,
        new: NodeId,
        keep_old: bool,
    ) -> Result<(), ReplicationError> {
        let _change = self.membership_change.lock().await;
        let mut voters: std::collections::BTreeSet<NodeId> =
            self.voters().into_iter().filter(|id| *id != old).collect();
        voters.insert(new);
        self.raft
            .change_membership(voters, keep_old)
            .await
            .map_err(|e| self.membership_error(e))?;
        Ok(())
    }

    /// On the leader: takes voter `node` out of the group; it stays on as a
    /// learner (still following the log) when `keep_as_learner`.
    pub async fn remove_voter(
        &self,
        node: NodeId,
        keep_as_learner: bool,
    ) -> Result<(), ReplicationError> {
        let _change = self.membership_change.lock().await;
        if !self.voters().contains(&node) {
            return Ok(());
        }
        let voters: std::collections::BTreeSet<NodeId> =
            self.voters().into_iter().filter(|id| *id != node).collect();
        self.raft
            .change_membership(voters, keep_as_learner)
            .await
            .map_err(|e| self.membership_error(e))?;
        Ok(())
    }

    /// On the leader: takes learner `node` out of the group (it no longer
    /// receives the log).
    pub async fn remove_learner(&self, node: NodeId) -> Result<(), ReplicationError> {
        let _change = self.membership_change.lock().await;
        if !self.learners().contains(&node) {
            return Ok(());
        }
        let nodes = std::collections::BTreeSet::from([node]);
        self.raft
            .change_membership(openraft::ChangeMembers::RemoveNodes(nodes), false)
            .await
            .map_err(|e| self.membership_error(e))?;
        Ok(())
    }

    /// On the leader: whether every other member has acknowledged entries
    /// up to close to the end of the log (none is catching up, e.g. from
    /// a snapshot). False on a follower.
    pub fn members_caught_up(&self) -> bool {
        const LAG_ENTRIES: u64 = 1000;
        let metrics = self.raft.metrics();
        let metrics = metrics.borrow_watched();
        let (Some(progress), Some(last)) = (metrics.replication.as_ref(), metrics.last_log_index)
        else {
            return false;
        };
        progress
            .iter()
            .filter(|(id, _)| **id != metrics.id)
            .all(|(_, matched)| {
                matched
                    .as_ref()
                    .is_some_and(|m| m.index + LAG_ENTRIES >= last)
            })
    }

    /// Whether the group's membership is a joint one (a voter change is
    /// half done).
    pub fn in_joint_membership(&self) -> bool {
        self.raft
            .metrics()
            .borrow_watched()
            .membership_config
            .membership()
            .get_joint_config()
            .len()
            > 1
    }

    /// The group's learners: members that receive the log but do not vote.
    pub fn learners(&self) -> Vec<NodeId> {
        self.raft
            .metrics()
            .borrow_watched()
            .membership_config
            .membership()
            .learner_ids()
            .collect()
    }

    /// Takes a snapshot of everything applied and purges the log behind it,
    /// so a new replica starts from the snapshot: a group whose initial
    /// state was not written by its log (a partition made by a split) has
    /// no other way to give it that state. Returns once the log is purged
    /// (openraft holds a purge back while a replication stream still reads
    /// the entries).
    pub async fn compact_log(&self) -> Result<(), ReplicationError> {
        let applied = self.applied_index().unwrap_or(0);
        self.raft.trigger().snapshot().await.map_err(stopped)?;
        let snapshot = self
            .raft
            .wait(Some(Duration::from_secs(60)))
            .metrics(
                |m| m.snapshot.as_ref().is_some_and(|id| id.index >= applied),
                "snapshot taken",
            )
            .await
            .map_err(|e| ReplicationError::Timeout(format!("group {}: {e}", self.id)))?
            .snapshot
            .map(|id| id.index)
            .unwrap_or(applied);
        self.raft
            .trigger()
            .purge_log(snapshot)
            .await
            .map_err(stopped)?;
        self.raft
            .wait(Some(PURGE_TIMEOUT))
            .metrics(
                |m| m.purged.as_ref().is_some_and(|id| id.index >= snapshot),
                "log purged",
            )
            .await
            .map_err(|e| ReplicationError::Timeout(format!("group {}: {e}", self.id)))?;
        Ok(())
    }

    /// Whether this replica has purged any of its log (since its start,
    /// the log holds every entry otherwise).
    pub fn log_purged(&self) -> bool {
        self.raft.metrics().borrow_watched().purged.is_some()
    }

    /// On the leader: each other voter, with how long ago it last
    /// acknowledged a heartbeat or entries (`None`: not since this node
    /// became leader). Empty on a follower.
    pub fn follower_silence(&self) -> Vec<(NodeId, Option<Duration>)> {
        let voters = self.voters();
        self.member_silence()
            .into_iter()
            .filter(|(id, _)| voters.contains(id))
            .collect()
    }

    /// `follower_silence` of voters and learners alike.
    pub fn member_silence(&self) -> Vec<(NodeId, Option<Duration>)> {
        let metrics = self.raft.metrics();
        let metrics = metrics.borrow_watched();
        let Some(heartbeat) = metrics.heartbeat.as_ref() else {
            return Vec::new();
        };
        metrics
            .membership_config
            .membership()
            .nodes()
            .map(|(id, _)| *id)
            .filter(|id| *id != metrics.id)
            .map(|id| {
                let silence = heartbeat
                    .get(&id)
                    .cloned()
                    .flatten()
                    .map(|acked| openraft::Instant::elapsed(&*acked));
                (id, silence)
            })
            .collect()
    }

    fn membership_error(
        &self,
        error: RaftError<TypeConfig, ClientWriteError<TypeConfig>>,
    ) -> ReplicationError {
        match error {
            RaftError::APIError(ClientWriteError::ForwardToLeader(f)) => {
                ReplicationError::NotLeader {
                    group: self.id,
                    leader: f.leader_id,
                }
            }
            RaftError::APIError(e) => ReplicationError::OutcomeUnknown(e.to_string()),
            RaftError::Fatal(e) => stopped(e),
        }
    }

    /// If this replica leads and has peers, asks the most caught-up voter
    /// to take over and waits (up to `timeout`) until someone else leads.
    pub(crate) async fn hand_off_leadership(&self, node_id: NodeId, timeout: Duration) {
        let target = {
            let metrics = self.raft.metrics();
            let metrics = metrics.borrow_watched();
            if metrics.current_leader != Some(node_id) {
                return;
            }
            let voters: Vec<NodeId> = metrics
                .membership_config
                .membership()
                .voter_ids()
                .filter(|id| *id != node_id)
                .collect();
            metrics.replication.as_ref().and_then(|progress| {
                voters
                    .iter()
                    .max_by_key(|id| progress.get(*id).cloned().flatten().map(|l| l.index))
                    .copied()
            })
        };
        let Some(target) = target else {
            return;
        };
        if self.raft.trigger().transfer_leader(target).await.is_err() {
            return;
        }
        let handed = self
            .raft
            .wait(Some(timeout))
            .metrics(
                |m| m.current_leader.is_some_and(|leader| leader != node_id),
                "leadership handed off",
            )
            .await;
        if handed.is_err() {
            tracing::warn!(
                group = self.id,
                target,
                "leadership hand-off timed out; stopping anyway"
            );
        }
    }

    /// On the leader: asks voter `to` to take over (it campaigns at once if
    /// its log is up to date). Returns without waiting for the outcome;
    /// writes already proposed here still get theirs.
    pub async fn transfer_leadership(&self, to: NodeId) {
        if let Err(e) = self.raft.trigger().transfer_leader(to).await {
            tracing::debug!(group = self.id, to, error = %e, "leadership transfer not sent");
        }
    }

    /// Whether this replica leads the group (as far as it knows).
    pub fn is_leader(&self) -> bool {
        let metrics = self.raft.metrics();
        let metrics = metrics.borrow_watched();
        metrics.current_leader == Some(metrics.id)
    }

    /// Waits (up to `timeout`) until every entry of this replica's log is
    /// applied, or discarded by a new leader.
    pub(crate) async fn wait_log_applied(&self, timeout: Duration) {
        let applied = self
            .raft
            .wait(Some(timeout))
            .metrics(
                |m| m.last_applied.as_ref().map(|id| id.index) >= m.last_log_index,
                "log applied",
            )
            .await;
        if applied.is_err() {
            tracing::warn!(group = self.id, "stopping with entries not yet applied");
        }
    }

    /// The leader of the group as this replica knows it.
    pub fn current_leader(&self) -> Option<NodeId> {
        self.raft.metrics().borrow_watched().current_leader
    }

    /// On the leader, after confirming it still leads: every member
    /// (voters and learners) of the last membership the group committed.
    /// A node missing from it may delete its replica: no quorum needs it,
    /// and a removed member is never told so by the group itself.
    pub async fn committed_members(&self) -> Result<Vec<NodeId>, ReplicationError> {
        self.read_barrier().await?;
        self.raft
            .with_raft_state(|state| {
                state
                    .membership_state
                    .committed()
                    .membership()
                    .nodes()
                    .map(|(id, _)| *id)
                    .collect()
            })
            .await
            .map_err(stopped)
    }

    /// The group's voters, as this replica's membership config names them.
    pub fn voters(&self) -> Vec<NodeId> {
        self.raft
            .metrics()
            .borrow_watched()
            .membership_config
            .membership()
            .voter_ids()
            .collect()
    }

    /// Whether this replica is importing a snapshot: its state is then part
    /// old, part new, and reads belong elsewhere.
    pub fn is_installing_snapshot(&self) -> bool {
        self.installing_snapshot
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// What this replica knows of its group now, for metrics.
    pub fn status(&self) -> GroupStatus {
        let metrics = self.raft.metrics();
        let metrics = metrics.borrow_watched();
        let applied = metrics.last_applied.as_ref().map_or(0, |id| id.index);
        GroupStatus {
            term: metrics.current_term,
            is_leader: metrics.current_leader == Some(metrics.id),
            apply_lag_entries: metrics.last_log_index.unwrap_or(0).saturating_sub(applied),
        }
    }

    /// The index of the last entry applied to this replica's state machine.
    pub fn applied_index(&self) -> Option<u64> {
        self.raft
            .metrics()
            .borrow_watched()
            .last_applied
            .map(|id| id.index)
    }
}
