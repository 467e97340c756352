//! The id of the client request a node is working for, carried through the
//! request's work on this node and into the requests it forwards to other
//! nodes, so every log line of one client request names the same id.

use std::future::Future;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

tokio::task_local! {
    static REQUEST_ID: Arc<str>;
}

/// Runs `work` for client request `request_id`: requests it forwards to
/// other nodes carry the id along.
pub async fn with_request_id<F: Future>(request_id: Arc<str>, work: F) -> F::Output {
    REQUEST_ID.scope(request_id, work).await
}

/// The id of the client request this task works for, if any (log
/// formatters add it to every line written while the request is served).
pub fn current_request_id() -> Option<Arc<str>> {
    REQUEST_ID.try_with(Arc::clone).ok()
}

/// What a forwarded request carries after its encoded body. A trailer,
/// not a field, so that nodes of the previous version, which decode the
/// body and ignore what follows, still understand the request.
#[derive(Serialize, Deserialize)]
pub(crate) struct RequestTrailer {
    /// The client request's `x-amzn-RequestId`.
    pub(crate) request_id: String,
}
