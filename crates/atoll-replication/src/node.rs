//! A node hosting many Raft groups (Multi-Raft) on one storage.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tracing::Instrument;

use atoll_storage::{Keyspace, Storage};
use openraft::error::{InitializeError, RaftError};
use openraft::{BasicNode, Config, SnapshotPolicy};

use crate::codec::{MetaTag, meta_key};
use crate::error::ReplicationError;
use crate::group::{Group, Untyped};
use crate::log_store::{GroupLogStore, LogShared};
use crate::log_writer::LogWriterHandle;
use crate::service::{AddressBook, ServiceHandler, ServicePool};
use crate::snapshot::remove_partial_spools;
use crate::state_machine::{ErasedStateMachine, GroupSm, GroupStateMachine, delete_group_records};
use crate::transport::{self, TcpNetwork};
use crate::{GroupId, NodeId, TypeConfig};

const RAFT_LOG_KEYSPACE: &str = "raft_log";
const RAFT_META_KEYSPACE: &str = "raft_meta";
const SM_META_KEYSPACE: &str = "sm_meta";

/// How a node runs its groups.
#[derive(Clone, Debug)]
pub struct NodeOptions {
    /// This node's id, stable across restarts.
    pub node_id: NodeId,
    /// Address other nodes reach this node's Raft transport at.
    pub advertise_addr: String,
    /// Address the Raft transport listens on (`None`: no transport, so the
    /// node can only host groups whose sole voter it is).
    pub raft_listen_addr: Option<String>,
    /// Log entries between two snapshots of a group (after which the log is purged).
    pub snapshot_every_entries: u64,
    /// Log entries kept behind a snapshot, so a follower a little behind
    /// catches up from the log rather than from a whole snapshot.
    pub log_entries_kept_after_snapshot: u64,
    /// How long a group may take to elect a leader and catch up at start.
    pub group_ready_timeout: Duration,
    /// Seed of openraft's random draws on this node; `None` draws one.
    /// Simulations fix it so that a run replays exactly.
    pub rng_seed: Option<u64>,
    /// Deliver Raft messages and service calls through this in-process,
    /// fault-injecting network instead of TCP (deterministic simulations).
    pub simulated_network: Option<std::sync::Arc<crate::sim::SimNetwork>>,
    /// Addresses of peers as this node reaches them; they win over the
    /// addresses groups' memberships record (so tests can put a
    /// fault-injecting proxy on one link).
    pub peer_addrs: BTreeMap<NodeId, String>,
}

impl Default for NodeOptions {
    fn default() -> Self {
        NodeOptions {
            node_id: 1,
            advertise_addr: "127.0.0.1:0".to_string(),
            raft_listen_addr: None,
            snapshot_every_entries: 20_000,
            log_entries_kept_after_snapshot: 1000,
            group_ready_timeout: Duration::from_secs(10),
            peer_addrs: BTreeMap::new(),
            rng_seed: None,
            simulated_network: None,
        }
    }
}

pub(crate) type Raft = openraft::Raft<TypeConfig, GroupSm>;

/// How long a stopping node waits for each group's leadership to move.
const HAND_OFF_TIMEOUT: Duration = Duration::from_secs(2);

/// The node: its storage, its log writer and its groups.
pub struct RaftNode {
    options: NodeOptions,
    storage: Storage,
    log: Arc<LogShared>,
    sm_meta: Keyspace,
    raft_config: Arc<Config>,
    groups: RwLock<BTreeMap<GroupId, Group<Untyped>>>,
    raft_addr: Option<SocketAddr>,
    // The transport's accept loop, stopped at shutdown so the port is freed.
    transport_task: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
    // Set when the node stops: no group starts after it, and peers' requests
    // are refused (connections accepted before may still bring some).
    stopped: std::sync::atomic::AtomicBool,
    addresses: Arc<AddressBook>,
    service_handler: RwLock<Option<Arc<dyn ServiceHandler>>>,
    service_pool: ServicePool,
}

impl RaftNode {
    /// Opens the node's Raft state in `storage`, starts the log writer and,
    /// when `raft_listen_addr` is set, the transport that peers connect to
    /// (this needs a Tokio runtime).
    pub fn open(storage: Storage, options: NodeOptions) -> Result<Arc<RaftNode>, ReplicationError> {
        if let Some(dir) = storage.spool_dir() {
            remove_partial_spools(&dir).map_err(stopped)?;
        }
        let log_ks = storage.log_keyspace(RAFT_LOG_KEYSPACE)?;
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
            max_in_snapshot_log_to_keep: options.log_entries_kept_after_snapshot,
            ..Default::default()
        }
        .validate()
        .map_err(|e| ReplicationError::Stopped(e.to_string()))?;
        let listener = match &options.raft_listen_addr {
            Some(addr) => Some(bind(addr)?),
            None => None,
        };
        let raft_addr = match &listener {
            Some(listener) => Some(listener.local_addr().map_err(stopped)?),
            None => None,
        };
        let addresses = Arc::new(AddressBook::new(options.peer_addrs.clone()));
        let node = Arc::new(RaftNode {
            options,
            addresses,
            service_handler: RwLock::new(None),
            service_pool: ServicePool::default(),
            storage,
            log: Arc::new(LogShared {
                log_ks,
                meta_ks,
                writer,
            }),
            sm_meta,
            raft_config: Arc::new(raft_config),
            groups: RwLock::new(BTreeMap::new()),
            raft_addr,
            transport_task: std::sync::Mutex::new(None),
            stopped: std::sync::atomic::AtomicBool::new(false),
        });
        if let Some(listener) = listener {
            let task = tokio::spawn(transport::serve(listener, Arc::downgrade(&node)));
            *node
                .transport_task
                .lock()
                .unwrap_or_else(|e| e.into_inner()) = Some(task);
        }
        if let Some(network) = &node.options.simulated_network {
            network.register(&node);
        }
        Ok(node)
    }

    /// The address the Raft transport listens on, if it runs.
    pub fn raft_addr(&self) -> Option<SocketAddr> {
        self.raft_addr
    }

    /// The Raft instance of group `id`, for the transport.
    pub(crate) fn raft_of(&self, id: GroupId) -> Option<Raft> {
        self.group::<Untyped>(id).map(|group| group.raft)
    }

    /// Where snapshots being received are spooled (`None`: in memory).
    pub(crate) fn spool_dir(&self) -> Option<std::path::PathBuf> {
        self.storage.spool_dir()
    }

    /// This node's id.
    pub fn node_id(&self) -> NodeId {
        self.options.node_id
    }

    /// Whether the node has stopped (or is stopping).
    pub fn is_stopped(&self) -> bool {
        self.stopped.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Where peers reach this node's inter-node port.
    pub fn advertise_addr(&self) -> &str {
        &self.options.advertise_addr
    }

    /// Sets what answers peers' service calls (until then they are refused).
    pub fn set_service_handler(&self, handler: Arc<dyn ServiceHandler>) {
        *self
            .service_handler
            .write()
            .unwrap_or_else(|e| e.into_inner()) = Some(handler);
    }

    pub(crate) fn service_handler(&self) -> Option<Arc<dyn ServiceHandler>> {
        self.service_handler
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Records where node `node` is reached, unless this node was configured
    /// with an address for it.
    pub fn learn_peer_addr(&self, node: NodeId, addr: String) {
        self.addresses.learn(node, addr);
    }

    /// Where node `node` is reached, if known.
    pub fn peer_addr(&self, node: NodeId) -> Option<String> {
        self.addresses.lookup(node)
    }

    /// Calls the service of node `target` with `payload` and returns its
    /// answer. `ReplicationError::Unreachable` means the peer certainly did
    /// not act on the call; `OutcomeUnknown` that it may have.
    pub async fn call_service(
        &self,
        target: NodeId,
        payload: Vec<u8>,
        timeout: Duration,
    ) -> Result<Vec<u8>, ReplicationError> {
        if let Some(network) = &self.options.simulated_network {
            return network
                .call_service(self.options.node_id, target, payload, timeout)
                .await;
        }
        let addr = self
            .addresses
            .lookup(target)
            .ok_or_else(|| ReplicationError::Unreachable {
                node: target,
                reason: "no address known".into(),
            })?;
        self.service_pool
            .call(self.options.node_id, target, &addr, payload, timeout)
            .await
    }

    /// Calls the service of whichever node listens at `addr` (its id is not
    /// known yet: a node joining a cluster knows one member's address only).
    /// Not pooled; errors as `call_service`'s.
    pub async fn call_service_at(
        &self,
        addr: &str,
        payload: Vec<u8>,
        timeout: Duration,
    ) -> Result<Vec<u8>, ReplicationError> {
        if let Some(network) = &self.options.simulated_network {
            let target = network
                .node_at(addr)
                .ok_or_else(|| ReplicationError::Unreachable {
                    node: transport::ANY_NODE,
                    reason: format!("no node at {addr}"),
                })?;
            return network
                .call_service(self.options.node_id, target, payload, timeout)
                .await;
        }
        crate::service::ServicePool::default()
            .call(
                self.options.node_id,
                transport::ANY_NODE,
                addr,
                payload,
                timeout,
            )
            .await
    }

    /// The group `id`, if this node hosts it, its outputs taken as `O`
    /// (its state machine's `Output`).
    pub fn group<O>(&self, id: GroupId) -> Option<Group<O>> {
        self.groups
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&id)
            .cloned()
            .map(Group::retyped)
    }

    /// Starts group `id` with state machine `sm`: recovers it if it exists on
    /// disk, otherwise creates it with this node as its only voter. Returns once
    /// the group has a leader and has applied everything it had committed.
    pub async fn start_group<S: GroupStateMachine>(
        &self,
        id: GroupId,
        sm: Arc<S>,
    ) -> Result<Group<S::Output>, ReplicationError> {
        let mut members = BTreeMap::new();
        members.insert(self.options.node_id, self.options.advertise_addr.clone());
        self.start_replicated_group(id, sm, members).await
    }

    /// Starts group `id` replicated on `members` (node id to Raft address,
    /// this node among them): recovers it if it exists on disk, otherwise
    /// creates it with these voters. Every member is started the same way;
    /// returns once the group has a leader (on any member) and this replica
    /// has applied what it had committed.
    pub async fn start_replicated_group<S: GroupStateMachine>(
        &self,
        id: GroupId,
        sm: Arc<S>,
        members: BTreeMap<NodeId, String>,
    ) -> Result<Group<S::Output>, ReplicationError> {
        // The member with the smallest id writes the first membership entry;
        // the others learn it from that member. (Were every member to
        // initialise, each would write its own entry 0 and elections would
        // first have to settle whose log wins.)
        let founder = members.keys().next().copied().unwrap_or_default();
        self.start_group_founded_by(id, sm, members, founder).await
    }

    /// Whether this node has Raft state for group `id` on disk (it hosted
    /// the group before, and has not destroyed it).
    pub fn has_group_state(&self, id: GroupId) -> Result<bool, ReplicationError> {
        Ok(self
            .log
            .meta_ks
            .get(&meta_key(id, MetaTag::Vote))?
            .is_some())
    }

    /// `start_replicated_group` with `founder` writing the group's first
    /// membership entry (a group created by a split is founded by the node
    /// that split it, whose items are known to be right).
    pub async fn start_group_founded_by<S: GroupStateMachine>(
        &self,
        id: GroupId,
        sm: Arc<S>,
        members: BTreeMap<NodeId, String>,
        founder: NodeId,
    ) -> Result<Group<S::Output>, ReplicationError> {
        if !members.contains_key(&self.options.node_id) {
            return Err(ReplicationError::Stopped(format!(
                "group {id}: node {} is not one of its members",
                self.options.node_id
            )));
        }
        if let Some(group) = self.group(id) {
            return Ok(group);
        }
        let group = self.open_group(id, sm).await?.retyped::<S::Output>();
        // What the group's stored membership says, not `members`: a node
        // started alone may since have been joined by others.
        let single_voter = group.voters() == [self.options.node_id];
        let initialiser = founder == self.options.node_id;
        let ready = async {
            if initialiser && !group.raft.is_initialized().await.map_err(stopped)? {
                let voters: BTreeMap<NodeId, BasicNode> = members
                    .into_iter()
                    .map(|(node, addr)| (node, BasicNode { addr }))
                    .collect();
                // Refused when a restarted initialiser finds a log already there.
                match group.raft.initialize(voters).await {
                    Ok(()) => {}
                    Err(RaftError::APIError(InitializeError::NotAllowed(_))) => {}
                    Err(e) => return Err(stopped(e)),
                }
            } else if single_voter && group.raft.is_initialized().await.map_err(stopped)? {
                // A single voter need not wait out an election timeout after a restart.
                group.raft.trigger().elect(false).await.map_err(stopped)?;
            }
            group.wait_ready(self.options.group_ready_timeout).await
        };
        if let Err(e) = ready.await {
            self.groups
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&id);
            let _ = group.raft.shutdown().await;
            return Err(e);
        }
        Ok(group)
    }

    /// Hosts group `id` as a new replica that its leader is about to add
    /// (`Group::replace_voter`): the group starts empty and waits to hear
    /// from the leader, which sends it a snapshot and the log after it.
    pub async fn join_group<S: GroupStateMachine>(
        &self,
        id: GroupId,
        sm: Arc<S>,
    ) -> Result<Group<S::Output>, ReplicationError> {
        match self.group(id) {
            Some(group) => Ok(group),
            None => Ok(self.open_group(id, sm).await?.retyped()),
        }
    }

    /// Creates group `id`'s Raft instance on its log and state machine, and
    /// registers it with the transport. Registered before it has a leader:
    /// its peers' votes and entries must reach it for it to get one.
    async fn open_group(
        &self,
        id: GroupId,
        sm: Arc<dyn ErasedStateMachine>,
    ) -> Result<Group<Untyped>, ReplicationError> {
        if self.is_stopped() {
            return Err(ReplicationError::Stopped(format!(
                "node {} is stopping",
                self.options.node_id
            )));
        }
        let log = GroupLogStore::open(id, self.log.clone()).map_err(stopped)?;
        let installing_snapshot = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut state_machine = GroupSm::open(
            id,
            self.storage.clone(),
            self.sm_meta.clone(),
            sm,
            installing_snapshot.clone(),
        )
        .map_err(stopped)?;
        state_machine.resume_install().await.map_err(stopped)?;
        let network = TcpNetwork {
            group: id,
            local: self.options.node_id,
            addresses: self.addresses.clone(),
            simulated: self.options.simulated_network.clone(),
        };
        // openraft's tasks draw their random numbers from seeds handed down
        // from this one (see `Runtime`).
        let seed = group_seed(self.options.rng_seed, self.options.node_id, id);
        let raft = crate::Runtime::scope(
            seed,
            Raft::new(
                self.options.node_id,
                self.raft_config.clone(),
                network,
                log.clone(),
                state_machine,
            ),
        )
        .await
        .map_err(stopped)?;
        let group = Group {
            id,
            raft,
            log,
            membership_change: Arc::default(),
            installing_snapshot,
            output: std::marker::PhantomData,
        };
        {
            // Checked again under the lock `stop` empties the groups with:
            // a group started while the node stopped would run on.
            let mut groups = self.groups.write().unwrap_or_else(|e| e.into_inner());
            if !self.is_stopped() {
                groups.insert(id, group.clone());
                tokio::spawn(
                    crate::group::count_leader_changes(id, group.raft.clone())
                        .instrument(tracing::info_span!("leader_changes", group = id)),
                );
                return Ok(group);
            }
        }
        let _ = group.raft.shutdown().await;
        Err(ReplicationError::Stopped(format!(
            "node {} is stopping",
            self.options.node_id
        )))
    }

    /// Ids of the groups this node keeps Raft state for on disk, hosted or
    /// not (a group dropped while this node was down leaves its state).
    pub fn groups_on_disk(&self) -> Result<Vec<GroupId>, ReplicationError> {
        let mut ids = std::collections::BTreeSet::new();
        let all = self.log.meta_ks.range(
            std::ops::Bound::Unbounded,
            std::ops::Bound::Unbounded,
            false,
        );
        for entry in all {
            let (key, _) = entry?;
            if let Some(id) = key.get(..8).and_then(|b| <[u8; 8]>::try_from(b).ok()) {
                ids.insert(GroupId::from_be_bytes(id));
            }
        }
        Ok(ids.into_iter().collect())
    }

    /// Whether group `id`'s membership, as this node last applied it, names
    /// `node` (a voter or a learner); `true` when nothing was applied yet.
    pub fn applied_membership_names(
        &self,
        id: GroupId,
        node: NodeId,
    ) -> Result<bool, ReplicationError> {
        let Some(bytes) = self.sm_meta.get(&meta_key(id, MetaTag::Membership))? else {
            return Ok(true);
        };
        let stored: crate::typ::StoredMembership = crate::codec::decode(&bytes).map_err(stopped)?;
        Ok(stored.membership().nodes().any(|(id, _)| *id == node))
    }

    /// Deletes the Raft state (log and records) of group `id`, which this
    /// node does not host (see `groups_on_disk`).
    pub async fn forget_group(&self, id: GroupId) -> Result<(), ReplicationError> {
        if self.group::<Untyped>(id).is_some() {
            return Err(ReplicationError::Stopped(format!(
                "group {id} is hosted here; destroy it instead"
            )));
        }
        GroupLogStore::open(id, self.log.clone())
            .and_then(|log| log.destroy())
            .map_err(stopped)?;
        delete_group_records(&self.storage, &self.sm_meta, id).map_err(stopped)?;
        self.log.writer.barrier().await.map_err(stopped)?;
        Ok(())
    }

    /// Stops group `id` and deletes its log and records (the caller drops its data).
    pub async fn destroy_group(&self, id: GroupId) -> Result<(), ReplicationError> {
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
        delete_group_records(&self.storage, &self.sm_meta, id).map_err(stopped)?;
        self.log.writer.barrier().await.map_err(stopped)?;
        Ok(())
    }

    /// Stops the node: first hands every leadership it holds to a caught-up
    /// voter (so writes go on without waiting out an election), then stops
    /// the transport and every group.
    pub async fn shutdown(&self) {
        self.stop(true).await;
    }

    /// Stops the transport and every group; with `hand_off_leadership`, first
    /// moves the leaderships it holds. Without, peers notice only when their
    /// election timers fire, as after a crash (tests of failover use that).
    pub async fn stop(&self, hand_off_leadership: bool) {
        if !hand_off_leadership {
            // A crash: nothing more is answered from here on.
            self.stopped
                .store(true, std::sync::atomic::Ordering::SeqCst);
        }
        if hand_off_leadership {
            let groups: Vec<Group<Untyped>> = self
                .groups
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .values()
                .cloned()
                .collect();
            let node_id = self.options.node_id;
            futures_util::future::join_all(
                groups
                    .iter()
                    .map(|group| group.hand_off_leadership(node_id, HAND_OFF_TIMEOUT)),
            )
            .await;
            // Writes this node proposed before handing off are committed by
            // the new leader; once they are applied here, their proposers
            // get their outcome. Stopping first would leave it unknown (and
            // a client's retry could apply a conditional write twice).
            futures_util::future::join_all(
                groups
                    .iter()
                    .map(|group| group.wait_log_applied(HAND_OFF_TIMEOUT)),
            )
            .await;
        }
        self.stopped
            .store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(task) = self
            .transport_task
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            task.abort();
        }
        let groups: Vec<Group<Untyped>> =
            std::mem::take(&mut *self.groups.write().unwrap_or_else(|e| e.into_inner()))
                .into_values()
                .collect();
        for group in groups {
            if let Err(e) = group.raft.shutdown().await {
                tracing::warn!(group = group.id, error = %e, "group did not shut down cleanly");
            }
        }
        let _ = self.log.writer.barrier().await;
    }
}

/// The seed of group `group`'s random draws on node `node`.
fn group_seed(node_seed: Option<u64>, node: NodeId, group: GroupId) -> u64 {
    use std::hash::{BuildHasher, Hash, Hasher};
    let mut hasher = match node_seed {
        // A fixed hasher, so the same seed gives the same draws in every process.
        Some(seed) => {
            let mut hasher = std::hash::DefaultHasher::new();
            seed.hash(&mut hasher);
            hasher
        }
        None => std::collections::hash_map::RandomState::new().build_hasher(),
    };
    (node, group).hash(&mut hasher);
    hasher.finish()
}

pub(crate) fn stopped(e: impl std::fmt::Display) -> ReplicationError {
    ReplicationError::Stopped(e.to_string())
}

fn bind(addr: &str) -> Result<tokio::net::TcpListener, ReplicationError> {
    let listener = std::net::TcpListener::bind(addr)
        .map_err(|e| ReplicationError::Stopped(format!("raft transport on {addr}: {e}")))?;
    listener.set_nonblocking(true).map_err(stopped)?;
    tokio::net::TcpListener::from_std(listener).map_err(stopped)
}
