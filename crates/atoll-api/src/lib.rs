//! Atoll's front door: DynamoDB's JSON protocol over HTTP.
//!
//! A request walks: HTTP checks → JSON parse → `X-Amz-Target` → authentication
//! → type check against the operation's input shape → constraint validation →
//! operation-specific validation → catalog lookup → routing to the partition
//! (through `atoll_cluster::DataPlane`) → JSON response. Each step answers with
//! DynamoDB's own error when it fails, in DynamoDB's order.

// A request's future nests every operation's handler inside the request
// span and the request-id scope; its layout takes deeper type queries than
// the compiler's default allows (no runtime cost).
#![recursion_limit = "256"]

mod attribute;
mod auth;
mod constraints;
#[cfg(test)]
mod decode_props;
mod error;
mod http;
mod input;
mod observe;
mod operation;
mod ops;
mod shape;

use std::sync::Arc;

use atoll_cluster::{Cluster, DataPlane};

pub use atoll_model::table::{DEFAULT_ACCOUNT_ID, is_account_id};
pub use auth::{AuthMode, KeyStore, Secret};
pub use error::{ApiError, ErrorKind};
pub use http::{ADMIN_PATH, DECOMMISSION_PATH, METRICS_PATH, coding, serve};
pub use observe::MetricsExport;
pub use operation::Operation;

/// Parsed expressions kept per node.
const EXPRESSION_CACHE_ENTRIES: usize = 4096;

/// DynamoDB's default limit of global secondary indexes per table.
pub const DEFAULT_MAX_GLOBAL_INDEXES: usize = 20;

/// Settings of the API front door.
#[derive(Clone, Debug)]
pub struct ApiConfig {
    /// Region named by the health check, and used when a request names none.
    pub default_region: String,
    /// Host and port DescribeEndpoints reports.
    pub endpoint_address: String,
    /// Which wording of validation messages to use.
    pub message_style: MessageStyle,
    /// What `GET /metrics` renders; `None` answers it as an unknown path.
    pub metrics: Option<MetricsExport>,
    /// Most global secondary indexes a table may have (DynamoDB's default: 20).
    pub max_global_indexes: usize,
    /// The account whose resources this serves: named in ARNs, and an ARN
    /// of another account is not found but denied, as DynamoDB does.
    pub account_id: String,
    /// Least time between two changes of a table's Time to Live
    /// (DynamoDB's: one hour).
    pub ttl_change_interval_ms: u64,
    /// How long a stream's records are kept, and a stream turned off stays
    /// readable (DynamoDB's 24 hours).
    pub stream_retention_ms: u64,
    /// The access keys requests are signed with, and whether signatures
    /// are verified.
    pub keys: auth::KeyStore,
}

/// DynamoDB's least time between two changes of a table's Time to Live.
pub const DEFAULT_TTL_CHANGE_INTERVAL_MS: u64 = 60 * 60 * 1000;

/// DynamoDB is rolling out a new validation layer region by region (2026):
/// regions in the new cohort wrap the value and expression errors of
/// PutItem, UpdateItem and DeleteItem in "1 validation error detected: " and
/// word some of them differently; the others answer as before.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MessageStyle {
    /// The new cohort's wording (captured from the real service in October 2026).
    #[default]
    Current,
    /// The classic wording (most regions before the rollout).
    Classic,
}

impl Api {
    /// The value layer PutItem, UpdateItem and DeleteItem run.
    pub(crate) fn write_layer(&self) -> attribute::Layer {
        match self.config.message_style {
            MessageStyle::Current => attribute::Layer::Current { enveloped: true },
            MessageStyle::Classic => attribute::Layer::Older,
        }
    }
}

/// The API service: shared by all connections.
pub struct Api {
    /// Tables, their lifecycles and the node's admin view.
    cluster: Arc<Cluster>,
    /// Item reads and writes.
    data: DataPlane,
    config: ApiConfig,
    /// Parsed expressions by text, so a hot request does not parse again.
    expressions: atoll_expr::ExpressionCache,
    /// Counters and latency of requests.
    request_metrics: observe::RequestMetrics,
}

impl Api {
    /// The API over `cluster`.
    pub fn new(cluster: Arc<Cluster>, config: ApiConfig) -> Arc<Api> {
        Arc::new(Api {
            data: cluster.data_plane(),
            cluster,
            config,
            expressions: atoll_expr::ExpressionCache::new(EXPRESSION_CACHE_ENTRIES),
            request_metrics: observe::RequestMetrics::new(),
        })
    }
}

/// What the handlers know about the request beyond its body.
pub(crate) struct RequestContext {
    /// Region of the caller's credential scope.
    pub region: String,
    /// The account the caller acts in (today the node's configured one).
    pub account_id: String,
}

impl RequestContext {
    /// ARN of table `name` as this caller sees it.
    pub(crate) fn table_arn(&self, name: &str) -> String {
        atoll_model::table::table_arn(&self.account_id, &self.region, name)
    }
}
