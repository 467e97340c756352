//! An HTTP server that answers every request with `{}`: the ceiling of what
//! the benchmark client and the machine's loopback can do.

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::BenchError;

/// Serves `{}` on `listen` until the process ends; prints the bound address.
pub async fn serve(listen: &str) -> Result<(), BenchError> {
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|e| BenchError::Connect(listen.to_string(), e.to_string()))?;
    let address = listener
        .local_addr()
        .map_err(|e| BenchError::Connect(listen.to_string(), e.to_string()))?;
    println!("null server: listening on http://{address}");
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let service = service_fn(
                |request: hyper::Request<hyper::body::Incoming>| async move {
                    // Read the body as a real server would before answering.
                    let _ = request.into_body().collect().await;
                    let mut response = hyper::Response::new(Full::new(Bytes::from_static(b"{}")));
                    response.headers_mut().insert(
                        "content-type",
                        hyper::header::HeaderValue::from_static("application/x-amz-json-1.0"),
                    );
                    Ok::<_, Infallible>(response)
                },
            );
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
