//! Catalog changes of tables: creation, settings, status, tags, splits
//! and deletion.

use atoll_model::table::{
    BillingMode, PartitionDefinition, TableDefinition, TableStatus, Throughput,
};
use atoll_replication::ApplyContext;
use atoll_storage::StorageError;

use super::commands::IndexThroughputUpdate;
use super::{
    CatalogOutcome, CatalogStateMachine, GroupOrigin, MAX_TAGS, NEXT_GROUP_ID_KEY, Rejection,
    TableUpdate, table_key,
};

impl CatalogStateMachine {
    /// Sets the status of table `name`, if it is still the one `table_id` names.
    pub(super) fn set_status(
        &self,
        ctx: &mut ApplyContext,
        name: &str,
        table_id: &str,
        status: TableStatus,
    ) -> Result<CatalogOutcome, StorageError> {
        match self.table(name) {
            Some(t) if t.table_id == table_id => {
                let mut definition = (*t).clone();
                definition.status = status;
                Ok(Ok(Some(self.store(ctx, definition)?)))
            }
            _ => Ok(Err(Rejection::NotFound)),
        }
    }

    /// Applies an UpdateTable to an ACTIVE table.
    pub(super) fn update_table(
        &self,
        ctx: &mut ApplyContext,
        name: &str,
        update: &TableUpdate,
        indexes: &[IndexThroughputUpdate],
        now_ms: u64,
    ) -> Result<CatalogOutcome, StorageError> {
        let current = match self.active(name) {
            Ok(t) => t,
            Err(r) => return Ok(Err(r)),
        };
        match apply_update(&current, update, indexes, now_ms) {
            Ok(updated) => Ok(Ok(Some(self.store(ctx, updated)?))),
            Err(r) => Ok(Err(r)),
        }
    }

    /// Sets an ACTIVE table's Time to Live.
    pub(super) fn set_time_to_live(
        &self,
        ctx: &mut ApplyContext,
        name: &str,
        (attribute, enabled): (String, bool),
        now_ms: u64,
    ) -> Result<CatalogOutcome, StorageError> {
        let current = match self.active(name) {
            Ok(t) => t,
            Err(r) => return Ok(Err(r)),
        };
        let mut next = (*current).clone();
        next.time_to_live = Some(atoll_model::table::TimeToLive {
            attribute,
            enabled,
            changed_ms: now_ms,
        });
        Ok(Ok(Some(self.store(ctx, next)?)))
    }

    /// Marks an ACTIVE, unprotected table DELETING.
    pub(super) fn begin_delete(
        &self,
        ctx: &mut ApplyContext,
        name: &str,
    ) -> Result<CatalogOutcome, StorageError> {
        let current = match self.table(name) {
            None => return Ok(Err(Rejection::NotFound)),
            Some(t) if t.status == TableStatus::Deleting => {
                return Ok(Err(Rejection::NotFound));
            }
            Some(t) if t.status != TableStatus::Active => return Ok(Err(Rejection::InUse)),
            Some(t) => t,
        };
        if current.deletion_protection {
            return Ok(Err(Rejection::DeletionProtected));
        }
        let mut definition = (*current).clone();
        definition.status = TableStatus::Deleting;
        Ok(Ok(Some(self.store(ctx, definition)?)))
    }

    /// Forgets table `name` and its partitions' placements, if it is still
    /// the one `table_id` names (dropping twice is harmless).
    pub(super) fn drop_table(&self, ctx: &mut ApplyContext, name: &str, table_id: &str) {
        let mut tables = self.tables.write().unwrap_or_else(|e| e.into_inner());
        if tables.get(name).is_some_and(|t| t.table_id == table_id) {
            if let Some(dropped) = tables.remove(name) {
                for partition in &dropped.partitions {
                    self.placements
                        .forget_group(ctx, &self.keyspace, partition.group_id);
                }
            }
            ctx.delete(&self.keyspace, table_key(name));
        }
    }

    /// Adds or overwrites tags, up to `MAX_TAGS`.
    pub(super) fn tag(
        &self,
        ctx: &mut ApplyContext,
        name: &str,
        tags: Vec<(String, String)>,
    ) -> Result<CatalogOutcome, StorageError> {
        let current = match self.table(name) {
            Some(t) if t.status != TableStatus::Deleting => t,
            _ => return Ok(Err(Rejection::NotFound)),
        };
        let mut definition = (*current).clone();
        for (key, value) in tags {
            match definition.tags.iter_mut().find(|(k, _)| *k == key) {
                Some(existing) => existing.1 = value,
                None => definition.tags.push((key, value)),
            }
        }
        if definition.tags.len() > MAX_TAGS {
            return Ok(Err(Rejection::TooManyTags));
        }
        Ok(Ok(Some(self.store(ctx, definition)?)))
    }

    /// Removes tags.
    pub(super) fn untag(
        &self,
        ctx: &mut ApplyContext,
        name: &str,
        keys: &[String],
    ) -> Result<CatalogOutcome, StorageError> {
        let current = match self.table(name) {
            Some(t) if t.status != TableStatus::Deleting => t,
            _ => return Ok(Err(Rejection::NotFound)),
        };
        let mut definition = (*current).clone();
        definition.tags.retain(|(k, _)| !keys.contains(k));
        Ok(Ok(Some(self.store(ctx, definition)?)))
    }

    /// Creates a table with one partition placed on new replicas. Its
    /// founder (usually its first leader) is `proposer` when that is one of
    /// them, otherwise one rotating over the replicas by group id, which
    /// spreads leaderships (leadership balancing evens them out later).
    pub(super) fn create_table(
        &self,
        ctx: &mut ApplyContext,
        mut definition: TableDefinition,
        proposer: Option<u64>,
    ) -> Result<CatalogOutcome, StorageError> {
        if self.table(&definition.name).is_some() {
            return Ok(Err(Rejection::Exists));
        }
        let group_id = self.allocate_group_id(ctx);
        let replicas = self.placements.place_new();
        let founder = match proposer {
            Some(node) if replicas.contains(&node) => node,
            _ => replicas
                .get(group_id as usize % replicas.len().max(1))
                .copied()
                .unwrap_or_default(),
        };
        self.placements
            .set_replicas(ctx, &self.keyspace, group_id, replicas)?;
        let origin = GroupOrigin {
            founder,
            split_from: None,
        };
        self.placements
            .set_origin(ctx, &self.keyspace, group_id, origin)?;
        definition.partitions = vec![PartitionDefinition {
            group_id,
            start_token: 0,
            end_token: u64::MAX,
        }];
        definition.status = TableStatus::Creating;
        // A table created with a stream has its first stream change.
        definition.stream_epoch = u64::from(definition.stream.as_ref().is_some_and(|s| s.enabled));
        Ok(Ok(Some(self.store(ctx, definition)?)))
    }

    /// Records that partition `group_id` gave tokens `at_token..` to a new
    /// partition founded by `founder`. Recording it again changes nothing.
    pub(super) fn split(
        &self,
        ctx: &mut ApplyContext,
        name: String,
        table_id: String,
        group_id: u64,
        at_token: u64,
        founder: u64,
    ) -> Result<CatalogOutcome, StorageError> {
        {
            let current = match self.table(&name) {
                Some(t) if t.table_id == table_id => t,
                _ => return Ok(Err(Rejection::NotFound)),
            };
            let already = current
                .partitions
                .iter()
                .any(|p| p.start_token == at_token && p.group_id != group_id);
            if already {
                return Ok(Ok(Some(current)));
            }
            let Some(at) = current.partitions.iter().position(|p| {
                p.group_id == group_id && p.start_token < at_token && at_token <= p.end_token
            }) else {
                return Ok(Err(Rejection::NotFound));
            };
            let mut definition = (*current).clone();
            let new_group_id = self.allocate_group_id(ctx);
            let Some(old) = definition.partitions.get_mut(at) else {
                return Ok(Err(Rejection::NotFound));
            };
            let upper = PartitionDefinition {
                group_id: new_group_id,
                start_token: at_token,
                end_token: old.end_token,
            };
            old.end_token = at_token - 1;
            definition.partitions.insert(at + 1, upper);
            // The new partition starts on its parent's copies of the items.
            let replicas = self.placements.replicas(group_id);
            self.placements
                .set_replicas(ctx, &self.keyspace, new_group_id, replicas)?;
            let origin = GroupOrigin {
                founder,
                split_from: Some(group_id),
            };
            self.placements
                .set_origin(ctx, &self.keyspace, new_group_id, origin)?;
            Ok(Ok(Some(self.store(ctx, definition)?)))
        }
    }

    pub(super) fn allocate_group_id(&self, ctx: &mut ApplyContext) -> u64 {
        let mut next = self
            .next_group_id
            .write()
            .unwrap_or_else(|e| e.into_inner());
        let id = *next;
        *next += 1;
        ctx.put(
            &self.keyspace,
            NEXT_GROUP_ID_KEY.to_vec(),
            next.to_be_bytes().to_vec(),
        );
        id
    }
}

/// Computes the definition after `update` and the indexes' throughput
/// changes, with DynamoDB's bookkeeping of capacity changes.
fn apply_update(
    current: &TableDefinition,
    update: &TableUpdate,
    indexes: &[IndexThroughputUpdate],
    now_ms: u64,
) -> Result<TableDefinition, Rejection> {
    let mut next = current.clone();
    let switching_mode = update
        .billing_mode
        .is_some_and(|mode| mode != current.billing_mode);
    if let Some(mode) = update.billing_mode {
        next.billing_mode = mode;
        if switching_mode && mode == BillingMode::PayPerRequest {
            next.throughput.read_capacity_units = 0;
            next.throughput.write_capacity_units = 0;
            for index in &mut next.global_indexes {
                index.throughput.read_capacity_units = 0;
                index.throughput.write_capacity_units = 0;
            }
            next.last_on_demand_switch_ms = Some(now_ms);
        }
        // A table created on demand has been on demand since its creation;
        // DynamoDB still dates that after it moves to provisioned.
        if switching_mode && mode == BillingMode::Provisioned {
            next.last_on_demand_switch_ms = current
                .last_on_demand_switch_ms
                .or(Some(current.created_ms));
        }
    }
    if let Some((read, write)) = update.throughput {
        let unchanged = read == current.throughput.read_capacity_units
            && write == current.throughput.write_capacity_units;
        if !switching_mode && unchanged {
            return Err(Rejection::ThroughputUnchanged);
        }
        change_throughput(&mut next.throughput, (read, write), now_ms, switching_mode);
    }
    for change in indexes {
        let Some(index) = next
            .global_indexes
            .iter_mut()
            .find(|i| i.name == change.index)
        else {
            return Err(Rejection::IndexNotFound);
        };
        let wanted = (change.read, change.write);
        change_throughput(&mut index.throughput, wanted, now_ms, switching_mode);
    }
    if let Some(protection) = update.deletion_protection {
        next.deletion_protection = protection;
    }
    if let Some(class) = update.table_class {
        next.table_class = class;
    }
    if let Some(stream) = &update.stream {
        // A stream turned on again is a new stream: the last one, off
        // since, stays readable until its retention ends.
        if let Some(previous) = &current.stream
            && stream.enabled
            && !previous.enabled
            && let Some(label) = &previous.label
        {
            next.past_streams.push(atoll_model::table::PastStream {
                label: label.clone(),
                view_type: previous.view_type.clone().unwrap_or_default(),
                closed_ms: current.stream_closed_ms.unwrap_or(now_ms),
            });
        }
        next.stream_closed_ms = (!stream.enabled).then_some(now_ms);
        next.stream = Some(stream.clone());
        next.stream_epoch += 1;
    }
    Ok(next)
}

/// Sets provisioned throughput, dating the increase or decrease (a switch
/// of billing mode is neither: DynamoDB does not count it).
fn change_throughput(
    throughput: &mut Throughput,
    (read, write): (u64, u64),
    now_ms: u64,
    switching_mode: bool,
) {
    let (old_read, old_write) = (
        throughput.read_capacity_units,
        throughput.write_capacity_units,
    );
    if read > old_read || write > old_write {
        throughput.last_increase_ms = Some(now_ms);
    }
    if (read < old_read || write < old_write) && !switching_mode {
        throughput.last_decrease_ms = Some(now_ms);
        throughput.decreases_today += 1;
    }
    throughput.read_capacity_units = read;
    throughput.write_capacity_units = write;
}
