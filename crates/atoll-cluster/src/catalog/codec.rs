//! How the catalog encodes what it keeps for good: table definitions (its
//! records) and its commands (its log, replayed after a restart and sent in
//! snapshots).
//!
//! Both gain fields as features arrive (indexes, streams, time to live,
//! backups), and a node must read what an older version wrote. postcard,
//! which writes them today, cannot: it knows no field names, so a record
//! that lacks a new field does not decode. JSON can: a field a record lacks
//! takes its default (`#[serde(default)]` on every field added from now
//! on). Every node reads both (JSON behind a two-byte mark) and writes
//! JSON; postcard is read into the shapes it was written in (`legacy`).

use serde::Serialize;
use serde::de::DeserializeOwned;

/// Starts every JSON encoding. It never starts a postcard one: postcard
/// begins a table definition with the varint length of its name, and these
/// two bytes would say 9,599 bytes (names are at most 255); it begins a
/// command with its variant's number, which is below 128.
const JSON_MARK: [u8; 2] = [0xFF, b'J'];

/// The catalog's encoding of `value`: JSON behind its mark. (Versions
/// before secondary indexes wrote postcard, and read only postcard; from
/// the version that added the first field with a default, the writer is
/// JSON, and postcard is read into the frozen shapes of `legacy`.)
pub(crate) fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, String> {
    encode_json(value)
}

/// The JSON encoding of `value`: the mark, then JSON.
pub(crate) fn encode_json<T: Serialize>(value: &T) -> Result<Vec<u8>, String> {
    let mut bytes = JSON_MARK.to_vec();
    serde_json::to_writer(&mut bytes, value).map_err(|e| e.to_string())?;
    Ok(bytes)
}

/// Reads what `encode_json` wrote (shapes that never had a postcard form).
pub(crate) fn decode_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    let json = bytes
        .strip_prefix(&JSON_MARK)
        .ok_or_else(|| "not the catalog's JSON encoding".to_string())?;
    serde_json::from_slice(json).map_err(|e| e.to_string())
}

/// Reads what `encode` wrote, or what an older version wrote in postcard
/// (as `Legacy`, the shape it had then).
pub(crate) fn decode<T, Legacy>(bytes: &[u8]) -> Result<T, String>
where
    T: DeserializeOwned,
    Legacy: DeserializeOwned + Into<T>,
{
    match bytes.strip_prefix(&JSON_MARK) {
        Some(json) => serde_json::from_slice(json).map_err(|e| e.to_string()),
        None => postcard::from_bytes::<Legacy>(bytes)
            .map(Into::into)
            .map_err(|e| e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    use atoll_model::table::{
        KeyAttribute, KeySchema, LocalIndex, Projection, ScalarType, TableDefinition,
    };

    use super::{decode, encode_json};
    use crate::catalog::CatalogCommand;
    use crate::catalog::legacy::{CatalogCommandV1, TableDefinitionV1};
    use crate::catalog::tests::definition;

    /// A record as a later version may grow it.
    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct Grown {
        name: String,
        #[serde(default)]
        added: Vec<u64>,
    }

    /// A record as written before the field was added.
    #[derive(Serialize)]
    struct Before {
        name: String,
    }

    #[test]
    fn a_record_written_before_a_field_was_added_reads_with_its_default() {
        let before = encode_json(&Before { name: "t".into() }).unwrap();
        let grown: Grown = decode::<Grown, Grown>(&before).unwrap();
        assert_eq!(
            grown,
            Grown {
                name: "t".into(),
                added: Vec::new()
            }
        );
    }

    #[test]
    fn definitions_and_commands_written_in_postcard_still_read() {
        let table = definition("orders");
        let legacy = postcard::to_stdvec(&TableDefinitionV1::from(&table)).unwrap();
        assert_eq!(
            decode::<TableDefinition, TableDefinitionV1>(&legacy).unwrap(),
            table
        );
        let command = CatalogCommandV1::CreateTableBy {
            definition: Box::new(TableDefinitionV1::from(&table)),
            proposer: 3,
        };
        let legacy = postcard::to_stdvec(&command).unwrap();
        let CatalogCommand::CreateTableBy {
            definition,
            proposer,
        } = decode::<CatalogCommand, CatalogCommandV1>(&legacy).unwrap()
        else {
            panic!("another command");
        };
        assert_eq!((*definition, proposer), (table, 3));
    }

    #[test]
    fn definitions_with_indexes_round_trip() {
        let mut table = definition("orders");
        table.local_indexes.push(LocalIndex {
            name: "by_date".into(),
            key_schema: KeySchema {
                partition_key: table.key_schema.partition_key.clone(),
                sort_key: Some(KeyAttribute {
                    name: "date".into(),
                    scalar_type: ScalarType::N,
                }),
            },
            projection: Projection::Include(vec!["total".into()]),
        });
        let bytes = super::encode(&table).unwrap();
        assert_eq!(
            decode::<TableDefinition, TableDefinitionV1>(&bytes).unwrap(),
            table
        );
    }

    #[test]
    fn definitions_round_trip_through_json_with_every_token() {
        let mut table = definition("orders");
        table
            .partitions
            .push(atoll_model::table::PartitionDefinition {
                group_id: 16,
                start_token: 0,
                end_token: u64::MAX,
            });
        let bytes = encode_json(&table).unwrap();
        assert!(bytes.starts_with(&[0xFF, b'J']));
        assert_eq!(
            decode::<TableDefinition, TableDefinitionV1>(&bytes).unwrap(),
            table
        );
    }
}
