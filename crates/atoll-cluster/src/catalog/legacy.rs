//! The catalog's shapes as postcard wrote them before table definitions
//! grew (secondary indexes, issue 14): the catalog's log and records of
//! earlier versions hold them, and nodes of the version before send them.
//!
//! postcard decodes only into the exact struct that wrote a value, so these
//! stay as they were, forever. Every shape added since is written in JSON
//! (see `codec`), where a missing field takes its default.

use atoll_model::table::{
    BillingMode, KeyAttribute, KeySchema, PartitionDefinition, StreamSettings, TableClass,
    TableDefinition, TableStatus, Throughput,
};
use serde::{Deserialize, Serialize};

use super::CatalogCommandOf;

/// `TableDefinition` before secondary indexes (field for field, in order).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct TableDefinitionV1 {
    name: String,
    table_id: String,
    region: String,
    key_schema: KeySchema,
    attribute_definitions: Vec<KeyAttribute>,
    billing_mode: BillingMode,
    throughput: Throughput,
    last_on_demand_switch_ms: Option<u64>,
    table_class: TableClass,
    deletion_protection: bool,
    stream: Option<StreamSettings>,
    tags: Vec<(String, String)>,
    created_ms: u64,
    status: TableStatus,
    keyspace: String,
    partitions: Vec<PartitionDefinition>,
}

/// A catalog command as postcard entries of earlier versions hold it.
pub(crate) type CatalogCommandV1 = CatalogCommandOf<TableDefinitionV1>;

impl From<TableDefinitionV1> for TableDefinition {
    fn from(v1: TableDefinitionV1) -> TableDefinition {
        TableDefinition {
            name: v1.name,
            table_id: v1.table_id,
            region: v1.region,
            key_schema: v1.key_schema,
            attribute_definitions: v1.attribute_definitions,
            billing_mode: v1.billing_mode,
            throughput: v1.throughput,
            last_on_demand_switch_ms: v1.last_on_demand_switch_ms,
            table_class: v1.table_class,
            deletion_protection: v1.deletion_protection,
            stream: v1.stream,
            tags: v1.tags,
            created_ms: v1.created_ms,
            status: v1.status,
            keyspace: v1.keyspace,
            partitions: v1.partitions,
            local_indexes: Vec::new(),
            global_indexes: Vec::new(),
            index_of: None,
            global_index_epoch: 0,
            stream_epoch: 0,
            stream_closed_ms: None,
            time_to_live: None,
            past_streams: Vec::new(),
        }
    }
}

impl From<&TableDefinition> for TableDefinitionV1 {
    /// What a node of the version before can be told of a table: all but
    /// what it does not know (it cannot serve the indexes anyway).
    fn from(table: &TableDefinition) -> TableDefinitionV1 {
        TableDefinitionV1 {
            name: table.name.clone(),
            table_id: table.table_id.clone(),
            region: table.region.clone(),
            key_schema: table.key_schema.clone(),
            attribute_definitions: table.attribute_definitions.clone(),
            billing_mode: table.billing_mode,
            throughput: table.throughput.clone(),
            last_on_demand_switch_ms: table.last_on_demand_switch_ms,
            table_class: table.table_class,
            deletion_protection: table.deletion_protection,
            stream: table.stream.clone(),
            tags: table.tags.clone(),
            created_ms: table.created_ms,
            status: table.status,
            keyspace: table.keyspace.clone(),
            partitions: table.partitions.clone(),
        }
    }
}

impl<D> CatalogCommandOf<D> {
    /// The same command over another shape of definition.
    pub(crate) fn map_definition<E>(self, convert: impl Fn(D) -> E) -> CatalogCommandOf<E> {
        use CatalogCommandOf as C;
        match self {
            C::CreateTable { definition } => C::CreateTable {
                definition: Box::new(convert(*definition)),
            },
            C::CreateTableBy {
                definition,
                proposer,
            } => C::CreateTableBy {
                definition: Box::new(convert(*definition)),
                proposer,
            },
            C::SetStatus {
                name,
                table_id,
                status,
            } => C::SetStatus {
                name,
                table_id,
                status,
            },
            C::UpdateTable {
                name,
                update,
                now_ms,
            } => C::UpdateTable {
                name,
                update,
                now_ms,
            },
            C::BeginDelete { name } => C::BeginDelete { name },
            C::DropTable { name, table_id } => C::DropTable { name, table_id },
            C::Tag { name, tags } => C::Tag { name, tags },
            C::Untag { name, keys } => C::Untag { name, keys },
            C::SplitPartition {
                name,
                table_id,
                group_id,
                at_token,
            } => C::SplitPartition {
                name,
                table_id,
                group_id,
                at_token,
            },
            C::RegisterNode { node } => C::RegisterNode { node },
            C::SplitPartitionBy {
                name,
                table_id,
                group_id,
                at_token,
                founder,
            } => C::SplitPartitionBy {
                name,
                table_id,
                group_id,
                at_token,
                founder,
            },
            C::SetReplicas { group_id, replicas } => C::SetReplicas { group_id, replicas },
            C::SetNodeDown { node_id, down } => C::SetNodeDown { node_id, down },
            C::SetNodeLeaving { node_id } => C::SetNodeLeaving { node_id },
            C::RemoveNode { node_id } => C::RemoveNode { node_id },
            C::AdmitNode {
                node_id,
                incarnation,
            } => C::AdmitNode {
                node_id,
                incarnation,
            },
            C::AddGlobalIndex {
                name,
                table_id,
                index,
            } => C::AddGlobalIndex {
                name,
                table_id,
                index,
            },
            C::SetGlobalIndexState {
                name,
                table_id,
                index,
                status,
                backfilling,
            } => C::SetGlobalIndexState {
                name,
                table_id,
                index,
                status,
                backfilling,
            },
            C::RemoveGlobalIndex {
                name,
                table_id,
                index,
            } => C::RemoveGlobalIndex {
                name,
                table_id,
                index,
            },
            C::UpdateTableAndIndexes {
                name,
                update,
                indexes,
                now_ms,
            } => C::UpdateTableAndIndexes {
                name,
                update,
                indexes,
                now_ms,
            },
            C::SetTimeToLive {
                name,
                attribute,
                enabled,
                now_ms,
            } => C::SetTimeToLive {
                name,
                attribute,
                enabled,
                now_ms,
            },
        }
    }
}

impl From<CatalogCommandV1> for super::CatalogCommand {
    fn from(v1: CatalogCommandV1) -> super::CatalogCommand {
        v1.map_definition(TableDefinition::from)
    }
}
