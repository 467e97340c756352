//! One keep-alive HTTP/1.1 connection to a DynamoDB endpoint, signing every request.

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::BenchError;
use crate::sigv4::{Signer, amz_date_now};

/// Where the endpoint is.
#[derive(Clone, Debug)]
pub struct Endpoint {
    /// `host:port` to connect to and send as Host.
    pub authority: String,
}

impl Endpoint {
    /// Parses `http://host:port` (HTTPS is not supported by the benchmark).
    pub fn parse(url: &str) -> Result<Endpoint, BenchError> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| BenchError::Usage(format!("endpoint must start with http://: {url}")))?;
        let authority = rest.trim_end_matches('/').to_string();
        if authority.is_empty() {
            return Err(BenchError::Usage(format!("endpoint has no host: {url}")));
        }
        Ok(Endpoint { authority })
    }
}

/// A response: status and body.
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// Body bytes.
    pub body: Bytes,
}

impl Reply {
    /// DynamoDB's error name (after `#` in `__type`), for a non-200 reply.
    pub fn error_type(&self) -> String {
        let parsed: Option<serde_json::Value> = serde_json::from_slice(&self.body).ok();
        parsed
            .as_ref()
            .and_then(|v| v.get("__type"))
            .and_then(|t| t.as_str())
            .map(|t| t.rsplit('#').next().unwrap_or(t).to_string())
            .unwrap_or_else(|| format!("HTTP {}", self.status))
    }
}

/// A connection.
pub struct Connection {
    sender: SendRequest<Full<Bytes>>,
    endpoint: Endpoint,
    signer: Arc<Signer>,
}

impl Connection {
    /// Opens a connection to `endpoint`.
    pub async fn open(endpoint: &Endpoint, signer: Arc<Signer>) -> Result<Connection, BenchError> {
        let stream = TcpStream::connect(&endpoint.authority)
            .await
            .map_err(|e| BenchError::Connect(endpoint.authority.clone(), e.to_string()))?;
        let _ = stream.set_nodelay(true);
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| BenchError::Connect(endpoint.authority.clone(), e.to_string()))?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(Connection {
            sender,
            endpoint: endpoint.clone(),
            signer,
        })
    }

    /// Sends `body` to operation `operation` (e.g. `GetItem`) and reads the reply.
    pub async fn call(&mut self, operation: &str, body: String) -> Result<Reply, BenchError> {
        self.call_target(format!("DynamoDB_20120810.{operation}"), body)
            .await
    }

    /// Sends `body` to DynamoDB Streams operation `operation` (e.g. `GetRecords`).
    pub async fn call_streams(
        &mut self,
        operation: &str,
        body: String,
    ) -> Result<Reply, BenchError> {
        self.call_target(format!("DynamoDBStreams_20120810.{operation}"), body)
            .await
    }

    async fn call_target(&mut self, target: String, body: String) -> Result<Reply, BenchError> {
        let amz_date = amz_date_now();
        let authorization = self
            .signer
            .authorization(&amz_date, &target, body.as_bytes());
        let request = hyper::Request::post("/")
            .header("host", &self.endpoint.authority)
            .header("content-type", "application/x-amz-json-1.0")
            .header("x-amz-date", amz_date)
            .header("x-amz-target", target)
            .header("authorization", authorization)
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| BenchError::Request(e.to_string()))?;
        self.sender
            .ready()
            .await
            .map_err(|e| BenchError::Request(e.to_string()))?;
        let response = self
            .sender
            .send_request(request)
            .await
            .map_err(|e| BenchError::Request(e.to_string()))?;
        let status = response.status().as_u16();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| BenchError::Request(e.to_string()))?
            .to_bytes();
        Ok(Reply { status, body })
    }
}
