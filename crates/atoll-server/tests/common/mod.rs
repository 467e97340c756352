//! Shared harness for the end-to-end tests: runs the real `atoll` binary and
//! talks to it over HTTP, either through `aws-sdk-dynamodb` or with a tiny
//! hand-written HTTP/1.1 client for input no SDK would ever send.
//!
//! Each test file is its own binary and uses a subset of this module.
#![allow(dead_code)]

pub mod cluster;

use std::collections::HashMap;
use std::fmt::Debug;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_sdk_dynamodb::config::timeout::TimeoutConfig;
use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
    ScalarAttributeType,
};

pub const REGION: &str = "us-east-1";
pub const ACCESS_KEY: &str = "AKIDATOLLTESTS";
pub const SECRET_KEY: &str = "atoll-test-secret-key";
const LISTENING_PREFIX: &str = "atoll: listening on ";
const STARTUP_TIMEOUT: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------------------
// The server process
// ---------------------------------------------------------------------------

/// One running `atoll serve` process on an ephemeral loopback port.
pub struct TestServer {
    child: Mutex<Option<Child>>,
    endpoint: String,
    data_dir: PathBuf,
    /// Holds the data dir (unless the caller supplied one) and stderr logs.
    scratch: tempfile::TempDir,
    stderr_path: PathBuf,
    stdout_lines: Arc<Mutex<Vec<String>>>,
    starts: u32,
    /// Flags after the defaults, kept for restarts.
    extra_args: Vec<String>,
    /// Fail points armed in the server (`FAILPOINTS`), kept for restarts.
    fail_points: Option<String>,
}

impl TestServer {
    /// Starts a server on a fresh, private data directory.
    pub fn start() -> TestServer {
        Self::start_with_args(&[])
    }

    /// Starts a server on a fresh data directory with extra `serve` flags.
    pub fn start_with_args(args: &[&str]) -> TestServer {
        let scratch = scratch_dir();
        let data_dir = scratch.path().join("data");
        let args = args.iter().map(|a| a.to_string()).collect();
        Self::spawn(scratch, data_dir, 1, args, None)
    }

    /// Starts a server whose fail points `fail_points` arms (fail-rs's
    /// `FAILPOINTS` syntax: `name=action;...`).
    pub fn start_with_fail_points(fail_points: &str) -> TestServer {
        let scratch = scratch_dir();
        let data_dir = scratch.path().join("data");
        Self::spawn(
            scratch,
            data_dir,
            1,
            Vec::new(),
            Some(fail_points.to_string()),
        )
    }

    /// Starts a server on `data_dir` (which outlives the server).
    pub fn start_in(data_dir: &Path) -> TestServer {
        Self::spawn(scratch_dir(), data_dir.to_path_buf(), 1, Vec::new(), None)
    }

    fn spawn(
        scratch: tempfile::TempDir,
        data_dir: PathBuf,
        starts: u32,
        extra_args: Vec<String>,
        fail_points: Option<String>,
    ) -> TestServer {
        let stderr_path = scratch.path().join(format!("stderr-{starts}.log"));
        let stderr = File::create(&stderr_path).expect("create stderr log");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_atoll"));
        cmd.arg("serve")
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--data-dir")
            .arg(&data_dir)
            .args(&extra_args)
            // Settings from the environment must not leak into the tests.
            .env_remove("ATOLL_CONFIG")
            .env_remove("ATOLL_LISTEN")
            .env_remove("ATOLL_DATA_DIR")
            .env_remove("ATOLL_REGION")
            .env_remove("ATOLL_NODE_ID")
            .env_remove("FAILPOINTS")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr));
        if let Some(fail_points) = &fail_points {
            cmd.env("FAILPOINTS", fail_points);
        }
        let mut child = spawn_tied_to_this_process(cmd);

        // Forward stdout lines; keep draining after the listening line so the
        // server never blocks on a full pipe.
        let stdout = child.stdout.take().expect("piped stdout");
        let stdout_lines = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel::<String>();
        let lines = Arc::clone(&stdout_lines);
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                lines.lock().unwrap().push(line.clone());
                let _ = tx.send(line);
            }
        });

        let deadline = Instant::now() + STARTUP_TIMEOUT;
        let endpoint = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some(url) = line.strip_prefix(LISTENING_PREFIX) {
                        break url.trim().to_string();
                    }
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let status = child.wait().ok();
                    panic!(
                        "atoll exited ({status:?}) before printing its listening line.\n--- stderr ---\n{}",
                        read_log(&stderr_path)
                    );
                }
                Err(RecvTimeoutError::Timeout) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "atoll printed no listening line within {STARTUP_TIMEOUT:?}.\n--- stdout ---\n{:?}\n--- stderr ---\n{}",
                        stdout_lines.lock().unwrap(),
                        read_log(&stderr_path)
                    );
                }
            }
        };
        assert!(
            endpoint.starts_with("http://127.0.0.1:") && !endpoint.ends_with(":0"),
            "listening line names an unexpected address: {endpoint}"
        );
        TestServer {
            child: Mutex::new(Some(child)),
            endpoint,
            data_dir,
            scratch,
            stderr_path,
            stdout_lines,
            starts,
            extra_args,
            fail_points,
        }
    }

    /// `http://127.0.0.1:PORT`
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// `127.0.0.1:PORT`
    pub fn addr(&self) -> &str {
        self.endpoint.trim_start_matches("http://")
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    pub fn pid(&self) -> u32 {
        self.child
            .lock()
            .unwrap()
            .as_ref()
            .expect("server is running")
            .id()
    }

    /// Everything the current process printed on stdout so far.
    pub fn stdout_lines(&self) -> Vec<String> {
        self.stdout_lines.lock().unwrap().clone()
    }

    /// The current process's stderr so far (for failure messages).
    pub fn stderr(&self) -> String {
        read_log(&self.stderr_path)
    }

    /// A fresh SDK client for this server: plain HTTP, static credentials,
    /// no retries (a test must see exactly what the server answered).
    pub fn client(&self) -> Client {
        sdk_client(&self.endpoint)
    }

    /// A DynamoDB Streams client for this server, built like `client`.
    pub fn streams_client(&self) -> aws_sdk_dynamodbstreams::Client {
        streams_client_at(&self.endpoint)
    }

    /// SIGKILL: the process dies without any chance to flush or clean up.
    pub fn kill9(&self) {
        self.stop_with_signal(libc::SIGKILL, Duration::from_secs(10));
    }

    /// SIGTERM and wait for the exit; returns the exit status.
    pub fn terminate(&self, timeout: Duration) -> ExitStatus {
        self.stop_with_signal(libc::SIGTERM, timeout)
    }

    /// Sends `signal` and waits (up to `timeout`) for the process to exit.
    pub fn stop_with_signal(&self, signal: libc::c_int, timeout: Duration) -> ExitStatus {
        let mut guard = self.child.lock().unwrap();
        let child = guard.as_mut().expect("server is running");
        let pid = libc::pid_t::try_from(child.id()).expect("pid fits pid_t");
        // SAFETY: plain kill(2) on a child we own and have not reaped yet.
        let rc = unsafe { libc::kill(pid, signal) };
        assert_eq!(rc, 0, "kill({pid}, {signal}) failed");
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = child.try_wait().expect("waitpid") {
                guard.take();
                return status;
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                guard.take();
                panic!(
                    "atoll did not exit within {timeout:?} after signal {signal}.\n--- stderr ---\n{}",
                    read_log(&self.stderr_path)
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Stops the process if it still runs (SIGKILL) and starts a new one on
    /// the same data directory; the port changes.
    pub fn restart(&mut self) {
        if self.child.lock().unwrap().is_some() {
            self.kill9();
        }
        let scratch = std::mem::replace(&mut self.scratch, scratch_dir());
        let data_dir = self.data_dir.clone();
        let next = Self::spawn(
            scratch,
            data_dir,
            self.starts + 1,
            self.extra_args.clone(),
            self.fail_points.clone(),
        );
        // The replaced value is an empty scratch dir: dropping it is harmless.
        *self = next;
    }

    fn shutdown(&self) {
        if let Ok(mut guard) = self.child.lock()
            && let Some(mut child) = guard.take()
        {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn scratch_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("atoll-e2e-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .expect("create scratch dir")
}

fn read_log(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| format!("<cannot read {}: {e}>", path.display()))
}

/// Spawns `cmd` from a thread that lives as long as the test process, with
/// PR_SET_PDEATHSIG so the server dies with the test binary even when no
/// destructor runs (statics, aborts).  PDEATHSIG fires when the *thread* that
/// forked exits, hence the dedicated, never-ending spawner thread.
fn spawn_tied_to_this_process(mut cmd: Command) -> Child {
    type Job = (Command, mpsc::Sender<std::io::Result<Child>>);
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<Job>>> = OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("atoll-spawner".into())
            .spawn(move || {
                for (mut cmd, reply) in rx {
                    let _ = reply.send(cmd.spawn());
                }
                // Keep this thread alive until the process exits.
                loop {
                    std::thread::park();
                }
            })
            .expect("spawn spawner thread");
        Mutex::new(tx)
    });
    // SAFETY: the closure only calls async-signal-safe functions.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let (reply_tx, reply_rx) = mpsc::channel();
    spawner
        .lock()
        .unwrap()
        .send((cmd, reply_tx))
        .expect("spawner thread alive");
    reply_rx
        .recv()
        .expect("spawner replied")
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", env!("CARGO_BIN_EXE_atoll")))
}

/// The server shared by all tests of one test binary. It is started on first
/// use and killed (and its directory removed) when the test binary exits.
pub fn shared_server() -> &'static TestServer {
    static SHARED: OnceLock<TestServer> = OnceLock::new();
    extern "C" fn stop_shared() {
        if let Some(server) = SHARED.get() {
            server.shutdown();
            let _ = std::fs::remove_dir_all(server.scratch.path());
        }
    }
    SHARED.get_or_init(|| {
        let server = TestServer::start();
        // SAFETY: registering a plain extern "C" fn without captures.
        unsafe {
            libc::atexit(stop_shared);
        }
        server
    })
}

pub fn sdk_client(endpoint: &str) -> Client {
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .credentials_provider(Credentials::new(
            ACCESS_KEY,
            SECRET_KEY,
            None,
            None,
            "atoll-tests",
        ))
        .endpoint_url(endpoint)
        .http_client(aws_smithy_http_client::Builder::new().build_http())
        .retry_config(RetryConfig::disabled())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(5))
                .operation_timeout(Duration::from_secs(30))
                .build(),
        )
        .build();
    Client::from_conf(config)
}

/// A DynamoDB Streams client of the server at `endpoint`, built like
/// `sdk_client`: the same credentials and region, plain HTTP, no retries.
pub fn streams_client_at(endpoint: &str) -> aws_sdk_dynamodbstreams::Client {
    use aws_sdk_dynamodbstreams::config::retry::RetryConfig;
    use aws_sdk_dynamodbstreams::config::timeout::TimeoutConfig;
    use aws_sdk_dynamodbstreams::config::{BehaviorVersion, Credentials, Region};
    let config = aws_sdk_dynamodbstreams::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .credentials_provider(Credentials::new(
            ACCESS_KEY,
            SECRET_KEY,
            None,
            None,
            "atoll-tests",
        ))
        .endpoint_url(endpoint)
        .http_client(aws_smithy_http_client::Builder::new().build_http())
        .retry_config(RetryConfig::disabled())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(5))
                .operation_timeout(Duration::from_secs(10))
                .build(),
        )
        .build();
    aws_sdk_dynamodbstreams::Client::from_conf(config)
}

// ---------------------------------------------------------------------------
// Errors as a client sees them
// ---------------------------------------------------------------------------

/// A service error as the SDK decoded it: the short code (`__type` after
/// `#`) and the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub code: String,
    pub message: String,
}

/// Unwraps the error of an SDK call; panics on success or on a non-service
/// error (connection refused, timeouts, unparseable responses).
#[track_caller]
pub fn api_error<T: Debug, E>(result: Result<T, E>) -> ApiError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match result {
        Ok(output) => panic!("expected an error response, got success: {output:?}"),
        Err(err) => match err.code() {
            Some(code) => ApiError {
                code: code.to_string(),
                message: err.message().unwrap_or_default().to_string(),
            },
            None => panic!(
                "expected a service error, got: {}",
                DisplayErrorContext(&err)
            ),
        },
    }
}

/// Asserts an exact error code and message.
#[track_caller]
pub fn assert_error<T: Debug, E>(result: Result<T, E>, code: &str, message: &str)
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let err = api_error(result);
    assert_eq!(
        (err.code.as_str(), err.message.as_str()),
        (code, message),
        "unexpected error"
    );
}

/// Unwraps a successful SDK call with a readable failure.
#[track_caller]
pub fn ok<T, E: std::error::Error + 'static>(result: Result<T, E>) -> T {
    match result {
        Ok(v) => v,
        Err(e) => panic!("request failed: {}", DisplayErrorContext(&e)),
    }
}

// ---------------------------------------------------------------------------
// Building requests
// ---------------------------------------------------------------------------

pub fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_string())
}

pub fn n(v: &str) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

pub fn b(v: &[u8]) -> AttributeValue {
    AttributeValue::B(aws_sdk_dynamodb::primitives::Blob::new(v.to_vec()))
}

pub fn item<const N: usize>(pairs: [(&str, AttributeValue); N]) -> HashMap<String, AttributeValue> {
    pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

pub fn key_element(name: &str, key_type: KeyType) -> KeySchemaElement {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(key_type)
        .build()
        .unwrap()
}

pub fn attr_def(name: &str, ty: ScalarAttributeType) -> AttributeDefinition {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(ty)
        .build()
        .unwrap()
}

/// Creates an on-demand table with a `pk` hash key (and an optional `sk`
/// range key) of the given types.
pub async fn create_table(
    client: &Client,
    name: &str,
    hash: ScalarAttributeType,
    range: Option<ScalarAttributeType>,
) {
    let mut req = client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key_element("pk", KeyType::Hash))
        .attribute_definitions(attr_def("pk", hash));
    if let Some(range) = range {
        req = req
            .key_schema(key_element("sk", KeyType::Range))
            .attribute_definitions(attr_def("sk", range));
    }
    ok(req.send().await);
    wait_active(client, name).await;
}

/// Polls DescribeTable until the table is ACTIVE (10 s at most).
pub async fn wait_active(client: &Client, name: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = ok(client.describe_table().table_name(name).send().await);
        let status = out.table().and_then(|t| t.table_status()).cloned();
        if status == Some(aws_sdk_dynamodb::types::TableStatus::Active) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "table {name} still {status:?} after 10 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// ---------------------------------------------------------------------------
// Raw HTTP/1.1 (for requests the SDK cannot send)
// ---------------------------------------------------------------------------

#[derive(Debug, Clone)]
pub struct RawRequest {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Add a SigV4 `Authorization` header (and `X-Amz-Date`) when sending.
    pub sign: bool,
    /// The region in the signature's credential scope.
    pub region: String,
    /// Sign as of this time (seconds since the epoch) rather than now.
    pub signed_at: Option<u64>,
}

impl RawRequest {
    /// `POST /` with the DynamoDB JSON 1.0 content type, the given target
    /// (`None` leaves the header out) and a signed Authorization header.
    pub fn dynamodb(target: Option<&str>, body: impl Into<Vec<u8>>) -> RawRequest {
        let mut headers = vec![(
            "Content-Type".to_string(),
            "application/x-amz-json-1.0".to_string(),
        )];
        if let Some(target) = target {
            headers.push(("X-Amz-Target".to_string(), target.to_string()));
        }
        RawRequest {
            method: "POST".into(),
            path: "/".into(),
            headers,
            body: body.into(),
            sign: true,
            region: REGION.into(),
            signed_at: None,
        }
    }

    /// `DynamoDB_20120810.<op>` with a JSON body.
    pub fn op(op: &str, body: &serde_json::Value) -> RawRequest {
        Self::dynamodb(
            Some(&format!("DynamoDB_20120810.{op}")),
            serde_json::to_vec(body).unwrap(),
        )
    }

    pub fn get(path: &str) -> RawRequest {
        RawRequest {
            method: "GET".into(),
            path: path.into(),
            headers: Vec::new(),
            body: Vec::new(),
            sign: false,
            region: REGION.into(),
            signed_at: None,
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> RawRequest {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// Signs for `region` instead of us-east-1.
    pub fn region(mut self, region: &str) -> RawRequest {
        self.region = region.to_string();
        self
    }

    pub fn unsigned(mut self) -> RawRequest {
        self.sign = false;
        self
    }

    /// Signs as of `unix` seconds (a client whose clock is off).
    pub fn signed_at(mut self, unix: u64) -> RawRequest {
        self.signed_at = Some(unix);
        self
    }

    /// The request as bytes on the wire (signed now, if `sign`).
    pub fn to_bytes(&self, host: &str) -> Vec<u8> {
        let mut headers = self.headers.clone();
        headers.push(("Host".to_string(), host.to_string()));
        if self.sign {
            let now = self.signed_at.unwrap_or_else(|| {
                SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .unwrap()
                    .as_secs()
            });
            let amz_date = amz_date(now);
            headers.push(("X-Amz-Date".to_string(), amz_date.clone()));
            let auth = sigv4_authorization(
                &self.method,
                &self.path,
                &headers,
                &self.body,
                &amz_date,
                &self.region,
            );
            headers.push(("Authorization".to_string(), auth));
        }
        let mut out = format!("{} {} HTTP/1.1\r\n", self.method, self.path).into_bytes();
        for (k, v) in &headers {
            out.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
        }
        if !self.body.is_empty() || self.method == "POST" {
            out.extend_from_slice(format!("Content-Length: {}\r\n", self.body.len()).as_bytes());
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&self.body);
        out
    }
}

#[derive(Debug, Clone)]
pub struct RawResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawResponse {
    /// Case-insensitive header lookup (first occurrence).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("response body is not JSON ({e}): {:?}", self.text()))
    }

    /// The `__type` of a JSON error body.
    pub fn error_type(&self) -> String {
        self.json()["__type"]
            .as_str()
            .unwrap_or_else(|| panic!("no __type in {:?}", self.text()))
            .to_string()
    }
}

/// One keep-alive HTTP/1.1 connection.
pub struct RawConnection {
    host: String,
    reader: BufReader<TcpStream>,
}

impl RawConnection {
    pub fn open(addr: &str) -> RawConnection {
        let stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
        stream
            .set_read_timeout(Some(Duration::from_secs(15)))
            .unwrap();
        stream.set_nodelay(true).unwrap();
        RawConnection {
            host: addr.to_string(),
            reader: BufReader::new(stream),
        }
    }

    pub fn send(&mut self, req: &RawRequest) -> RawResponse {
        self.send_bytes(&req.to_bytes(&self.host))
    }

    /// Sends pre-formatted bytes (for hand-made requests) and reads one response.
    pub fn send_bytes(&mut self, bytes: &[u8]) -> RawResponse {
        self.reader
            .get_mut()
            .write_all(bytes)
            .expect("write request");
        read_response(&mut self.reader)
    }

    /// Reads the next response (after pipelined requests).
    pub fn read_next(&mut self) -> RawResponse {
        read_response(&mut self.reader)
    }
}

/// Sends one request on a new connection.
pub fn raw(addr: &str, req: &RawRequest) -> RawResponse {
    RawConnection::open(addr).send(req)
}

fn read_line(reader: &mut BufReader<TcpStream>) -> String {
    let mut line = String::new();
    let n = reader.read_line(&mut line).expect("read response line");
    assert!(n > 0, "connection closed before a complete response");
    line.trim_end_matches(['\r', '\n']).to_string()
}

fn read_response(reader: &mut BufReader<TcpStream>) -> RawResponse {
    let status_line = read_line(reader);
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    assert!(
        version.starts_with("HTTP/1."),
        "bad status line {status_line:?}"
    );
    let status: u16 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let mut headers = Vec::new();
    loop {
        let line = read_line(reader);
        if line.is_empty() {
            break;
        }
        let (k, v) = line
            .split_once(':')
            .unwrap_or_else(|| panic!("bad header line {line:?}"));
        headers.push((k.trim().to_string(), v.trim().to_string()));
    }
    let find = |name: &str| {
        headers
            .iter()
            .find(|(k, _): &&(String, String)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    let mut body = Vec::new();
    if find("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        loop {
            let size_line = read_line(reader);
            let size = usize::from_str_radix(size_line.split(';').next().unwrap().trim(), 16)
                .unwrap_or_else(|_| panic!("bad chunk size {size_line:?}"));
            if size == 0 {
                // Trailers until the empty line.
                while !read_line(reader).is_empty() {}
                break;
            }
            let mut chunk = vec![0; size];
            reader.read_exact(&mut chunk).expect("read chunk");
            body.extend_from_slice(&chunk);
            assert_eq!(read_line(reader), "", "chunk not followed by CRLF");
        }
    } else if let Some(len) = find("content-length") {
        let len: usize = len.parse().expect("numeric Content-Length");
        body.resize(len, 0);
        reader.read_exact(&mut body).expect("read body");
    } else {
        reader.read_to_end(&mut body).expect("read body to EOF");
    }
    RawResponse {
        status,
        headers,
        body,
    }
}

// ---------------------------------------------------------------------------
// SigV4 (so the raw requests stay valid once signatures are verified)
// ---------------------------------------------------------------------------

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    hex(&sha2::Sha256::digest(data))
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    use hmac::Mac;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key).expect("any key length");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

/// `YYYYMMDDTHHMMSSZ` for a Unix time.
pub fn amz_date(unix: u64) -> String {
    let days = i64::try_from(unix / 86_400).unwrap();
    let secs = unix % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}{month:02}{day:02}T{:02}{:02}{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

fn sigv4_authorization(
    method: &str,
    path: &str,
    headers: &[(String, String)],
    body: &[u8],
    amz_date: &str,
    region: &str,
) -> String {
    let date = &amz_date[..8];
    let mut canonical: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    canonical.sort();
    let signed_headers = canonical
        .iter()
        .map(|(k, _)| k.as_str())
        .collect::<Vec<_>>()
        .join(";");
    let canonical_headers: String = canonical
        .iter()
        .map(|(k, v)| format!("{k}:{v}\n"))
        .collect();
    let canonical_request = format!(
        "{method}\n{path}\n\n{canonical_headers}\n{signed_headers}\n{}",
        sha256_hex(body)
    );
    let scope = format!("{date}/{region}/dynamodb/aws4_request");
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        sha256_hex(canonical_request.as_bytes())
    );
    let mut key = hmac(format!("AWS4{SECRET_KEY}").as_bytes(), date.as_bytes());
    for part in [region, "dynamodb", "aws4_request"] {
        key = hmac(&key, part.as_bytes());
    }
    let signature = hex(&hmac(&key, string_to_sign.as_bytes()));
    format!(
        "AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/{scope}, SignedHeaders={signed_headers}, Signature={signature}"
    )
}
