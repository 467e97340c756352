//! What the front door records of each request, as Prometheus metrics
//! named after DynamoDB's CloudWatch metrics where DynamoDB has one
//! (`SuccessfulRequestLatency`, `UserErrors`, `SystemErrors`,
//! `ConditionalCheckFailedRequests`). The process installs the recorder;
//! without one every call here does nothing.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use metrics::{Histogram, counter, histogram};

use crate::error::ErrorKind;
use crate::operation::Operation;

/// Latency of requests answered without error, by operation (seconds).
const SUCCESSFUL_REQUEST_LATENCY: &str = "atoll_successful_request_latency_seconds";
/// Requests refused for the client's fault (4xx), by operation and error.
const USER_ERRORS: &str = "atoll_user_errors_total";
/// Requests that failed on Atoll's side (5xx), by operation and error.
const SYSTEM_ERRORS: &str = "atoll_system_errors_total";
/// Writes whose condition was false, by operation.
const CONDITIONAL_CHECK_FAILED: &str = "atoll_conditional_check_failed_requests_total";

/// Renders every metric of the process in the Prometheus text format.
#[derive(Clone)]
pub struct MetricsExport(Arc<dyn Fn() -> String + Send + Sync>);

impl MetricsExport {
    /// An export that renders with `render` (the installed recorder's).
    pub fn new(render: impl Fn() -> String + Send + Sync + 'static) -> MetricsExport {
        MetricsExport(Arc::new(render))
    }

    pub(crate) fn render(&self) -> String {
        (self.0)()
    }
}

impl std::fmt::Debug for MetricsExport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MetricsExport")
    }
}

/// Per-operation handles, registered at an operation's first request:
/// recording is then one histogram sample, not a registry lookup, and
/// operations nobody calls stay out of `/metrics`. Requests answered are
/// the latency histogram's `_count` plus the error counters: a counter of
/// all requests beside them cost 1% of GetItem throughput (measured).
pub(crate) struct RequestMetrics {
    /// Indexed by the operation's position in [`Operation::ALL`].
    by_operation: Box<[OnceLock<Histogram>]>,
}

impl RequestMetrics {
    /// Handles to be taken from the recorder installed then (none: no-ops).
    pub(crate) fn new() -> RequestMetrics {
        RequestMetrics {
            by_operation: Operation::ALL.iter().map(|_| OnceLock::new()).collect(),
        }
    }

    /// Records one answered request.
    pub(crate) fn record(&self, operation: Operation, error: Option<ErrorKind>, took: Duration) {
        debug_assert_eq!(Operation::ALL.get(operation as usize), Some(&operation));
        let Some(slot) = self.by_operation.get(operation as usize) else {
            return;
        };
        let name = operation.name();
        match error {
            None => slot
                .get_or_init(|| histogram!(SUCCESSFUL_REQUEST_LATENCY, "operation" => name))
                .record(took.as_secs_f64()),
            Some(ErrorKind::ConditionalCheckFailed) => {
                counter!(CONDITIONAL_CHECK_FAILED, "operation" => name).increment(1);
            }
            Some(kind) if kind.status() >= 500 => {
                counter!(SYSTEM_ERRORS, "operation" => name, "error" => kind.short_name())
                    .increment(1);
            }
            Some(kind) => {
                counter!(USER_ERRORS, "operation" => name, "error" => kind.short_name())
                    .increment(1);
            }
        }
    }
}
