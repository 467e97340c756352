//! Helpers shared by the cluster crate's integration tests.
#![allow(dead_code)]

use atoll_model::table::{
    BillingMode, KeyAttribute, KeySchema, ScalarType, TableClass, TableDefinition, TableStatus,
    Throughput,
};

/// A CREATING table `name` with a string partition key `pk`, as CreateTable
/// hands it to the cluster.
pub fn definition(name: &str) -> TableDefinition {
    let pk = KeyAttribute {
        name: "pk".into(),
        scalar_type: ScalarType::S,
    };
    TableDefinition {
        name: name.into(),
        table_id: String::new(),
        region: "us-east-1".into(),
        key_schema: KeySchema {
            partition_key: pk.clone(),
            sort_key: None,
        },
        attribute_definitions: vec![pk],
        billing_mode: BillingMode::Provisioned,
        throughput: Throughput {
            read_capacity_units: 5,
            write_capacity_units: 5,
            ..Throughput::default()
        },
        last_on_demand_switch_ms: None,
        table_class: TableClass::Standard,
        deletion_protection: false,
        stream: None,
        tags: Vec::new(),
        created_ms: 0,
        status: TableStatus::Creating,
        keyspace: String::new(),
        partitions: Vec::new(),
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
