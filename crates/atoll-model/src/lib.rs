//! DynamoDB data model shared by every Atoll crate.
