//! How the catalog encodes what it keeps for good: table definitions (its
//! records) and its commands (its log, replayed after a restart and sent in
//! snapshots).
//!
//! Both gain fields as features arrive (indexes, streams, time to live,
//! backups), and a node must read what an older version wrote. postcard,
//! which writes them today, cannot: it knows no field names, so a record
//! that lacks a new field does not decode. JSON can: a field a record lacks
//! takes its default (`#[serde(default)]` on every field added from now
//! on). Every node reads both (JSON behind a two-byte mark); see
//! `WRITES_JSON` for when the writer switches.

use serde::Serialize;
use serde::de::DeserializeOwned;

/// Starts every JSON encoding. It never starts a postcard one: postcard
/// begins a table definition with the varint length of its name, and these
/// two bytes would say 9,599 bytes (names are at most 255); it begins a
/// command with its variant's number, which is below 128.
const JSON_MARK: [u8; 2] = [0xFF, b'J'];

/// Whether the catalog writes JSON yet. Readers come first: every node of
/// this version reads both encodings, but a node of the version before
/// reads postcard only, and during a rolling upgrade it still applies the
/// catalog's log. So the writer switches to JSON in the change that adds
/// the first field with a default, one version after this one.
///
/// That change must also freeze today's shapes for the postcard reader:
/// postcard decodes a record only into the exact struct that wrote it, so
/// `decode` then reads postcard into frozen copies (a `TableDefinition`
/// and a `CatalogCommand` as they are now, nested types included) and
/// converts them, rather than into the grown types.
const WRITES_JSON: bool = false;

/// The catalog's encoding of `value` (see `WRITES_JSON`).
pub(crate) fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, String> {
    if WRITES_JSON {
        encode_json(value)
    } else {
        postcard::to_stdvec(value).map_err(|e| e.to_string())
    }
}

/// The JSON encoding of `value`: the mark, then JSON.
pub(crate) fn encode_json<T: Serialize>(value: &T) -> Result<Vec<u8>, String> {
    let mut bytes = JSON_MARK.to_vec();
    serde_json::to_writer(&mut bytes, value).map_err(|e| e.to_string())?;
    Ok(bytes)
}

/// Reads what `encode` wrote, or what an older version wrote in postcard.
pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    match bytes.strip_prefix(&JSON_MARK) {
        Some(json) => serde_json::from_slice(json).map_err(|e| e.to_string()),
        None => postcard::from_bytes(bytes).map_err(|e| e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    use super::{decode, encode_json};
    use crate::catalog::CatalogCommand;
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
        let grown: Grown = decode(&before).unwrap();
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
        let legacy = postcard::to_stdvec(&table).unwrap();
        assert_eq!(
            decode::<atoll_model::table::TableDefinition>(&legacy).unwrap(),
            table
        );
        let command = CatalogCommand::CreateTableBy {
            definition: Box::new(table.clone()),
            proposer: 3,
        };
        let legacy = postcard::to_stdvec(&command).unwrap();
        let CatalogCommand::CreateTableBy {
            definition,
            proposer,
        } = decode(&legacy).unwrap()
        else {
            panic!("another command");
        };
        assert_eq!((*definition, proposer), (table, 3));
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
            decode::<atoll_model::table::TableDefinition>(&bytes).unwrap(),
            table
        );
    }
}
