//! `atoll serve`: open the node's storage, recover its groups, serve the API.

use std::io::Write;
use std::time::{Duration, Instant};

use atoll_api::{Api, ApiConfig};
use atoll_cluster::{Cluster, ClusterOptions};
use atoll_replication::NodeOptions;
use atoll_storage::{Storage, StorageOptions};
use tokio::net::TcpListener;
use tracing::Instrument;

use crate::config::ServeArgs;

/// Errors that stop the server.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// Bad configuration.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The data directory could not be opened.
    #[error("cannot open data directory: {0}")]
    Storage(#[from] atoll_storage::StorageError),
    /// Recovery of the node failed.
    #[error("cannot start the node: {0}")]
    Cluster(#[from] atoll_cluster::ClusterError),
    /// Network or runtime failure.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Runs the server until SIGINT or SIGTERM.
pub fn run(args: ServeArgs) -> Result<(), ServeError> {
    let config = args.resolve()?;
    // A bare level applies to Atoll; the libraries below it are chatty at
    // info (openraft logs its whole state at start-up), so they get warn
    // unless the filter names them.
    let filter = if config.log_level.contains('=') {
        config.log_level.clone()
    } else {
        format!(
            "{},openraft=warn,openraft::core::heartbeat=error,fjall=warn,lsm_tree=warn",
            config.log_level
        )
    };
    crate::logging::init(&filter, config.log_format);
    let metrics = install_metrics_recorder();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let started = Instant::now();
        let listener = TcpListener::bind(&config.listen).await?;
        let local_addr = listener.local_addr()?;
        let storage = Storage::open(&config.data_dir, StorageOptions::default())?;
        let advertise_addr = config
            .advertise
            .clone()
            .or_else(|| config.cluster_listen.clone())
            .unwrap_or_else(|| local_addr.to_string());
        let mut initial_members = config.peers.clone();
        if !initial_members.is_empty() {
            initial_members.insert(config.node_id, advertise_addr.clone());
        }
        let peer_addrs = config
            .peers
            .iter()
            .filter(|(id, _)| **id != config.node_id)
            .map(|(id, addr)| (*id, addr.clone()))
            .collect();
        if !initial_members.is_empty() {
            tracing::info!(node_id = config.node_id, members = ?initial_members, "joining the cluster");
        }
        let cluster = Cluster::open(
            storage,
            ClusterOptions {
                node: NodeOptions {
                    node_id: config.node_id,
                    advertise_addr,
                    raft_listen_addr: config.cluster_listen.clone(),
                    peer_addrs,
                    ..NodeOptions::default()
                },
                split_size_bytes: config.partition_split_bytes,
                split_check_interval: Duration::from_millis(config.partition_check_ms),
                split_load_ops_per_second: config.partition_split_ops as f64,
                initial_members,
                join: config.join.clone(),
                api_addr: local_addr.to_string(),
                zone: config.zone.clone(),
                dead_node_after: Duration::from_millis(config.dead_node_after_ms),
                item_collection_limit_bytes: config.item_collection_limit_bytes,
                ttl_sweep_interval: Duration::from_millis(config.ttl_sweep_interval_ms),
                stream_retention: Duration::from_millis(config.stream_retention_ms),
                transaction_recovery_after: Duration::from_millis(config.transaction_recovery_ms),
            },
        )
        .await?;
        let api = Api::new(
            cluster.clone(),
            ApiConfig {
                default_region: config.region.clone(),
                endpoint_address: local_addr.to_string(),
                message_style: config.message_style,
                metrics: Some(metrics.export),
                max_global_indexes: config.max_global_indexes,
                account_id: config.account_id.clone(),
                ttl_change_interval_ms: config.ttl_change_interval_ms,
                stream_retention_ms: config.stream_retention_ms,
                keys: atoll_api::KeyStore::new(
                    config.auth_required,
                    config
                        .access_keys
                        .iter()
                        .map(|(id, secret)| (id.clone(), atoll_api::Secret::new(secret.clone()))),
                ),
            },
        );
        match (config.auth_required || !config.access_keys.is_empty(), config.access_keys.len()) {
            (false, _) => tracing::warn!(
                "authentication is open: requests signed with any credentials are accepted (configure an access key, or --auth required, to verify signatures)"
            ),
            (true, 0) => tracing::warn!(
                "authentication is required but no access key is configured: every request will be refused"
            ),
            (true, keys) => tracing::info!(keys, "authentication is required: requests must be signed with a configured access key"),
        }
        tokio::spawn(
            keep_metrics_up(metrics.handle).instrument(tracing::info_span!("metrics_upkeep")),
        );
        tracing::info!(
            address = %local_addr,
            data_dir = %config.data_dir.display(),
            startup_ms = started.elapsed().as_millis() as u64,
            "serving the DynamoDB API"
        );
        // The one line tools and tests wait for: the node now serves requests.
        let mut stdout = std::io::stdout();
        writeln!(stdout, "atoll: listening on http://{local_addr}")?;
        stdout.flush()?;
        let removed = cluster.clone();
        let stop = async move {
            tokio::select! {
                () = shutdown_signal() => {},
                () = removed.decommissioned() => {
                    tracing::info!("this node was decommissioned: the cluster no longer places anything here");
                },
            }
        };
        atoll_api::serve(listener, api, stop).await?;
        tracing::info!("shutting down");
        tokio::time::timeout(Duration::from_secs(10), cluster.shutdown())
            .await
            .map_err(|_| std::io::Error::other("shutdown timed out"))?;
        Ok(())
    })
}

/// Bucket bounds of latency histograms (seconds): 100 µs to 10 s.
const LATENCY_BUCKETS_SECONDS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];
/// Bucket bounds of the log writer's batch sizes.
const BATCH_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0];
/// How often histogram samples are folded into their buckets.
const METRICS_UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// The recorder every crate's `metrics` calls reach, and its renderer.
struct Metrics {
    export: atoll_api::MetricsExport,
    handle: metrics_exporter_prometheus::PrometheusHandle,
}

/// Installs the process's Prometheus recorder (histograms as buckets, not
/// summaries: cheaper to record, and aggregatable across nodes).
fn install_metrics_recorder() -> Metrics {
    use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
    let builder = PrometheusBuilder::new();
    let builder = builder
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS_SECONDS)
        .and_then(|b| {
            b.set_buckets_for_metric(
                Matcher::Prefix("atoll_log_writer_batch_".into()),
                BATCH_BUCKETS,
            )
        });
    let recorder = match builder {
        Ok(builder) => builder.build_recorder(),
        // Only an empty bucket list fails, and these are not empty.
        Err(e) => {
            tracing::warn!(error = %e, "metrics buckets refused; histograms become summaries");
            PrometheusBuilder::new().build_recorder()
        }
    };
    let handle = recorder.handle();
    if metrics::set_global_recorder(recorder).is_err() {
        tracing::warn!("a metrics recorder was already installed");
    }
    let render = handle.clone();
    Metrics {
        export: atoll_api::MetricsExport::new(move || render.render()),
        handle,
    }
}

/// Folds histogram samples into their buckets now and then, so that they
/// do not pile up between scrapes (or without any scrape).
async fn keep_metrics_up(handle: metrics_exporter_prometheus::PrometheusHandle) {
    let mut tick = tokio::time::interval(METRICS_UPKEEP_INTERVAL);
    loop {
        tick.tick().await;
        handle.run_upkeep();
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(signal) => signal,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {},
            _ = terminate.recv() => {},
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
