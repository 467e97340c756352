//! Workloads: which operations in which proportions, and their request bodies.

/// The workloads `atoll bench run` knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Workload {
    /// YCSB A: 50% GetItem, 50% UpdateItem.
    A,
    /// YCSB B: 95% GetItem, 5% UpdateItem.
    B,
    /// YCSB C: 100% GetItem.
    C,
    /// YCSB D: 95% GetItem of recent items, 5% PutItem of new items.
    D,
    /// YCSB E: 95% short Query ranges, 5% PutItem of new items.
    E,
    /// YCSB F: 50% GetItem, 50% read-modify-write (GetItem then conditional UpdateItem).
    F,
    /// 100% PutItem.
    Write,
    /// 100% Query of one partition key (Limit 10).
    Query,
    /// 100% TransactWriteItems updating 2 items (neighbours by index, so
    /// in different partitions).
    Txn2,
    /// 100% TransactWriteItems updating 10 items.
    Txn10,
}

/// One operation of a workload.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Op {
    /// GetItem.
    Read,
    /// UpdateItem.
    Update,
    /// PutItem of a new or existing key.
    Insert,
    /// Query.
    Scan,
    /// GetItem then conditional UpdateItem.
    ReadModifyWrite,
    /// TransactWriteItems updating this many items.
    Transact(u8),
}

impl Op {
    /// Name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Op::Read => "read",
            Op::Update => "update",
            Op::Insert => "insert",
            Op::Scan => "query",
            Op::ReadModifyWrite => "rmw",
            Op::Transact(2) => "txn2",
            Op::Transact(10) => "txn10",
            Op::Transact(_) => "txn",
        }
    }
}

impl Workload {
    /// The next operation, drawn with the workload's proportions.
    pub fn next_op(self, rng: &mut fastrand::Rng) -> Op {
        let roll = rng.u32(0..100);
        match self {
            Workload::A => {
                if roll < 50 {
                    Op::Read
                } else {
                    Op::Update
                }
            }
            Workload::B => {
                if roll < 95 {
                    Op::Read
                } else {
                    Op::Update
                }
            }
            Workload::C => Op::Read,
            Workload::D => {
                if roll < 95 {
                    Op::Read
                } else {
                    Op::Insert
                }
            }
            Workload::E => {
                if roll < 95 {
                    Op::Scan
                } else {
                    Op::Insert
                }
            }
            Workload::F => {
                if roll < 50 {
                    Op::Read
                } else {
                    Op::ReadModifyWrite
                }
            }
            Workload::Write => Op::Insert,
            Workload::Query => Op::Scan,
            Workload::Txn2 => Op::Transact(2),
            Workload::Txn10 => Op::Transact(10),
        }
    }

    /// Whether keys should favour recent inserts.
    pub fn reads_latest(self) -> bool {
        matches!(self, Workload::D)
    }
}

/// The key space: item `i` lives at `pk = "p<i mod partitions>"`, `sk = "s<i>"`.
#[derive(Clone, Debug)]
pub struct KeySpace {
    /// Partition keys.
    pub partitions: u64,
}

impl KeySpace {
    /// The partition key of item `index`.
    pub fn partition_key(&self, index: u64) -> String {
        format!("p{}", index % self.partitions.max(1))
    }

    /// The sort key of item `index` (zero-padded, so sort order is index order).
    pub fn sort_key(&self, index: u64) -> String {
        format!("s{index:012}")
    }
}

/// Builds request bodies by splicing keys into prepared JSON text.
#[derive(Clone, Debug)]
pub struct Bodies {
    table: String,
    keys: KeySpace,
    payload: String,
    update_value: String,
}

impl Bodies {
    /// Bodies for `table`, items of about `item_size_bytes`.
    pub fn new(table: &str, keys: KeySpace, item_size_bytes: usize) -> Bodies {
        // The payload is a string attribute; the key attributes and the
        // attribute names make up the rest of the size.
        let payload_bytes = item_size_bytes.saturating_sub(40).max(1);
        Bodies {
            table: table.to_string(),
            keys,
            payload: "x".repeat(payload_bytes),
            update_value: "u".repeat(100),
        }
    }

    fn key_json(&self, index: u64) -> String {
        format!(
            r#"{{"pk":{{"S":"{}"}},"sk":{{"S":"{}"}}}}"#,
            self.keys.partition_key(index),
            self.keys.sort_key(index)
        )
    }

    fn item_json(&self, index: u64) -> String {
        format!(
            r#"{{"pk":{{"S":"{}"}},"sk":{{"S":"{}"}},"payload":{{"S":"{}"}},"f0":{{"S":"{}"}}}}"#,
            self.keys.partition_key(index),
            self.keys.sort_key(index),
            self.payload,
            self.update_value
        )
    }

    /// PutItem of item `index`.
    pub fn put(&self, index: u64) -> String {
        format!(
            r#"{{"TableName":"{}","Item":{}}}"#,
            self.table,
            self.item_json(index)
        )
    }

    /// BatchWriteItem putting items `indices` (at most 25, DynamoDB's limit).
    pub fn batch_put(&self, indices: std::ops::Range<u64>) -> String {
        let requests: Vec<String> = indices
            .map(|index| format!(r#"{{"PutRequest":{{"Item":{}}}}}"#, self.item_json(index)))
            .collect();
        format!(
            r#"{{"RequestItems":{{"{}":[{}]}}}}"#,
            self.table,
            requests.join(",")
        )
    }

    /// GetItem of item `index`.
    pub fn get(&self, index: u64) -> String {
        format!(
            r#"{{"TableName":"{}","Key":{}}}"#,
            self.table,
            self.key_json(index)
        )
    }

    /// UpdateItem of item `index`'s `f0` (100 bytes), optionally conditional on its value.
    pub fn update(&self, index: u64, conditional: bool) -> String {
        if conditional {
            format!(
                r#"{{"TableName":"{}","Key":{},"UpdateExpression":"SET f0 = :v","ConditionExpression":"attribute_exists(pk)","ExpressionAttributeValues":{{":v":{{"S":"{}"}}}}}}"#,
                self.table,
                self.key_json(index),
                self.update_value
            )
        } else {
            format!(
                r#"{{"TableName":"{}","Key":{},"UpdateExpression":"SET f0 = :v","ExpressionAttributeValues":{{":v":{{"S":"{}"}}}}}}"#,
                self.table,
                self.key_json(index),
                self.update_value
            )
        }
    }

    /// TransactWriteItems setting `f0` of `count` items from `index` on
    /// (wrapping at `items`), each a distinct item.
    pub fn transact(&self, index: u64, count: u8, items: u64) -> String {
        let updates: Vec<String> = (0..u64::from(count))
            .map(|offset| {
                let key = index.wrapping_add(offset) % items.max(1);
                format!(
                    r#"{{"Update":{{"TableName":"{}","Key":{},"UpdateExpression":"SET f0 = :v","ExpressionAttributeValues":{{":v":{{"S":"{}"}}}}}}}}"#,
                    self.table,
                    self.key_json(key),
                    self.update_value
                )
            })
            .collect();
        format!(r#"{{"TransactItems":[{}]}}"#, updates.join(","))
    }

    /// Query of up to `limit` items of item `index`'s partition, from its sort key on.
    pub fn query(&self, index: u64, limit: u32) -> String {
        format!(
            r#"{{"TableName":"{}","KeyConditionExpression":"pk = :p AND sk >= :s","ExpressionAttributeValues":{{":p":{{"S":"{}"}},":s":{{"S":"{}"}}}},"Limit":{limit}}}"#,
            self.table,
            self.keys.partition_key(index),
            self.keys.sort_key(index)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_json_and_items_have_about_the_asked_size() {
        let bodies = Bodies::new("t", KeySpace { partitions: 10 }, 1024);
        for body in [
            bodies.put(3),
            bodies.get(3),
            bodies.update(3, true),
            bodies.query(3, 5),
        ] {
            let value: serde_json::Value = serde_json::from_str(&body).expect("json");
            assert_eq!(value["TableName"], "t");
        }
        let transact: serde_json::Value =
            serde_json::from_str(&bodies.transact(9, 2, 10)).expect("json");
        let actions = transact["TransactItems"].as_array().expect("actions");
        assert_eq!(actions.len(), 2);
        assert_eq!(actions[1]["Update"]["Key"]["sk"]["S"], "s000000000000");
        let put: serde_json::Value = serde_json::from_str(&bodies.put(3)).expect("json");
        assert_eq!(put["Item"]["pk"]["S"], "p3");
        let payload = put["Item"]["payload"]["S"]
            .as_str()
            .unwrap_or_default()
            .len();
        assert!((900..1100).contains(&(payload + 100)), "{payload}");
    }

    #[test]
    fn batch_put_holds_one_put_request_per_index() {
        let bodies = Bodies::new("t", KeySpace { partitions: 10 }, 200);
        let batch: serde_json::Value =
            serde_json::from_str(&bodies.batch_put(20..45)).expect("json");
        let requests = batch["RequestItems"]["t"].as_array().expect("requests");
        assert_eq!(requests.len(), 25);
        let put: serde_json::Value = serde_json::from_str(&bodies.put(20)).expect("json");
        assert_eq!(requests[0]["PutRequest"]["Item"], put["Item"]);
    }
}
