//! The HTTP layer: DynamoDB's checks on method, path, headers and body, then
//! dispatch, then a response with request id, CRC32, compression and CORS.

pub mod coding;
mod cors;

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{CONTENT_ENCODING, CONTENT_TYPE, HeaderMap, HeaderValue, SERVER};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpListener;
use tracing::Instrument;

use atoll_cluster::ClusterError;

use crate::auth::authenticate;
use crate::error::{ApiError, ErrorKind};
use crate::operation::Operation;
use crate::{Api, RequestContext};

/// Largest request body DynamoDB accepts (after decompression too).
const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;
/// Largest request line, and largest header block, DynamoDB's front door
/// accepts; past either it answers a bare 400 (Alternator's
/// `test_manual_requests.py`, run against DynamoDB).
const MAX_REQUEST_LINE_BYTES: usize = 16 * 1024;
/// See [`MAX_REQUEST_LINE_BYTES`].
const MAX_HEADER_BYTES: usize = 16 * 1024;
const REQUEST_ID_LENGTH: usize = 52;
const NOT_FOUND_BODY: &str = "<UnknownOperationException/>\n";

/// Serves the API on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    api: Arc<Api>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    tokio::pin!(shutdown);
    // Tracks every connection, so a stop answers the requests in flight
    // before the node shuts down: a request dropped half-way would look to
    // the client like a transient failure, and its retry could apply a
    // write twice.
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Running out of file descriptors must not end the server.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let api = api.clone();
        let service = service_fn(move |request| {
            let api = api.clone();
            async move { Ok::<_, Infallible>(handle(api, request).await) }
        });
        let connection = hyper::server::conn::http1::Builder::new()
            .keep_alive(true)
            .serve_connection(TokioIo::new(stream), service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    // Idle keep-alive connections close now; busy ones after their answer.
    if tokio::time::timeout(SHUTDOWN_DRAIN, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("requests still running after {SHUTDOWN_DRAIN:?}; stopping anyway");
    }
    Ok(())
}

/// How long a stopping server waits for the requests it is answering.
const SHUTDOWN_DRAIN: std::time::Duration = std::time::Duration::from_secs(10);

/// A new `x-amzn-RequestId`: 52 characters of `[0-9A-Z]`, as DynamoDB's.
/// Twelve characters from each random `u64` (36^12 < 2^64), five draws in
/// all: a draw per character cost 1% of GetItem throughput.
fn new_request_id() -> Arc<str> {
    const ALPHABET: &[u8; 36] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    const PER_DRAW: usize = 12;
    let mut id = [0u8; REQUEST_ID_LENGTH];
    for chunk in id.chunks_mut(PER_DRAW) {
        let mut draw = fastrand::u64(..);
        for byte in chunk {
            *byte = ALPHABET[(draw % 36) as usize];
            draw /= 36;
        }
    }
    // Every byte is ASCII, so this never falls back.
    Arc::from(std::str::from_utf8(&id).unwrap_or("0"))
}

/// A response before the envelope every response shares (request id,
/// CRC32, `Server`, compression, CORS) is put around it by [`finish`].
struct Answer {
    status: u16,
    content_type: Option<HeaderValue>,
    body: Vec<u8>,
    /// Headers of this answer alone (a CORS preflight's).
    headers: HeaderMap,
    /// The DynamoDB error answered, if any (for metrics).
    error: Option<ErrorKind>,
}

fn respond(status: u16, content_type: Option<&HeaderValue>, body: Vec<u8>) -> Answer {
    Answer {
        status,
        content_type: content_type.cloned(),
        body,
        headers: HeaderMap::new(),
        error: None,
    }
}

fn error_response(error: &ApiError, content_type: &HeaderValue) -> Answer {
    let mut answer = respond(error.kind.status(), Some(content_type), error.body());
    answer.error = Some(error.kind);
    answer
}

/// What of the request shapes every answer to it.
struct Envelope {
    /// The request came from a browser page (it sent `Origin`).
    cross_origin: bool,
    /// The coding the client accepts for the response, if any.
    coding: Option<coding::Coding>,
}

/// The HTTP response for `answer`: compressed when the client accepts it
/// and the body is large enough, with its CRC32 over the bytes sent (as
/// DynamoDB computes it), a request id and DynamoDB's `Server` header.
fn finish(answer: Answer, envelope: &Envelope, request_id: &str) -> Response<Full<Bytes>> {
    let Answer {
        status,
        content_type,
        mut body,
        headers: own_headers,
        error: _,
    } = answer;
    let mut content_coding = None;
    if let Some(coding) = envelope.coding
        && body.len() >= coding::RESPONSE_COMPRESSION_THRESHOLD_BYTES
    {
        body = coding::compress(coding, &body);
        content_coding = Some(coding);
    }
    let crc = crc32fast::hash(&body);
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() =
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = response.headers_mut();
    headers.insert(SERVER, HeaderValue::from_static("Server"));
    if let Ok(id) = HeaderValue::from_str(request_id) {
        headers.insert("x-amzn-requestid", id);
    }
    headers.insert("x-amz-crc32", HeaderValue::from(crc));
    if let Some(content_type) = content_type {
        headers.insert(CONTENT_TYPE, content_type);
    }
    if let Some(coding) = content_coding {
        headers.insert(CONTENT_ENCODING, HeaderValue::from_static(coding.name()));
    }
    if envelope.cross_origin {
        cors::add_response_headers(headers);
    }
    headers.extend(own_headers);
    response
}

/// The JSON content type of the request, if it is one DynamoDB accepts.
fn json_content_type(request: &Request<Incoming>) -> Option<HeaderValue> {
    let raw = request.headers().get(CONTENT_TYPE)?.to_str().ok()?;
    let base = raw.split(';').next().unwrap_or_default().trim();
    match base {
        "application/x-amz-json-1.0" | "application/json" => HeaderValue::from_str(base).ok(),
        _ => None,
    }
}

/// Path of the admin view (nodes, tables, partitions) as JSON.
pub const ADMIN_PATH: &str = "/atoll/admin";

/// Path of the Prometheus metrics of this node (`GET`).
pub const METRICS_PATH: &str = "/metrics";

/// `GET /metrics`: this node's metrics in the Prometheus text format, its
/// cluster gauges (partitions, Raft groups, storage) read now.
fn metrics_answer(api: &Api) -> Answer {
    let Some(export) = &api.config.metrics else {
        return respond(404, None, NOT_FOUND_BODY.as_bytes().to_vec());
    };
    api.cluster.record_metrics();
    respond(
        200,
        Some(&HeaderValue::from_static("text/plain; version=0.0.4")),
        export.render().into_bytes(),
    )
}

/// Path that starts decommissioning a node: `POST` with `?node=ID`.
pub const DECOMMISSION_PATH: &str = "/atoll/admin/decommission";

/// Answers `POST DECOMMISSION_PATH?node=ID`: 200 once the catalog records
/// the node as leaving, 400 for a missing or unknown node or the last one,
/// 503 when the catalog cannot be reached now. Atoll's own, like the admin
/// view: no DynamoDB client sends it.
async fn decommission(api: &Api, query: Option<&str>) -> Answer {
    let json = HeaderValue::from_static("application/json");
    let answer = |status: u16, body: serde_json::Value| {
        respond(status, Some(&json), body.to_string().into_bytes())
    };
    let node = query
        .unwrap_or_default()
        .split('&')
        .find_map(|pair| pair.strip_prefix("node="))
        .and_then(|id| id.parse::<u64>().ok());
    let Some(node) = node else {
        return answer(
            400,
            serde_json::json!({"message": "name the node to decommission: ?node=ID"}),
        );
    };
    match api.cluster.decommission(node).await {
        Ok(()) => answer(200, serde_json::json!({"node_id": node, "leaving": true})),
        Err(e) if e.is_retryable() => answer(503, serde_json::json!({"message": e.to_string()})),
        Err(e @ (ClusterError::UnknownNode(_) | ClusterError::LastNode(_))) => {
            answer(400, serde_json::json!({"message": e.to_string()}))
        }
        Err(e) => answer(503, serde_json::json!({"message": e.to_string()})),
    }
}

async fn handle(api: Arc<Api>, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let started = Instant::now();
    let default_type = HeaderValue::from_static("application/x-amz-json-1.0");
    let envelope = Envelope {
        cross_origin: request.headers().contains_key(hyper::header::ORIGIN),
        coding: coding::response_coding(request.headers()),
    };
    let request_id = new_request_id();
    // At debug level the request runs in a `request` span and a request-id
    // scope, which forwarded requests carry to other nodes, so every log
    // line of it names it on every node. At info, neither: an enabled span
    // per request cost 8% of GetItem throughput and the scope 6% (measured);
    // the lines the API writes itself still name the id.
    let span = tracing::debug_span!(
        "request",
        request_id = %request_id,
        op = tracing::field::Empty,
        table = tracing::field::Empty,
    );
    let mut operation = None;
    let work = route(
        &api,
        request,
        &default_type,
        &request_id,
        &span,
        &mut operation,
    );
    let answer = if span.is_disabled() {
        work.await
    } else {
        atoll_cluster::with_request_id(request_id.clone(), work)
            .instrument(span.clone())
            .await
    };
    if let Some(operation) = operation {
        api.request_metrics
            .record(operation, answer.error, started.elapsed());
    }
    span.in_scope(|| tracing::debug!(status = answer.status, "answered"));
    finish(answer, &envelope, &request_id)
}

/// Whether the request line or the header block is longer than DynamoDB's
/// front door takes. Sizes are those of the HTTP/1.1 text the client sent.
fn exceeds_front_door_limits(request: &Request<Incoming>) -> bool {
    let target_bytes = request
        .uri()
        .path_and_query()
        .map_or(request.uri().path().len(), |p| p.as_str().len());
    // "METHOD TARGET HTTP/1.1\r\n"
    let request_line_bytes = request.method().as_str().len() + target_bytes + 12;
    let header_bytes: usize = request
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum();
    request_line_bytes > MAX_REQUEST_LINE_BYTES || header_bytes > MAX_HEADER_BYTES
}

/// Answers request `request_id`; `operation_seen` learns the DynamoDB
/// operation once the target names one, and `span` (when enabled) the
/// operation and table.
async fn route(
    api: &Api,
    request: Request<Incoming>,
    default_type: &HeaderValue,
    request_id: &str,
    span: &tracing::Span,
    operation_seen: &mut Option<Operation>,
) -> Answer {
    if exceeds_front_door_limits(&request) {
        return respond(400, None, Vec::new());
    }
    // Every DynamoDB call is `POST /`; the rest is rare and answered apart.
    if request.method() != Method::POST || request.uri().path() != "/" {
        return answer_other_paths(api, &request).await;
    }
    let content_type = json_content_type(&request);
    let (parts, body) = request.into_parts();
    let (body, raw, content_type) = match read_body(body, &parts, content_type, default_type).await
    {
        Ok(read) => read,
        Err(answer) => return answer,
    };
    let call = match parse_call(&parts, (&body, &raw), span, operation_seen, &api.config) {
        Ok(call) => call,
        Err(error) => return error_response(&error, &content_type),
    };
    match crate::ops::dispatch(api, &call.context, call.operation, &call.input).await {
        Ok(output) => {
            let body = match output {
                crate::ops::Output::Raw(body) => body,
                crate::ops::Output::Json(value) => {
                    serde_json::to_vec(&value).unwrap_or_else(|_| b"{}".to_vec())
                }
            };
            respond(200, Some(&content_type), body)
        }
        Err(error) => {
            if error.kind == ErrorKind::InternalServerError {
                tracing::error!(
                    request_id,
                    operation = call.operation.name(),
                    error = %error,
                    "internal error"
                );
            }
            error_response(&error, &content_type)
        }
    }
}

/// The answer to anything but a DynamoDB call (`POST /`): the health
/// check, Atoll's admin and metrics paths, CORS preflights, and 404s.
async fn answer_other_paths(api: &Api, request: &Request<Incoming>) -> Answer {
    let (method, path) = (request.method(), request.uri().path());
    if method == Method::GET && path == "/" {
        let body = format!(
            "healthy: dynamodb.{}.amazonaws.com ",
            api.config.default_region
        );
        return respond(200, None, body.into_bytes());
    }
    // Atoll's own admin view; DynamoDB has no GET paths, so it clashes with
    // nothing a DynamoDB client sends.
    if method == Method::GET && path == ADMIN_PATH {
        return match serde_json::to_vec(&api.cluster.report_with_remote_stats().await) {
            Ok(body) => respond(
                200,
                Some(&HeaderValue::from_static("application/json")),
                body,
            ),
            Err(_) => respond(500, None, Vec::new()),
        };
    }
    if method == Method::GET && path == METRICS_PATH {
        return metrics_answer(api);
    }
    if method == Method::POST && path == DECOMMISSION_PATH {
        return decommission(api, request.uri().query()).await;
    }
    if method == Method::OPTIONS && request.headers().contains_key(hyper::header::ORIGIN) {
        return cors::preflight(request.headers());
    }
    respond(404, None, NOT_FOUND_BODY.as_bytes().to_vec())
}

/// Reads the body (at most `MAX_BODY_BYTES`, after undoing its
/// `Content-Encoding`) and settles its content type; or the answer that
/// refuses it.
async fn read_body(
    body: Incoming,
    parts: &hyper::http::request::Parts,
    content_type: Option<HeaderValue>,
    default_type: &HeaderValue,
) -> Result<(Bytes, Bytes, HeaderValue), Answer> {
    let body = match Limited::new(body, MAX_BODY_BYTES).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) => {
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                return Err(respond(413, None, Vec::new()));
            }
            return Err(respond(400, None, Vec::new()));
        }
    };
    let Some(content_type) = content_type.or_else(|| body.is_empty().then(|| default_type.clone()))
    else {
        return Err(respond(404, None, NOT_FOUND_BODY.as_bytes().to_vec()));
    };
    // The signature covers the body as sent (a refcount, not a copy).
    let raw = body.clone();
    match coding::decode_request_body(&parts.headers, body, MAX_BODY_BYTES) {
        Ok(body) => Ok((body, raw, content_type)),
        Err(coding::DecodeError::TooLarge) => Err(respond(413, None, Vec::new())),
        // DynamoDB answers an unknown coding, or a body that is not what its
        // coding says, with an InternalServerError (Alternator's
        // test_compressed_request.py, run against it).
        Err(error) => {
            tracing::debug!(?error, "request body could not be decoded");
            Err(error_response(
                &ApiError::internal("Internal server error"),
                &content_type,
            ))
        }
    }
}

/// A DynamoDB call, parsed and authenticated.
struct Call {
    operation: Operation,
    input: crate::input::Object,
    context: RequestContext,
}

/// Parses the JSON body, the `X-Amz-Target` and the signature, in
/// DynamoDB's order; or the error of the first that fails.
fn parse_call(
    parts: &hyper::http::request::Parts,
    (body, raw_body): (&[u8], &[u8]),
    span: &tracing::Span,
    operation_seen: &mut Option<Operation>,
    config: &crate::ApiConfig,
) -> Result<Call, ApiError> {
    // A body nested deeper than the JSON parser goes is refused after the
    // target and authentication checks, with DynamoDB's nesting error.
    let mut too_deep = false;
    let parsed: Option<Value> = if body.is_empty() {
        None
    } else {
        match serde_json::from_slice(body) {
            Ok(value) => Some(value),
            Err(_) if json_nesting_exceeds(body, JSON_DEPTH_LIMIT) => {
                too_deep = true;
                None
            }
            Err(_) => return Err(ApiError::bare(ErrorKind::Serialization)),
        }
    };
    let target = parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let Some(operation) = Operation::from_target(target) else {
        return Err(ApiError::bare(ErrorKind::UnknownOperation));
    };
    *operation_seen = Some(operation);
    span.record("op", operation.name());
    let caller = authenticate(&parts.headers, parts.uri.query())?;
    if config.keys.mode() == crate::auth::AuthMode::Required {
        let request = crate::auth::SignedRequest {
            method: parts.method.as_str(),
            path: parts.uri.path(),
            query: parts.uri.query(),
            headers: &parts.headers,
            body: raw_body,
        };
        crate::auth::verify(&config.keys, &caller.signed(), &request, now_seconds())?;
    }
    if too_deep {
        return Err(ApiError::validation(
            "Nesting Levels have exceeded supported limits: Attributes in the item have nested levels beyond supported limit",
        ));
    }
    let Some(Value::Object(input)) = parsed else {
        return Err(ApiError::bare(ErrorKind::Serialization));
    };
    // Looked up only for an enabled span: at info every request skips it.
    if !span.is_disabled()
        && let Some(table) = input.get("TableName").and_then(Value::as_str)
    {
        span.record("table", table);
    }
    Ok(Call {
        operation,
        input,
        context: RequestContext {
            region: caller.region,
            account_id: config.account_id.clone(),
        },
    })
}

/// This node's clock, seconds since the epoch.
fn now_seconds() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// serde_json refuses documents nested deeper than this.
const JSON_DEPTH_LIMIT: usize = 128;

/// Whether `body` nests objects and arrays deeper than `limit` (strings skipped).
fn json_nesting_exceeds(body: &[u8], limit: usize) -> bool {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &byte in body {
        if in_string {
            match (escaped, byte) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                if depth > limit {
                    return true;
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::json_nesting_exceeds;

    #[test]
    fn nesting_depth_ignores_brackets_inside_strings() {
        assert!(!json_nesting_exceeds(br#"{"a":"[[[[[[","b":[{}]}"#, 3));
        assert!(json_nesting_exceeds(br#"{"a":[{"b":[1]}]}"#, 3));
        assert!(!json_nesting_exceeds(br#"{"a":"\"[[[["}"#, 1));
    }
}
