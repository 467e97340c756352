//! DynamoDB data model shared by every Atoll crate: attribute values, the
//! exact decimal `Number`, items, size rules, row-key and record encodings.

#![warn(missing_docs)]

pub mod error;
pub mod keycodec;
pub mod number;
pub mod record;
pub mod size;
pub mod table;
pub mod value;

#[cfg(test)]
mod testing;

pub use error::{KeyCodecError, ModelError, NumberDecodeError, NumberError, RecordError};
pub use keycodec::{
    decode_row_key, encode_global_index_key, encode_local_index_key, encode_row_key,
    index_sort_prefix, local_index_entry_row_key, local_index_prefix, local_index_sort_prefix,
    partition_token, row_key_partition_part, row_key_prefix_for_partition, row_key_token,
};
pub use number::Number;
pub use record::{decode_item, encode_item};
pub use size::{
    MAX_ATTRIBUTE_NAME_BYTES, MAX_ITEM_SIZE_BYTES, MAX_NESTING_DEPTH, MAX_PARTITION_KEY_SIZE_BYTES,
    MAX_SORT_KEY_SIZE_BYTES, attribute_value_size_bytes, item_size_bytes,
};
pub use value::{AttributeValue, Item};
