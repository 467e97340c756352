//! Settings of `atoll serve`: command-line flags, then environment variables,
//! then the TOML config file, then defaults.

use std::path::{Path, PathBuf};

use clap::Args;
use serde::Deserialize;

/// Flags of `atoll serve` (each also settable by its environment variable).
#[derive(Args, Debug, Default)]
pub struct ServeArgs {
    /// TOML file with any of the settings below (flags and environment win).
    #[arg(long, env = "ATOLL_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Address and port of the DynamoDB API [default: 0.0.0.0:8000].
    #[arg(long, env = "ATOLL_LISTEN", value_name = "ADDR:PORT")]
    pub listen: Option<String>,
    /// Directory holding the node's data [default: ./atoll-data].
    #[arg(long, env = "ATOLL_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Region the health check names and unsigned defaults use [default: us-east-1].
    #[arg(long, env = "ATOLL_REGION")]
    pub region: Option<String>,
    /// Log filter, e.g. `info` or `atoll=debug` [default: info].
    #[arg(long, env = "ATOLL_LOG_LEVEL", value_name = "FILTER")]
    pub log_level: Option<String>,
    /// Log line format: `text` for people, `json` (one object a line, with
    /// the span fields such as `request_id`) for log collectors [default: text].
    #[arg(long, env = "ATOLL_LOG_FORMAT", value_name = "FORMAT")]
    pub log_format: Option<String>,
    /// This node's id, stable across restarts [default: 1].
    #[arg(long, env = "ATOLL_NODE_ID")]
    pub node_id: Option<u64>,
    /// Wording of validation errors: `current` (DynamoDB regions that run its
    /// 2026 validation layer) or `classic` (the others) [default: current].
    #[arg(long, env = "ATOLL_MESSAGE_STYLE", value_name = "STYLE")]
    pub message_style: Option<String>,
    /// A partition whose items pass this many bytes splits in two
    /// [default: 10737418240, DynamoDB's 10 GB].
    #[arg(long, env = "ATOLL_PARTITION_SPLIT_BYTES", value_name = "BYTES")]
    pub partition_split_bytes: Option<u64>,
    /// Milliseconds between checks of partition sizes and request rates [default: 1000].
    #[arg(long, env = "ATOLL_PARTITION_CHECK_MS", value_name = "MS")]
    pub partition_check_ms: Option<u64>,
    /// A partition whose requests stay above this many per second for five
    /// checks in a row splits for load; 0 turns that off [default: 3000].
    #[arg(long, env = "ATOLL_PARTITION_SPLIT_OPS", value_name = "OPS")]
    pub partition_split_ops: Option<u64>,
    /// Address and port of the inter-node port (Raft and forwarded
    /// requests); needed with `--peers`.
    #[arg(long, env = "ATOLL_CLUSTER_LISTEN", value_name = "ADDR:PORT")]
    pub cluster_listen: Option<String>,
    /// Where other nodes reach this node's inter-node port
    /// [default: the `--cluster-listen` address].
    #[arg(long, env = "ATOLL_ADVERTISE", value_name = "HOST:PORT")]
    pub advertise: Option<String>,
    /// The nodes forming the cluster, this one among them, as
    /// `ID=HOST:PORT,...` (their inter-node ports). Without it the node runs alone.
    #[arg(long, env = "ATOLL_PEERS", value_name = "ID=HOST:PORT,...")]
    pub peers: Option<String>,
    /// Joins the running cluster that the node at this inter-node address
    /// belongs to (on the first start; later starts rejoin by themselves).
    /// An alternative to `--peers`; needs `--cluster-listen`.
    #[arg(long, env = "ATOLL_JOIN", value_name = "HOST:PORT")]
    pub join: Option<String>,
    /// This node's availability zone; replicas of a partition go to distinct zones.
    #[arg(long, env = "ATOLL_ZONE")]
    pub zone: Option<String>,
    /// A node whose replicas stay silent this long is taken for dead and
    /// its replicas are rebuilt on other nodes [default: 60000].
    #[arg(long, env = "ATOLL_DEAD_NODE_AFTER_MS", value_name = "MS")]
    pub dead_node_after_ms: Option<u64>,
    /// Largest item collection (one partition key's items and their local
    /// index entries) of a table with local secondary indexes; DynamoDB's
    /// 10 GB by default. For tests; every node of a cluster must agree.
    #[arg(long, env = "ATOLL_ITEM_COLLECTION_LIMIT_BYTES", value_name = "BYTES")]
    pub item_collection_limit_bytes: Option<u64>,
    /// Most global secondary indexes a table may have [default: 20, DynamoDB's].
    #[arg(long, env = "ATOLL_MAX_GLOBAL_INDEXES", value_name = "N")]
    pub max_global_indexes: Option<usize>,
    /// The twelve-digit account id in ARNs; an ARN naming another account
    /// is denied, as DynamoDB does. Every node of a cluster must agree
    /// [default: 123456789012].
    #[arg(long, env = "ATOLL_ACCOUNT_ID", value_name = "DIGITS")]
    pub account_id: Option<String>,
    /// Least time between two changes of a table's Time to Live
    /// [default: 3600000, DynamoDB's hour].
    #[arg(long, env = "ATOLL_TTL_CHANGE_INTERVAL_MS", value_name = "MS")]
    pub ttl_change_interval_ms: Option<u64>,
    /// How often each partition's leader looks for expired items (it
    /// deletes them through the log) [default: 10000].
    #[arg(long, env = "ATOLL_TTL_SWEEP_INTERVAL_MS", value_name = "MS")]
    pub ttl_sweep_interval_ms: Option<u64>,
    /// How long stream records are kept, and a stream turned off stays
    /// readable [default: 86400000, DynamoDB's 24 hours].
    #[arg(long, env = "ATOLL_STREAM_RETENTION_MS", value_name = "MS")]
    pub stream_retention_ms: Option<u64>,
    /// How long a transaction's coordinator may be silent before the
    /// items it holds are finished from the transaction ledger by their
    /// partitions' leaders [default: 5000].
    #[arg(long, env = "ATOLL_TRANSACTION_RECOVERY_MS", value_name = "MS")]
    pub transaction_recovery_ms: Option<u64>,
    /// `required`: every request must be signed (SigV4) with a known access
    /// key; `open`: any credentials are accepted. Open by default while no
    /// access key is configured; any key makes it required.
    #[arg(long, env = "ATOLL_AUTH", value_name = "open|required")]
    pub auth: Option<String>,
    /// An access key requests may be signed with, `ID:SECRET` (repeat the
    /// flag, or separate keys with commas in ATOLL_ACCESS_KEYS; a flag's
    /// secret shows in the process list, the environment's or a file's does not).
    #[arg(
        long = "access-key",
        env = "ATOLL_ACCESS_KEYS",
        value_name = "ID:SECRET",
        value_delimiter = ','
    )]
    pub access_keys: Vec<String>,
    /// A file of access keys, one `ID:SECRET` per line (`#` starts a comment).
    #[arg(long, env = "ATOLL_ACCESS_KEYS_FILE", value_name = "FILE")]
    pub access_keys_file: Option<PathBuf>,
}

/// The settings file.
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<String>,
    data_dir: Option<PathBuf>,
    region: Option<String>,
    log_level: Option<String>,
    log_format: Option<String>,
    node_id: Option<u64>,
    message_style: Option<String>,
    partition_split_bytes: Option<u64>,
    partition_check_ms: Option<u64>,
    partition_split_ops: Option<u64>,
    cluster_listen: Option<String>,
    advertise: Option<String>,
    peers: Option<String>,
    join: Option<String>,
    zone: Option<String>,
    dead_node_after_ms: Option<u64>,
    item_collection_limit_bytes: Option<u64>,
    max_global_indexes: Option<usize>,
    account_id: Option<String>,
    ttl_change_interval_ms: Option<u64>,
    ttl_sweep_interval_ms: Option<u64>,
    stream_retention_ms: Option<u64>,
    transaction_recovery_ms: Option<u64>,
    auth: Option<String>,
    access_keys: Option<Vec<String>>,
    access_keys_file: Option<PathBuf>,
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object a line.
    Json,
}

/// Resolved settings.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// API address.
    pub listen: String,
    /// Data directory.
    pub data_dir: PathBuf,
    /// Default region.
    pub region: String,
    /// Log filter.
    pub log_level: String,
    /// Log line format.
    pub log_format: LogFormat,
    /// Node id.
    pub node_id: u64,
    /// Wording of validation errors.
    pub message_style: atoll_api::MessageStyle,
    /// Partition size that triggers a split.
    pub partition_split_bytes: u64,
    /// Interval between partition size checks.
    pub partition_check_ms: u64,
    /// Request rate over which a partition splits for load (0: off).
    pub partition_split_ops: u64,
    /// Inter-node port, when the node takes part in a cluster.
    pub cluster_listen: Option<String>,
    /// Where peers reach this node's inter-node port.
    pub advertise: Option<String>,
    /// Members of the cluster by id (empty: a single node).
    pub peers: std::collections::BTreeMap<u64, String>,
    /// A member of a running cluster to join.
    pub join: Option<String>,
    /// Availability zone.
    pub zone: Option<String>,
    /// Silence after which a node's replicas are rebuilt elsewhere.
    pub dead_node_after_ms: u64,
    /// Largest item collection of a table with local indexes.
    pub item_collection_limit_bytes: u64,
    /// Most global secondary indexes per table.
    pub max_global_indexes: usize,
    /// The account id in ARNs.
    pub account_id: String,
    /// Least time between two Time to Live changes of a table.
    pub ttl_change_interval_ms: u64,
    /// Time between two looks for expired items.
    pub ttl_sweep_interval_ms: u64,
    /// How long stream records are kept.
    pub stream_retention_ms: u64,
    /// How long a silent transaction coordinator is waited for.
    pub transaction_recovery_ms: u64,
    /// Whether every request must be signed with a known key.
    pub auth_required: bool,
    /// The access keys, as (id, secret).
    pub access_keys: Vec<(String, String)>,
}

/// Errors reading the configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A setting has a value it cannot take.
    #[error("invalid {setting}: {value:?} (expected {expected})")]
    Invalid {
        /// The setting.
        setting: &'static str,
        /// The value given.
        value: String,
        /// What it may be.
        expected: &'static str,
    },
    /// The config file is not valid TOML for these settings.
    #[error("invalid config file {path}: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// Why.
        source: toml::de::Error,
    },
}

fn read_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    toml::from_str(&text).map_err(|source| ConfigError::Parse {
        path: path.to_path_buf(),
        source,
    })
}

impl ServeArgs {
    /// Merges flags/environment over the config file over defaults.
    pub fn resolve(self) -> Result<ServeConfig, ConfigError> {
        let file = match &self.config {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };
        let node_id = self.node_id.or(file.node_id).unwrap_or(1);
        let peers = match self.peers.or(file.peers) {
            Some(list) => parse_peers(&list)?,
            None => std::collections::BTreeMap::new(),
        };
        let cluster_listen = self.cluster_listen.or(file.cluster_listen);
        if !peers.is_empty() && (!peers.contains_key(&node_id) || cluster_listen.is_none()) {
            return Err(ConfigError::Invalid {
                setting: "peers",
                value: format!("node {node_id} in {peers:?}"),
                expected: "a list that names this node's id, with --cluster-listen set",
            });
        }
        let join = self.join.or(file.join);
        if join.is_some() && (!peers.is_empty() || cluster_listen.is_none()) {
            return Err(ConfigError::Invalid {
                setting: "join",
                value: join.unwrap_or_default(),
                expected: "a member's inter-node address, with --cluster-listen set and no --peers",
            });
        }
        let account_id = self
            .account_id
            .or(file.account_id)
            .unwrap_or_else(|| atoll_api::DEFAULT_ACCOUNT_ID.into());
        if !atoll_api::is_account_id(&account_id) {
            return Err(ConfigError::Invalid {
                setting: "account id",
                value: account_id,
                expected: "twelve digits",
            });
        }
        Ok(ServeConfig {
            account_id,
            ttl_change_interval_ms: self
                .ttl_change_interval_ms
                .or(file.ttl_change_interval_ms)
                .unwrap_or(atoll_api::DEFAULT_TTL_CHANGE_INTERVAL_MS),
            stream_retention_ms: self
                .stream_retention_ms
                .or(file.stream_retention_ms)
                .unwrap_or(atoll_cluster::DEFAULT_STREAM_RETENTION.as_millis() as u64),
            ttl_sweep_interval_ms: self
                .ttl_sweep_interval_ms
                .or(file.ttl_sweep_interval_ms)
                .unwrap_or(atoll_cluster::DEFAULT_TTL_SWEEP_INTERVAL.as_millis() as u64),
            transaction_recovery_ms: self
                .transaction_recovery_ms
                .or(file.transaction_recovery_ms)
                .unwrap_or(atoll_cluster::DEFAULT_TRANSACTION_RECOVERY_AFTER.as_millis() as u64),
            auth_required: match self.auth.or(file.auth).as_deref() {
                None | Some("open") => false,
                Some("required") => true,
                Some(other) => {
                    return Err(ConfigError::Invalid {
                        setting: "auth",
                        value: other.to_string(),
                        expected: "open or required",
                    });
                }
            },
            access_keys: access_keys(
                if self.access_keys.is_empty() {
                    file.access_keys.unwrap_or_default()
                } else {
                    self.access_keys
                },
                self.access_keys_file.or(file.access_keys_file),
            )?,
            join,
            cluster_listen,
            advertise: self.advertise.or(file.advertise),
            peers,
            zone: self.zone.or(file.zone),
            dead_node_after_ms: self
                .dead_node_after_ms
                .or(file.dead_node_after_ms)
                .unwrap_or(atoll_cluster::DEFAULT_DEAD_NODE_AFTER.as_millis() as u64),
            item_collection_limit_bytes: self
                .item_collection_limit_bytes
                .or(file.item_collection_limit_bytes)
                .unwrap_or(atoll_cluster::DEFAULT_ITEM_COLLECTION_LIMIT_BYTES),
            max_global_indexes: self
                .max_global_indexes
                .or(file.max_global_indexes)
                .unwrap_or(atoll_api::DEFAULT_MAX_GLOBAL_INDEXES),
            listen: self
                .listen
                .or(file.listen)
                .unwrap_or_else(|| "0.0.0.0:8000".into()),
            data_dir: self
                .data_dir
                .or(file.data_dir)
                .unwrap_or_else(|| PathBuf::from("./atoll-data")),
            region: self
                .region
                .or(file.region)
                .unwrap_or_else(|| "us-east-1".into()),
            log_level: self
                .log_level
                .or(file.log_level)
                .unwrap_or_else(|| "info".into()),
            log_format: match self.log_format.or(file.log_format).as_deref() {
                None | Some("text") => LogFormat::Text,
                Some("json") => LogFormat::Json,
                Some(other) => {
                    return Err(ConfigError::Invalid {
                        setting: "log format",
                        value: other.to_string(),
                        expected: "text or json",
                    });
                }
            },
            node_id,
            partition_split_bytes: self
                .partition_split_bytes
                .or(file.partition_split_bytes)
                .unwrap_or(atoll_cluster::DEFAULT_SPLIT_SIZE_BYTES),
            partition_split_ops: self
                .partition_split_ops
                .or(file.partition_split_ops)
                .unwrap_or(atoll_cluster::DEFAULT_SPLIT_LOAD_OPS_PER_SECOND as u64),
            partition_check_ms: match self.partition_check_ms.or(file.partition_check_ms) {
                None => 1000,
                Some(0) => {
                    return Err(ConfigError::Invalid {
                        setting: "partition check interval",
                        value: "0".to_string(),
                        expected: "a number of milliseconds above 0",
                    });
                }
                Some(ms) => ms,
            },
            message_style: match self.message_style.or(file.message_style).as_deref() {
                None | Some("current") => atoll_api::MessageStyle::Current,
                Some("classic") => atoll_api::MessageStyle::Classic,
                Some(other) => {
                    return Err(ConfigError::Invalid {
                        setting: "message style",
                        value: other.to_string(),
                        expected: "current or classic",
                    });
                }
            },
        })
    }
}

/// Parses `ID=HOST:PORT,...`.
/// The access keys given as `ID:SECRET` texts and in `file` (one per line).
fn access_keys(
    given: Vec<String>,
    file: Option<PathBuf>,
) -> Result<Vec<(String, String)>, ConfigError> {
    let mut texts = given;
    if let Some(path) = file {
        let content =
            std::fs::read_to_string(&path).map_err(|source| ConfigError::Read { path, source })?;
        texts.extend(
            content
                .lines()
                .map(str::trim)
                .filter(|line| !line.is_empty() && !line.starts_with('#'))
                .map(str::to_string),
        );
    }
    texts
        .into_iter()
        .filter(|text| !text.trim().is_empty())
        .map(|text| match text.trim().split_once(':') {
            Some((id, secret)) if !id.is_empty() && !secret.is_empty() => {
                Ok((id.to_string(), secret.to_string()))
            }
            // The value is not echoed: it may hold a secret.
            _ => Err(ConfigError::Invalid {
                setting: "access key",
                value: "(not shown)".into(),
                expected: "ID:SECRET",
            }),
        })
        .collect()
}

fn parse_peers(list: &str) -> Result<std::collections::BTreeMap<u64, String>, ConfigError> {
    let invalid = || ConfigError::Invalid {
        setting: "peers",
        value: list.to_string(),
        expected: "ID=HOST:PORT,... with distinct numeric ids",
    };
    let mut peers = std::collections::BTreeMap::new();
    for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (id, addr) = entry.split_once('=').ok_or_else(invalid)?;
        let id: u64 = id.trim().parse().map_err(|_| invalid())?;
        let addr = addr.trim();
        if addr.is_empty() || peers.insert(id, addr.to_string()).is_some() {
            return Err(invalid());
        }
    }
    Ok(peers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_win_over_the_file_which_wins_over_defaults() {
        let dir = std::env::temp_dir().join(format!("atoll-config-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("atoll.toml");
        std::fs::write(
            &path,
            "listen = \"127.0.0.1:9000\"\nregion = \"eu-west-1\"\n",
        )
        .expect("write");
        let resolved = ServeArgs {
            config: Some(path),
            region: Some("ap-south-1".into()),
            ..ServeArgs::default()
        }
        .resolve()
        .expect("resolve");
        assert_eq!(resolved.listen, "127.0.0.1:9000");
        assert_eq!(resolved.region, "ap-south-1");
        assert_eq!(resolved.data_dir, PathBuf::from("./atoll-data"));
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn peers_name_ids_and_addresses() {
        let peers = parse_peers("1=127.0.0.1:8100, 2=127.0.0.2:8100").expect("valid");
        assert_eq!(peers.get(&2).map(String::as_str), Some("127.0.0.2:8100"));
        for bad in ["1", "x=a:1", "1=a:1,1=b:2", "1="] {
            assert!(parse_peers(bad).is_err(), "{bad} must be refused");
        }
        let error = ServeArgs {
            node_id: Some(3),
            peers: Some("1=a:1,2=b:2".into()),
            cluster_listen: Some("a:1".into()),
            ..ServeArgs::default()
        }
        .resolve()
        .expect_err("the node must be among its peers");
        assert!(error.to_string().contains("peers"));
    }

    #[test]
    fn unknown_settings_in_the_file_are_refused() {
        let dir = std::env::temp_dir().join(format!("atoll-config-bad-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("atoll.toml");
        std::fs::write(&path, "lissten = \"x\"\n").expect("write");
        let error = ServeArgs {
            config: Some(path),
            ..ServeArgs::default()
        }
        .resolve()
        .expect_err("typo must be reported");
        assert!(error.to_string().contains("invalid config file"));
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn the_account_id_is_twelve_digits() {
        let resolved = ServeArgs::default().resolve().unwrap();
        assert_eq!(resolved.account_id, "123456789012");
        for bad in ["12345678901", "1234567890123", "12345678901a", ""] {
            let args = ServeArgs {
                account_id: Some(bad.into()),
                ..ServeArgs::default()
            };
            assert!(args.resolve().is_err(), "{bad:?} accepted");
        }
    }
}
