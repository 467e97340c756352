//! A node hosting many Raft groups (Multi-Raft) on one storage.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use atoll_storage::{Keyspace, Storage};
use openraft::async_runtime::WatchReceiver;
use openraft::error::{ClientWriteError, LinearizableReadError, RaftError};
use openraft::{BasicNode, Config, ReadPolicy, SnapshotPolicy};

use crate::error::ReplicationError;
use crate::log_store::{GroupLogStore, LogShared};
use crate::log_writer::LogWriterHandle;
use crate::network::LocalOnlyNetwork;
use crate::state_machine::{GroupSm, GroupStateMachine};
use crate::{ApplyOutput, GroupId, LogCommand, NodeId, TypeConfig};

const RAFT_LOG_KEYSPACE: &str = "raft_log";
const RAFT_META_KEYSPACE: &str = "raft_meta";
const SM_META_KEYSPACE: &str = "sm_meta";

/// How a node runs its groups.
#[derive(Clone, Debug)]
pub struct NodeOptions {
    /// This node's id, stable across restarts.
    pub node_id: NodeId,
    /// Address other nodes reach this node at.
    pub advertise_addr: String,
    /// Log entries between two snapshots of a group (after which the log is purged).
    pub snapshot_every_entries: u64,
    /// How long a group may take to elect a leader and catch up at start.
    pub group_ready_timeout: Duration,
}

impl Default for NodeOptions {
    fn default() -> Self {
        NodeOptions {
            node_id: 1,
            advertise_addr: "127.0.0.1:0".to_string(),
            snapshot_every_entries: 20_000,
            group_ready_timeout: Duration::from_secs(10),
        }
    }
}

type Raft = openraft::Raft<TypeConfig, GroupSm>;

/// One Raft group hosted on this node.
#[derive(Clone)]
pub struct Group {
    id: GroupId,
    raft: Raft,
    log: GroupLogStore,
}

/// The node: its storage, its log writer and its groups.
pub struct RaftNode {
    options: NodeOptions,
    storage: Storage,
    log: Arc<LogShared>,
    sm_meta: Keyspace,
    raft_config: Arc<Config>,
    groups: RwLock<HashMap<GroupId, Group>>,
}

impl RaftNode {
    /// Opens the node's Raft state in `storage` and starts the log writer.
    pub fn open(storage: Storage, options: NodeOptions) -> Result<Arc<RaftNode>, ReplicationError> {
        let log_ks = storage.keyspace(RAFT_LOG_KEYSPACE)?;
        let meta_ks = storage.keyspace(RAFT_META_KEYSPACE)?;
        let sm_meta = storage.keyspace(SM_META_KEYSPACE)?;
        let writer = LogWriterHandle::start(storage.clone(), log_ks.clone(), meta_ks.clone())
            .map_err(|e| ReplicationError::Stopped(e.to_string()))?;
        let raft_config = Config {
            cluster_name: "atoll".to_string(),
            heartbeat_interval: 100,
            election_timeout_min: 300,
            election_timeout_max: 600,
            snapshot_policy: SnapshotPolicy::LogsSinceLast(options.snapshot_every_entries),
            max_in_snapshot_log_to_keep: 1000,
            ..Default::default()
        }
        .validate()
        .map_err(|e| ReplicationError::Stopped(e.to_string()))?;
        Ok(Arc::new(RaftNode {
            options,
            storage,
            log: Arc::new(LogShared {
                log_ks,
                meta_ks,
                writer,
            }),
            sm_meta,
            raft_config: Arc::new(raft_config),
            groups: RwLock::new(HashMap::new()),
        }))
    }

    /// This node's id.
    pub fn node_id(&self) -> NodeId {
        self.options.node_id
    }

    /// The group `id`, if this node hosts it.
    pub fn group(&self, id: GroupId) -> Option<Group> {
        self.groups
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&id)
            .cloned()
    }

    /// Starts group `id` with state machine `sm`: recovers it if it exists on
    /// disk, otherwise creates it with this node as its only voter. Returns once
    /// the group has a leader and has applied everything it had committed.
    pub async fn start_group(
        &self,
        id: GroupId,
        sm: Arc<dyn GroupStateMachine>,
    ) -> Result<Group, ReplicationError> {
        if let Some(group) = self.group(id) {
            return Ok(group);
        }
        let log = GroupLogStore::open(id, self.log.clone()).map_err(stopped)?;
        let state_machine =
            GroupSm::open(id, self.storage.clone(), self.sm_meta.clone(), sm).map_err(stopped)?;
        let raft = Raft::new(
            self.options.node_id,
            self.raft_config.clone(),
            LocalOnlyNetwork,
            log.clone(),
            state_machine,
        )
        .await
        .map_err(stopped)?;
        let group = Group { id, raft, log };
        if !group.raft.is_initialized().await.map_err(stopped)? {
            let mut members = BTreeMap::new();
            members.insert(
                self.options.node_id,
                BasicNode {
                    addr: self.options.advertise_addr.clone(),
                },
            );
            group.raft.initialize(members).await.map_err(stopped)?;
        } else {
            // A single voter need not wait out an election timeout after a restart.
            group.raft.trigger().elect(false).await.map_err(stopped)?;
        }
        group
            .wait_ready(self.options.node_id, self.options.group_ready_timeout)
            .await?;
        self.groups
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, group.clone());
        Ok(group)
    }

    /// Stops group `id` and deletes its log and records (the caller drops its data).
    pub async fn destroy_group(
        &self,
        id: GroupId,
        sm: Arc<dyn GroupStateMachine>,
    ) -> Result<(), ReplicationError> {
        let group = self
            .groups
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
        let log = match group {
            Some(group) => {
                group.raft.shutdown().await.map_err(stopped)?;
                group.log
            }
            None => GroupLogStore::open(id, self.log.clone()).map_err(stopped)?,
        };
        log.destroy().map_err(stopped)?;
        GroupSm::open(id, self.storage.clone(), self.sm_meta.clone(), sm)
            .and_then(|sm| sm.destroy())
            .map_err(stopped)?;
        self.log.writer.barrier().await.map_err(stopped)?;
        Ok(())
    }

    /// Stops every group.
    pub async fn shutdown(&self) {
        let groups: Vec<Group> = self
            .groups
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .drain()
            .map(|(_, g)| g)
            .collect();
        for group in groups {
            if let Err(e) = group.raft.shutdown().await {
                tracing::warn!(group = group.id, error = %e, "group did not shut down cleanly");
            }
        }
        let _ = self.log.writer.barrier().await;
    }
}

fn stopped(e: impl std::fmt::Display) -> ReplicationError {
    ReplicationError::Stopped(e.to_string())
}

impl Group {
    /// The group's id.
    pub fn id(&self) -> GroupId {
        self.id
    }

    async fn wait_ready(&self, node_id: NodeId, timeout: Duration) -> Result<(), ReplicationError> {
        self.raft
            .wait(Some(timeout))
            .current_leader(node_id, "group elects its leader")
            .await
            .map_err(|e| ReplicationError::Timeout(format!("group {}: {e}", self.id)))?;
        self.raft
            .wait_for_recovery(Some(timeout))
            .await
            .map_err(|e| ReplicationError::Timeout(format!("group {}: {e}", self.id)))?;
        Ok(())
    }

    /// Replicates `command`, waits until it is durable on a quorum and applied,
    /// and returns what applying it produced.
    pub async fn propose(&self, command: bytes::Bytes) -> Result<ApplyOutput, ReplicationError> {
        match self.raft.client_write(LogCommand(command)).await {
            Ok(response) => Ok(response.data),
            Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => {
                Err(ReplicationError::NotLeader {
                    group: self.id,
                    leader: f.leader_id,
                })
            }
            Err(RaftError::APIError(e)) => Err(ReplicationError::OutcomeUnknown(e.to_string())),
            Err(RaftError::Fatal(e)) => Err(stopped(e)),
        }
    }

    /// Returns once this node may serve a linearizable read of the group.
    pub async fn read_barrier(&self) -> Result<(), ReplicationError> {
        match self.raft.ensure_linearizable(ReadPolicy::LeaseRead).await {
            Ok(_) => Ok(()),
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

    /// The index of the last entry applied to this replica's state machine.
    pub fn applied_index(&self) -> Option<u64> {
        self.raft
            .metrics()
            .borrow_watched()
            .last_applied
            .map(|id| id.index)
    }
}
