//! Test support: a real HTTP/1.1 server that stores what the agent ships (the stand-in for `POST /v1/ingest` that
//! the issue asks for until the real endpoint is there), big-log generation, and a handle on the agent binary.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const KEY: &str = "rw_test_agent_key";

/// What the server answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Mode {
    Up = 0,
    /// The listening socket is closed: connections are refused.
    Down = 1,
    /// 503 with Retry-After: 1.
    Unavailable = 2,
    /// 401 for everything.
    BadKey = 3,
}

#[derive(Default)]
pub struct Received {
    /// Every delivery record in arrival order, duplicates included.
    pub deliveries: Vec<Value>,
    /// Times each delivery id arrived.
    pub seen: HashMap<String, u32>,
    pub finished: Vec<Value>,
    pub batches: u64,
    pub max_batch_records: usize,
    pub heartbeats: Vec<Value>,
    pub refused: u64,
    /// Batches answered 413 (over `Limits::max_records`) and 422 (holding `Limits::poisoned_id`).
    pub too_large: u64,
    pub malformed: u64,
}

/// What the server accepts; a test changes it through [`IngestServer::limits`].
pub struct Limits {
    /// More records than this in a batch is a 413.
    pub max_records: usize,
    /// A batch holding a delivery with this id is a 422, however often it is sent.
    pub poisoned_id: Option<String>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_records: 5000,
            poisoned_id: None,
        }
    }
}

impl Received {
    /// Ids in the order of their first arrival.
    pub fn unique_ids(&self) -> Vec<String> {
        let mut seen = std::collections::HashSet::new();
        self.deliveries
            .iter()
            .filter_map(|d| d["id"].as_str())
            .filter(|id| seen.insert(id.to_string()))
            .map(str::to_string)
            .collect()
    }
    pub fn wire_duplicates(&self) -> u64 {
        self.seen
            .values()
            .map(|&n| u64::from(n.saturating_sub(1)))
            .sum()
    }
}

pub struct IngestServer {
    pub addr: SocketAddr,
    pub received: Arc<Mutex<Received>>,
    pub limits: Arc<Mutex<Limits>>,
    mode: Arc<AtomicU8>,
    tls: AtomicBool,
}

/// A certificate authority made for one test, and the server configuration of a certificate it issued.
pub struct TestCa {
    /// The CA certificate, PEM: what the agent is told to trust.
    pub pem: String,
    pub server: Arc<rustls::ServerConfig>,
}

impl TestCa {
    /// A CA and a server certificate for `localhost` and 127.0.0.1 signed by it.
    pub fn new() -> TestCa {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
        use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "Relaywatch agent test CA");
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_key = KeyPair::generate().unwrap();
        let ca = params.self_signed(&ca_key).unwrap();
        let leaf_params =
            CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
        let leaf_key = KeyPair::generate().unwrap();
        let leaf = leaf_params.signed_by(&leaf_key, &ca, &ca_key).unwrap();
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
        let server = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![leaf.der().clone(), ca.der().clone()], key)
        .unwrap();
        TestCa {
            pem: ca.pem(),
            server: Arc::new(server),
        }
    }
}

impl IngestServer {
    pub fn start() -> IngestServer {
        Self::start_with(None)
    }

    /// The same server behind TLS with a certificate of `ca` (its URL is then `https://localhost:PORT`).
    pub fn start_tls(ca: &TestCa) -> IngestServer {
        Self::start_with(Some(Arc::clone(&ca.server)))
    }

    fn start_with(tls: Option<Arc<rustls::ServerConfig>>) -> IngestServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = IngestServer {
            addr,
            received: Arc::new(Mutex::new(Received::default())),
            limits: Arc::new(Mutex::new(Limits::default())),
            mode: Arc::new(AtomicU8::new(Mode::Up as u8)),
            tls: AtomicBool::new(false),
        };
        let (received, limits, mode) = (
            Arc::clone(&server.received),
            Arc::clone(&server.limits),
            Arc::clone(&server.mode),
        );
        server.tls.store(tls.is_some(), Ordering::SeqCst);
        std::thread::spawn(move || accept_loop(listener, addr, received, limits, mode, tls));
        server
    }

    pub fn url(&self) -> String {
        if self.tls.load(Ordering::SeqCst) {
            format!("https://localhost:{}", self.addr.port())
        } else {
            format!("http://{}", self.addr)
        }
    }

    pub fn set_mode(&self, mode: Mode) {
        self.mode.store(mode as u8, Ordering::SeqCst);
    }

    pub fn unique(&self) -> usize {
        self.received.lock().unwrap().seen.len()
    }
}

fn mode_of(m: &AtomicU8) -> Mode {
    match m.load(Ordering::SeqCst) {
        1 => Mode::Down,
        2 => Mode::Unavailable,
        3 => Mode::BadKey,
        _ => Mode::Up,
    }
}

fn accept_loop(
    listener: TcpListener,
    addr: SocketAddr,
    received: Arc<Mutex<Received>>,
    limits: Arc<Mutex<Limits>>,
    mode: Arc<AtomicU8>,
    tls: Option<Arc<rustls::ServerConfig>>,
) {
    let mut listener = Some(listener);
    loop {
        if mode_of(&mode) == Mode::Down {
            // Really gone: the port refuses connections.
            listener = None;
            std::thread::sleep(Duration::from_millis(10));
            continue;
        }
        let l = match &listener {
            Some(l) => l,
            None => match TcpListener::bind(addr) {
                Ok(l) => {
                    l.set_nonblocking(true).unwrap();
                    listener = Some(l);
                    listener.as_ref().unwrap()
                }
                Err(_) => {
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                }
            },
        };
        l.set_nonblocking(true).unwrap();
        match l.accept() {
            Ok((stream, _)) => {
                let (received, limits, mode) = (
                    Arc::clone(&received),
                    Arc::clone(&limits),
                    Arc::clone(&mode),
                );
                let tls = tls.clone();
                std::thread::spawn(move || {
                    let _ = serve_connection(stream, tls, &received, &limits, &mode);
                });
            }
            Err(_) => std::thread::sleep(Duration::from_millis(5)),
        }
    }
}

fn serve_connection(
    stream: TcpStream,
    tls: Option<Arc<rustls::ServerConfig>>,
    received: &Mutex<Received>,
    limits: &Mutex<Limits>,
    mode: &AtomicU8,
) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    match tls {
        None => serve_stream(stream, received, limits, mode),
        Some(config) => {
            let conn = rustls::ServerConnection::new(config).map_err(std::io::Error::other)?;
            serve_stream(
                rustls::StreamOwned::new(conn, stream),
                received,
                limits,
                mode,
            )
        }
    }
}

fn serve_stream<S: Read + Write>(
    stream: S,
    received: &Mutex<Received>,
    limits: &Mutex<Limits>,
    mode: &AtomicU8,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream);
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line)? == 0 {
            return Ok(());
        }
        let mut headers = HashMap::new();
        loop {
            let mut h = String::new();
            reader.read_line(&mut h)?;
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
            }
        }
        let len: usize = headers
            .get("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0u8; len];
        reader.read_exact(&mut body)?;
        let m = mode_of(mode);
        if m == Mode::Down {
            // Went down while this connection was open: drop it unanswered.
            return Ok(());
        }
        let (status, response) = if m == Mode::Unavailable {
            received.lock().unwrap().refused += 1;
            ("503 Service Unavailable\r\nRetry-After: 1", String::new())
        } else if m == Mode::BadKey
            || headers.get("authorization").map(String::as_str) != Some(&format!("Bearer {KEY}"))
        {
            (
                "401 Unauthorized",
                r#"{"code":"invalid_api_key"}"#.to_string(),
            )
        } else if request_line.starts_with("POST /v1/ingest ") {
            handle_ingest(&headers, &body, received, limits)
        } else if request_line.starts_with("POST /v1/agents/heartbeat ") {
            let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            received.lock().unwrap().heartbeats.push(v);
            ("204 No Content", String::new())
        } else {
            ("404 Not Found", String::new())
        };
        let out = reader.get_mut();
        write!(
            out,
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{response}",
            response.len()
        )?;
        out.flush()?;
    }
}

fn handle_ingest(
    headers: &HashMap<String, String>,
    body: &[u8],
    received: &Mutex<Received>,
    limits: &Mutex<Limits>,
) -> (&'static str, String) {
    let json = if headers.get("content-encoding").map(String::as_str) == Some("gzip") {
        let mut out = Vec::new();
        if flate2::read::GzDecoder::new(body)
            .read_to_end(&mut out)
            .is_err()
        {
            return ("422 Unprocessable Entity", "{}".into());
        }
        out
    } else {
        body.to_vec()
    };
    let Ok(batch) = serde_json::from_slice::<Value>(&json) else {
        return ("422 Unprocessable Entity", "{}".into());
    };
    let Some(records) = batch["records"].as_array() else {
        return ("422 Unprocessable Entity", "{}".into());
    };
    let mut r = received.lock().unwrap();
    {
        let limits = limits.lock().unwrap();
        if records.len() > limits.max_records {
            r.too_large += 1;
            return ("413 Payload Too Large", "{}".into());
        }
        if let Some(poisoned) = &limits.poisoned_id
            && records
                .iter()
                .any(|rec| rec["id"].as_str() == Some(poisoned))
        {
            r.malformed += 1;
            return (
                "422 Unprocessable Entity",
                r#"{"code":"validation_failed","detail":"this batch cannot be read"}"#.into(),
            );
        }
    }
    r.batches += 1;
    r.max_batch_records = r.max_batch_records.max(records.len());
    let (mut accepted, mut duplicate) = (0, 0);
    for rec in records {
        match rec["kind"].as_str() {
            Some("delivery") => {
                let id = rec["id"].as_str().unwrap_or_default().to_string();
                let n = r.seen.entry(id).or_insert(0);
                *n += 1;
                if *n == 1 {
                    accepted += 1;
                } else {
                    duplicate += 1;
                }
                r.deliveries.push(rec.clone());
            }
            _ => {
                accepted += 1;
                r.finished.push(rec.clone());
            }
        }
    }
    (
        "200 OK",
        serde_json::json!({"accepted": accepted, "duplicate": duplicate, "rejected": 0, "unrouted": 0, "rejections": []})
            .to_string(),
    )
}

/// The shared lab folder (`../shared` beside the workspace), or `None` (the caller then skips loudly).
pub fn shared_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("RELAYWATCH_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared"));
    dir.join("lab/maillog.sample").exists().then_some(dir)
}

/// Generates a realistic log of about `lines` lines with the lab's generator.
pub fn generate_log(dir: &Path, lines: usize, seed: u64) -> Option<Vec<Vec<u8>>> {
    let shared = shared_dir()?;
    let out = dir.join("generated.log");
    let status = Command::new("python3")
        .arg(shared.join("lab/gen_big_log.py"))
        .arg("--src")
        .arg(shared.join("lab/maillog.sample"))
        .arg("--out")
        .arg(&out)
        .args(["--lines", &lines.to_string(), "--seed", &seed.to_string()])
        .args([
            "--span-hours",
            &(lines as f64 / 20_000.0).max(0.5).to_string(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .ok()?;
    if !status.success() {
        return None;
    }
    let data = std::fs::read(&out).ok()?;
    std::fs::remove_file(&out).ok();
    Some(
        data.split_inclusive(|&b| b == b'\n')
            .map(<[u8]>::to_vec)
            .collect(),
    )
}

/// The lab sample log's lines (a real Postfix 3.7 run).
pub fn sample_lines() -> Option<Vec<Vec<u8>>> {
    let data = std::fs::read(shared_dir()?.join("lab/maillog.sample")).ok()?;
    Some(
        data.split_inclusive(|&b| b == b'\n')
            .map(<[u8]>::to_vec)
            .collect(),
    )
}

/// What a whole-log parse produces: the records as JSON, in order.
pub fn parse_whole(lines: &[Vec<u8>], tag_header: &str) -> Vec<Value> {
    use relaywatch_postfix::{Correlator, Parser, ParserConfig};
    let parser = Parser::new(ParserConfig {
        tag_headers: vec![tag_header.to_string()],
        reference_unix: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64,
        ..Default::default()
    });
    let mut correlator = Correlator::default();
    let mut out = Vec::new();
    for l in lines {
        correlator.push(&parser.parse_line(l), &mut out);
    }
    correlator.flush(&mut out);
    out.iter()
        .map(|r| serde_json::to_value(r).unwrap())
        .collect()
}

pub fn delivery_ids(records: &[Value]) -> Vec<String> {
    records
        .iter()
        .filter(|r| r["kind"] == "delivery")
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect()
}

/// The agent binary under test.
pub struct Agent {
    pub child: Child,
    pub stderr_path: PathBuf,
}

pub struct AgentSpec {
    pub api_url: String,
    pub state_dir: PathBuf,
    pub logs: Vec<PathBuf>,
    pub key_file: PathBuf,
    pub tag_header: String,
    pub extra: Vec<String>,
    pub env: Vec<(String, String)>,
}

impl AgentSpec {
    pub fn new(dir: &Path, api_url: &str, log: &Path) -> AgentSpec {
        let key_file = dir.join("agent.key");
        std::fs::write(&key_file, format!("{KEY}\n")).unwrap();
        AgentSpec {
            api_url: api_url.to_string(),
            state_dir: dir.join("state"),
            logs: vec![log.to_path_buf()],
            key_file,
            tag_header: "X-Delivery-Tag".into(),
            extra: vec![
                "--poll-interval-ms".into(),
                "20".into(),
                "--batch-linger-ms".into(),
                "200".into(),
                "--heartbeat-interval-secs".into(),
                "0".into(),
            ],
            env: vec![],
        }
    }

    pub fn spawn(&self, run: u32) -> Agent {
        let stderr_path = self.state_dir.with_extension(format!("stderr.{run}"));
        let stderr = std::fs::File::create(&stderr_path).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_relaywatch-agent"));
        cmd.arg("run")
            .args(["--api-url", &self.api_url])
            .arg("--api-key-file")
            .arg(&self.key_file)
            .arg("--state-dir")
            .arg(&self.state_dir)
            .args(["--tag-header", &self.tag_header])
            .args(["--host-name", "mx-test"]);
        for l in &self.logs {
            cmd.arg("--log").arg(l);
        }
        cmd.args(&self.extra)
            .env(
                "RELAYWATCH_AGENT_LOG",
                std::env::var("RELAYWATCH_AGENT_LOG").unwrap_or("info".into()),
            )
            .stdout(Stdio::null())
            .stderr(stderr);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        Agent {
            child: cmd.spawn().expect("start relaywatch-agent"),
            stderr_path,
        }
    }
}

impl Agent {
    /// SIGKILL: no chance to clean up, like a power cut for the process.
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn terminate(mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(s)) = self.child.try_wait() {
                return s;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                return self.child.wait().unwrap();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }
}

/// Waits until `cond` holds or `timeout` passes; returns whether it held.
pub fn wait_for(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    cond()
}

/// Appends bytes to a file (opened for append each time, like a logger that reopens).
pub fn append(path: &Path, bytes: &[u8]) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(bytes).unwrap();
}
