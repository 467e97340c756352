//! `atoll admin`: fetches a node's admin view (`GET /atoll/admin`) and
//! prints it as a table, or as the JSON the node sent with `--json`;
//! `atoll admin decommission ID` starts removing a node for good.

use clap::{Args, Subcommand};
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use serde_json::Value;

/// Flags of `atoll admin`.
#[derive(Args, Debug)]
pub struct AdminArgs {
    /// The node to ask.
    #[arg(long, env = "ATOLL_ENDPOINT", default_value = "http://127.0.0.1:8000")]
    pub endpoint: String,
    /// Print the node's JSON as it came.
    #[arg(long)]
    pub json: bool,
    /// What to do instead of showing the view.
    #[command(subcommand)]
    pub action: Option<AdminAction>,
}

/// Changes `atoll admin` makes to a cluster.
#[derive(Subcommand, Debug)]
pub enum AdminAction {
    /// Remove a node for good: its replicas and catalog seat move to other
    /// nodes, then the cluster forgets it and it stops by itself. Its id
    /// may not join again.
    Decommission {
        /// The node's id.
        node: u64,
    },
}

type AdminError = Box<dyn std::error::Error>;

/// Fetches and prints the admin view.
pub fn run(args: AdminArgs) -> Result<(), AdminError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    if let Some(AdminAction::Decommission { node }) = args.action {
        let path = format!("{}?node={node}", atoll_api::DECOMMISSION_PATH);
        let body = runtime.block_on(send(&args.endpoint, hyper::Method::POST, &path))?;
        if args.json {
            println!("{body}");
        } else {
            println!(
                "node {node} is leaving: its replicas move to other nodes, then it stops (watch with `atoll admin`)"
            );
        }
        return Ok(());
    }
    let body = runtime.block_on(send(
        &args.endpoint,
        hyper::Method::GET,
        atoll_api::ADMIN_PATH,
    ))?;
    if args.json {
        println!("{body}");
        return Ok(());
    }
    let report: Value = serde_json::from_str(&body)?;
    print!("{}", render(&report));
    Ok(())
}

async fn send(endpoint: &str, method: hyper::Method, path: &str) -> Result<String, AdminError> {
    let authority = endpoint
        .strip_prefix("http://")
        .ok_or("the endpoint must be an http:// URL")?
        .trim_end_matches('/');
    let stream = tokio::net::TcpStream::connect(authority).await?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    let request = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header("host", authority)
        .body(Empty::<Bytes>::new())?;
    let response = sender.send_request(request).await?;
    let status = response.status();
    let body = response.into_body().collect().await?.to_bytes();
    if !status.is_success() {
        let message = serde_json::from_slice::<Value>(&body)
            .ok()
            .and_then(|v| v["message"].as_str().map(str::to_string))
            .unwrap_or_default();
        return Err(format!("{endpoint} answered {status} {message}").into());
    }
    Ok(String::from_utf8_lossy(&body).into_owned())
}

fn render(report: &Value) -> String {
    let mut out = String::new();
    let node = report["node_id"].as_u64().unwrap_or_default();
    out.push_str(&format!("answered by node {node}\n\nnodes:\n"));
    for n in report["nodes"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "  node {} api {} cluster {} zone {} replicas {}{}\n",
            n["id"],
            n["api_addr"].as_str().unwrap_or("-"),
            n["raft_addr"].as_str().unwrap_or("-"),
            n["zone"].as_str().unwrap_or("-"),
            n["replica_count"],
            match (n["down"].as_bool(), n["leaving"].as_bool()) {
                (Some(true), _) => " DOWN",
                (_, Some(true)) => " LEAVING",
                _ => "",
            },
        ));
    }
    for table in report["tables"].as_array().into_iter().flatten() {
        let partitions = table["partitions"].as_array().cloned().unwrap_or_default();
        out.push_str(&format!(
            "\ntable {} ({}, {} partition{})\n",
            table["name"].as_str().unwrap_or("?"),
            table["status"].as_str().unwrap_or("?"),
            partitions.len(),
            if partitions.len() == 1 { "" } else { "s" }
        ));
        out.push_str(&format!(
            "  {:>6}  {:<33}  {:>10}  {:>12}  {:>6}  {:<8}  {:>9}  {:>9}  {:>7}\n",
            "group",
            "tokens",
            "items",
            "bytes",
            "leader",
            "replicas",
            "reads/s",
            "writes/s",
            "outbox"
        ));
        for p in &partitions {
            let replicas: Vec<String> = p["replicas"]
                .as_array()
                .map(|r| r.iter().map(|id| id.to_string()).collect())
                .unwrap_or_default();
            out.push_str(&format!(
                "  {:>6}  {}-{}  {:>10}  {:>12}  {:>6}  {:<8}  {:>9.1}  {:>9.1}  {:>7}\n",
                p["group_id"].to_string(),
                p["start_token"].as_str().unwrap_or("?"),
                p["end_token"].as_str().unwrap_or("?"),
                p["item_count"].to_string(),
                p["size_bytes"].to_string(),
                p["leader"]
                    .as_u64()
                    .map_or("-".to_string(), |l| l.to_string()),
                replicas.join(","),
                p["reads_per_second"].as_f64().unwrap_or(0.0),
                p["writes_per_second"].as_f64().unwrap_or(0.0),
                p["outbox_records"].as_u64().unwrap_or(0),
            ));
        }
    }
    out
}
