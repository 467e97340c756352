//! The catalog's record of the cluster's nodes and of which nodes hold each
//! partition's replicas: the part of the partition map that says where.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::RwLock;

use atoll_replication::{ApplyContext, GroupId, NodeId};
use atoll_storage::{Keyspace, StorageError};
use serde::{Deserialize, Serialize};

use crate::placement::{NodeInfo, REPLICATION_FACTOR, place_replicas};

pub(super) const NODE_KEY_PREFIX: &[u8] = b"node:";
pub(super) const REPLICAS_KEY_PREFIX: &[u8] = b"replicas:";
pub(super) const ORIGIN_KEY_PREFIX: &[u8] = b"origin:";
pub(super) const DOWN_KEY_PREFIX: &[u8] = b"down:";
pub(super) const LEAVING_KEY_PREFIX: &[u8] = b"leaving:";
pub(super) const REMOVED_KEY_PREFIX: &[u8] = b"removed:";
pub(super) const ADMITTED_KEY_PREFIX: &[u8] = b"admitted:";
/// Every prefix of the records `Placements` holds (all are loaded at open).
pub(super) const PLACEMENT_KEY_PREFIXES: [&[u8]; 7] = [
    NODE_KEY_PREFIX,
    REPLICAS_KEY_PREFIX,
    ORIGIN_KEY_PREFIX,
    DOWN_KEY_PREFIX,
    LEAVING_KEY_PREFIX,
    REMOVED_KEY_PREFIX,
    ADMITTED_KEY_PREFIX,
];

/// How a partition's group came to be, which decides how its replicas start.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupOrigin {
    /// The node that writes the group's first membership entry.
    pub founder: NodeId,
    /// The partition it split from: its replicas start on the items their
    /// replica of that partition handed off.
    pub split_from: Option<GroupId>,
}

/// A node of the cluster, as it registered itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeRecord {
    /// Node id.
    pub node_id: NodeId,
    /// Where peers reach its inter-node port.
    pub cluster_addr: String,
    /// Where clients reach its DynamoDB API.
    pub api_addr: String,
    /// Availability zone, if it was started with one.
    pub zone: Option<String>,
}

fn id_key(prefix: &[u8], id: u64) -> Vec<u8> {
    let mut key = prefix.to_vec();
    key.extend_from_slice(&id.to_be_bytes());
    key
}

fn id_of_key(prefix: &[u8], key: &[u8]) -> Option<u64> {
    let bytes: [u8; 8] = key.strip_prefix(prefix)?.try_into().ok()?;
    Some(u64::from_be_bytes(bytes))
}

/// Nodes and replica sets, held in memory beside their records.
#[derive(Default)]
pub(super) struct Placements {
    nodes: RwLock<BTreeMap<NodeId, NodeRecord>>,
    replicas: RwLock<BTreeMap<GroupId, Vec<NodeId>>>,
    origins: RwLock<BTreeMap<GroupId, GroupOrigin>>,
    // Nodes silent for the dead-node time, as the catalog's leader saw them.
    down: RwLock<BTreeSet<NodeId>>,
    // Nodes being decommissioned: their replicas move away.
    leaving: RwLock<BTreeSet<NodeId>>,
    // Ids of decommissioned nodes, which may never register again (a node
    // with that id would come back as a member that forgot its votes).
    removed: RwLock<BTreeSet<NodeId>>,
    // The incarnation each joined node was first admitted as.
    admitted: RwLock<BTreeMap<NodeId, u64>>,
}

impl Placements {
    /// Reads the records of `keyspace`, or of an export's `records`.
    pub(super) fn load<'a>(
        records: impl Iterator<Item = (&'a [u8], &'a [u8])>,
    ) -> Result<Placements, StorageError> {
        let placements = Placements::default();
        for (key, value) in records {
            placements.load_record(key, value)?;
        }
        Ok(placements)
    }

    fn load_record(&self, key: &[u8], value: &[u8]) -> Result<(), StorageError> {
        if let Some(id) = id_of_key(NODE_KEY_PREFIX, key) {
            let node: NodeRecord = postcard::from_bytes(value).map_err(super::corrupt)?;
            self.nodes
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .insert(id, node);
        } else if let Some(id) = id_of_key(REPLICAS_KEY_PREFIX, key) {
            let replicas: Vec<NodeId> = postcard::from_bytes(value).map_err(super::corrupt)?;
            self.replicas
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .insert(id, replicas);
        } else if let Some(id) = id_of_key(DOWN_KEY_PREFIX, key) {
            self.down
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .insert(id);
        } else if let Some(id) = id_of_key(LEAVING_KEY_PREFIX, key) {
            self.leaving
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .insert(id);
        } else if let Some(id) = id_of_key(ADMITTED_KEY_PREFIX, key) {
            let incarnation = <[u8; 8]>::try_from(value)
                .map(u64::from_be_bytes)
                .map_err(|_| super::corrupt("an admission record is not 8 bytes"))?;
            self.admitted
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .insert(id, incarnation);
        } else if let Some(id) = id_of_key(REMOVED_KEY_PREFIX, key) {
            self.removed
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .insert(id);
        } else if let Some(id) = id_of_key(ORIGIN_KEY_PREFIX, key) {
            let origin: GroupOrigin = postcard::from_bytes(value).map_err(super::corrupt)?;
            self.origins
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .insert(id, origin);
        }
        Ok(())
    }

    /// Replaces everything with `other`'s (a snapshot was installed).
    pub(super) fn replace_with(&self, other: Placements) {
        *self.nodes.write().unwrap_or_else(|e| e.into_inner()) =
            other.nodes.into_inner().unwrap_or_else(|e| e.into_inner());
        *self.replicas.write().unwrap_or_else(|e| e.into_inner()) = other
            .replicas
            .into_inner()
            .unwrap_or_else(|e| e.into_inner());
        *self.origins.write().unwrap_or_else(|e| e.into_inner()) = other
            .origins
            .into_inner()
            .unwrap_or_else(|e| e.into_inner());
        *self.down.write().unwrap_or_else(|e| e.into_inner()) =
            other.down.into_inner().unwrap_or_else(|e| e.into_inner());
        *self.leaving.write().unwrap_or_else(|e| e.into_inner()) = other
            .leaving
            .into_inner()
            .unwrap_or_else(|e| e.into_inner());
        *self.removed.write().unwrap_or_else(|e| e.into_inner()) = other
            .removed
            .into_inner()
            .unwrap_or_else(|e| e.into_inner());
        *self.admitted.write().unwrap_or_else(|e| e.into_inner()) = other
            .admitted
            .into_inner()
            .unwrap_or_else(|e| e.into_inner());
    }

    /// The incarnation node `node_id` was first admitted as (`None`: it
    /// never joined, or joined before incarnations were recorded).
    pub(super) fn admitted_incarnation(&self, node_id: NodeId) -> Option<u64> {
        self.admitted
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&node_id)
            .copied()
    }

    /// Records that node `node_id` was admitted as `incarnation`; `false`
    /// (nothing written) when it was admitted as another one before.
    pub(super) fn admit(
        &self,
        ctx: &mut ApplyContext,
        keyspace: &Keyspace,
        node_id: NodeId,
        incarnation: u64,
    ) -> bool {
        let mut admitted = self.admitted.write().unwrap_or_else(|e| e.into_inner());
        match admitted.get(&node_id) {
            Some(recorded) => *recorded == incarnation,
            None => {
                ctx.put(
                    keyspace,
                    id_key(ADMITTED_KEY_PREFIX, node_id),
                    incarnation.to_be_bytes().to_vec(),
                );
                admitted.insert(node_id, incarnation);
                true
            }
        }
    }

    /// Whether node `node_id` is being decommissioned.
    pub(super) fn is_leaving(&self, node_id: NodeId) -> bool {
        self.leaving
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&node_id)
    }

    /// Whether node `node_id` was decommissioned.
    pub(super) fn is_removed(&self, node_id: NodeId) -> bool {
        self.removed
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&node_id)
    }

    /// Marks registered node `node_id` as leaving (its replicas move away).
    pub(super) fn set_leaving(&self, ctx: &mut ApplyContext, keyspace: &Keyspace, node_id: NodeId) {
        if !self.is_registered(node_id) {
            return;
        }
        ctx.put(keyspace, id_key(LEAVING_KEY_PREFIX, node_id), Vec::new());
        self.leaving
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(node_id);
    }

    /// Forgets node `node_id` for good, unless a partition's replicas
    /// still include it (`false`).
    pub(super) fn remove_node(
        &self,
        ctx: &mut ApplyContext,
        keyspace: &Keyspace,
        node_id: NodeId,
    ) -> bool {
        let holds_replicas = self
            .replicas
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .any(|set| set.contains(&node_id));
        if holds_replicas {
            return false;
        }
        for prefix in [NODE_KEY_PREFIX, DOWN_KEY_PREFIX, LEAVING_KEY_PREFIX] {
            ctx.delete(keyspace, id_key(prefix, node_id));
        }
        ctx.put(keyspace, id_key(REMOVED_KEY_PREFIX, node_id), Vec::new());
        self.nodes
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&node_id);
        for set in [&self.down, &self.leaving] {
            set.write()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&node_id);
        }
        self.removed
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(node_id);
        true
    }

    /// Whether node `node_id` is marked down.
    pub(super) fn is_down(&self, node_id: NodeId) -> bool {
        self.down
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&node_id)
    }

    /// Marks node `node_id` down, or up again.
    pub(super) fn set_down(
        &self,
        ctx: &mut ApplyContext,
        keyspace: &Keyspace,
        node_id: NodeId,
        down: bool,
    ) {
        let key = id_key(DOWN_KEY_PREFIX, node_id);
        let mut marked = self.down.write().unwrap_or_else(|e| e.into_inner());
        if down {
            ctx.put(keyspace, key, Vec::new());
            marked.insert(node_id);
        } else if marked.remove(&node_id) {
            ctx.delete(keyspace, key);
        }
    }

    /// How group `group_id` came to be; a group with no record (created
    /// before origins were recorded) was founded by its first replica.
    pub(super) fn origin(&self, group_id: GroupId) -> GroupOrigin {
        if let Some(origin) = self
            .origins
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&group_id)
        {
            return *origin;
        }
        GroupOrigin {
            founder: self
                .replicas(group_id)
                .into_iter()
                .min()
                .unwrap_or_default(),
            split_from: None,
        }
    }

    pub(super) fn set_origin(
        &self,
        ctx: &mut ApplyContext,
        keyspace: &Keyspace,
        group_id: GroupId,
        origin: GroupOrigin,
    ) -> Result<(), StorageError> {
        let bytes = postcard::to_stdvec(&origin).map_err(super::corrupt)?;
        ctx.put(keyspace, id_key(ORIGIN_KEY_PREFIX, group_id), bytes);
        self.origins
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(group_id, origin);
        Ok(())
    }

    /// Every registered node, by id.
    pub(super) fn nodes(&self) -> Vec<NodeRecord> {
        self.nodes
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// The nodes holding group `group_id`'s replicas. A group created before
    /// replicas were recorded (a single node's data) lives on the registered
    /// nodes (the first three).
    pub(super) fn replicas(&self, group_id: GroupId) -> Vec<NodeId> {
        if let Some(replicas) = self
            .replicas
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&group_id)
        {
            return replicas.clone();
        }
        self.nodes
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .take(REPLICATION_FACTOR)
            .copied()
            .collect()
    }

    /// Whether node `node_id` has registered.
    pub(super) fn is_registered(&self, node_id: NodeId) -> bool {
        self.nodes
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(&node_id)
    }

    /// Records group `group_id`'s replicas as `replicas` says them now, if
    /// no record does yet.
    pub(super) fn pin_replicas(
        &self,
        ctx: &mut ApplyContext,
        keyspace: &Keyspace,
        group_id: GroupId,
    ) -> Result<(), StorageError> {
        let recorded = self
            .replicas
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(&group_id);
        if recorded {
            return Ok(());
        }
        let replicas = self.replicas(group_id);
        if replicas.is_empty() {
            // No node registered yet: the first to register holds it.
            return Ok(());
        }
        self.set_replicas(ctx, keyspace, group_id, replicas)
    }

    pub(super) fn register(
        &self,
        ctx: &mut ApplyContext,
        keyspace: &Keyspace,
        node: NodeRecord,
    ) -> Result<(), StorageError> {
        let bytes = postcard::to_stdvec(&node).map_err(super::corrupt)?;
        ctx.put(keyspace, id_key(NODE_KEY_PREFIX, node.node_id), bytes);
        self.nodes
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(node.node_id, node);
        Ok(())
    }

    pub(super) fn set_replicas(
        &self,
        ctx: &mut ApplyContext,
        keyspace: &Keyspace,
        group_id: GroupId,
        replicas: Vec<NodeId>,
    ) -> Result<(), StorageError> {
        let bytes = postcard::to_stdvec(&replicas).map_err(super::corrupt)?;
        ctx.put(keyspace, id_key(REPLICAS_KEY_PREFIX, group_id), bytes);
        self.replicas
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(group_id, replicas);
        Ok(())
    }

    pub(super) fn forget_group(
        &self,
        ctx: &mut ApplyContext,
        keyspace: &Keyspace,
        group_id: GroupId,
    ) {
        ctx.delete(keyspace, id_key(REPLICAS_KEY_PREFIX, group_id));
        ctx.delete(keyspace, id_key(ORIGIN_KEY_PREFIX, group_id));
        self.replicas
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&group_id);
        self.origins
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&group_id);
    }

    /// Replicas for a new partition: three registered nodes over distinct
    /// zones, the least loaded first (fewer when fewer nodes registered).
    /// Nodes marked down or leaving are left out, unless every node is.
    pub(super) fn place_new(&self) -> Vec<NodeId> {
        let replicas = self.replicas.read().unwrap_or_else(|e| e.into_inner());
        let nodes = self.nodes.read().unwrap_or_else(|e| e.into_inner());
        let unavailable = |id: NodeId| self.is_down(id) || self.is_leaving(id);
        let none_available = nodes.keys().all(|id| unavailable(*id));
        let nodes: Vec<NodeInfo> = nodes
            .values()
            .filter(|node| none_available || !unavailable(node.node_id))
            .map(|node| NodeInfo {
                id: node.node_id,
                zone: node.zone.clone(),
                replica_count: replicas
                    .values()
                    .filter(|set| set.contains(&node.node_id))
                    .count(),
            })
            .collect();
        place_replicas(&nodes, REPLICATION_FACTOR)
    }
}
