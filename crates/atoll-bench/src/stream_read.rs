//! `atoll bench stream-read`: one consumer reading a table's whole stream,
//! every shard from its start, parents before children, with GetRecords
//! of up to 1,000 records, as a Streams consumer (KCL, Lambda) does.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::BenchError;
use crate::client::{Connection, Reply};
use crate::runner::Target;

/// What one read of the whole stream took.
pub struct StreamReadReport {
    records: u64,
    calls: u64,
    shards: usize,
    elapsed: Duration,
}

impl StreamReadReport {
    /// The report as a line for people.
    pub fn text(&self) -> String {
        format!(
            "stream-read: {} records from {} shards in {} GetRecords calls, {:.2} s: {:.0} records/s, {:.0} calls/s",
            self.records,
            self.shards,
            self.calls,
            self.elapsed.as_secs_f64(),
            self.records_per_second(),
            self.calls as f64 / self.elapsed.as_secs_f64().max(1e-9)
        )
    }

    /// The report as one JSON line.
    pub fn json(&self) -> String {
        json!({
            "records": self.records,
            "calls": self.calls,
            "shards": self.shards,
            "seconds": self.elapsed.as_secs_f64(),
            "records_per_sec": self.records_per_second(),
        })
        .to_string()
    }

    fn records_per_second(&self) -> f64 {
        self.records as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

fn answer(reply: Reply, what: &str) -> Result<Value, BenchError> {
    if reply.status != 200 {
        return Err(BenchError::Request(format!(
            "{what} failed: {}",
            String::from_utf8_lossy(&reply.body)
        )));
    }
    serde_json::from_slice(&reply.body).map_err(|e| BenchError::Request(format!("{what}: {e}")))
}

/// Reads the table's latest stream to its current end.
pub async fn read_stream(target: &Target) -> Result<StreamReadReport, BenchError> {
    let mut connection = target.connection().await?;
    let table = answer(
        connection
            .call(
                "DescribeTable",
                json!({"TableName": target.table}).to_string(),
            )
            .await?,
        "DescribeTable",
    )?;
    let Some(arn) = table["Table"]["LatestStreamArn"]
        .as_str()
        .map(str::to_string)
    else {
        return Err(BenchError::Usage(format!(
            "table {} has no stream",
            target.table
        )));
    };
    let shards = describe_shards(&mut connection, &arn).await?;
    let started = Instant::now();
    let (mut records, mut calls) = (0u64, 0u64);
    let mut done: BTreeSet<String> = BTreeSet::new();
    // Parents before children: a shard is read once its parent was.
    while done.len() < shards.len() {
        let ready: Vec<&(String, Option<String>)> = shards
            .iter()
            .filter(|(id, parent)| {
                !done.contains(id)
                    && parent
                        .as_ref()
                        .is_none_or(|p| done.contains(p) || !shards.iter().any(|(s, _)| s == p))
            })
            .collect();
        if ready.is_empty() {
            break;
        }
        for (id, _) in ready {
            let (read, made) = read_shard(&mut connection, &arn, id).await?;
            records += read;
            calls += made;
            done.insert(id.clone());
        }
    }
    Ok(StreamReadReport {
        records,
        calls,
        shards: shards.len(),
        elapsed: started.elapsed(),
    })
}

/// Every shard of the stream: its id and parent.
async fn describe_shards(
    connection: &mut Connection,
    arn: &str,
) -> Result<Vec<(String, Option<String>)>, BenchError> {
    let mut shards = Vec::new();
    let mut start: Option<String> = None;
    loop {
        let mut body = json!({"StreamArn": arn});
        if let Some(start) = &start {
            body["ExclusiveStartShardId"] = json!(start);
        }
        let reply = connection
            .call_streams("DescribeStream", body.to_string())
            .await?;
        let described = answer(reply, "DescribeStream")?;
        let description = &described["StreamDescription"];
        for shard in description["Shards"].as_array().into_iter().flatten() {
            if let Some(id) = shard["ShardId"].as_str() {
                let parent = shard["ParentShardId"].as_str().map(str::to_string);
                shards.push((id.to_string(), parent));
            }
        }
        match description["LastEvaluatedShardId"].as_str() {
            Some(last) => start = Some(last.to_string()),
            None => return Ok(shards),
        }
    }
}

/// Reads one shard from its start until it ends or has nothing more;
/// returns the records read and the GetRecords calls made.
async fn read_shard(
    connection: &mut Connection,
    arn: &str,
    shard: &str,
) -> Result<(u64, u64), BenchError> {
    let body = json!({"StreamArn": arn, "ShardId": shard, "ShardIteratorType": "TRIM_HORIZON"});
    let reply = connection
        .call_streams("GetShardIterator", body.to_string())
        .await?;
    let mut iterator = answer(reply, "GetShardIterator")?["ShardIterator"]
        .as_str()
        .map(str::to_string);
    let (mut records, mut calls) = (0u64, 0u64);
    while let Some(current) = iterator {
        let body = json!({"ShardIterator": current, "Limit": 1000});
        let reply = connection
            .call_streams("GetRecords", body.to_string())
            .await?;
        calls += 1;
        let page = answer(reply, "GetRecords")?;
        let read = page["Records"].as_array().map_or(0, Vec::len) as u64;
        records += read;
        if read == 0 {
            break; // an open shard read to its current end
        }
        iterator = page["NextShardIterator"].as_str().map(str::to_string);
    }
    Ok((records, calls))
}
