//! Talking to the API: `POST /v1/ingest` with gzip bodies, `POST /v1/agents/heartbeat`, and the shipper loop that
//! drains the spool in order and turns acknowledgements into checkpoints.
//!
//! Response handling follows the ingest contract: 200 is an acknowledgement (records the server rejects are
//! permanent: logged, never resent); 413 splits the batch; 429 and 503 wait for `Retry-After`; other 5xx and network
//! errors back off exponentially with jitter; 422 puts the batch aside in `spool/rejected/` (resending cannot help);
//! 401, 403 and any other 4xx are a configuration error: the agent says so and stops rather than retry forever.

use std::io::{Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use relaywatch_domain::wire::{Heartbeat, IngestBatch, IngestResult, MAX_RECORDS_PER_BATCH};
use reqwest::StatusCode;
use tokio::sync::Notify;

use crate::config::{Config, Secret};
use crate::metrics::Metrics;
use crate::spool::Spool;
use crate::state::Checkpoint;

/// Why a request did not succeed.
#[derive(Debug)]
pub enum SendError {
    /// Worth retrying: network error, 5xx, 429.
    Retry {
        after: Option<Duration>,
        reason: String,
    },
    /// 413: the batch must be split.
    TooLarge,
    /// 422: the server cannot read the batch; resending it cannot help.
    Malformed(String),
    /// 401, 403 and other 4xx: wrong URL, key or scope.
    Config(String),
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SendError::Retry { reason, .. } => write!(f, "{reason}"),
            SendError::TooLarge => write!(f, "batch too large (413)"),
            SendError::Malformed(s) => write!(f, "batch refused as malformed: {s}"),
            SendError::Config(s) => write!(f, "configuration error: {s}"),
        }
    }
}

pub struct Client {
    http: reqwest::Client,
    base: String,
    key: Secret,
}

/// Builds the rustls configuration: the webpki roots, the system bundle when there is one, and the configured CA.
fn tls_config(config: &Config) -> Result<rustls::ClientConfig> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    // Two crypto providers are linked in the workspace; rustls needs to be told which one to use.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    for bundle in [
        "/etc/ssl/certs/ca-certificates.crt",
        "/etc/pki/tls/certs/ca-bundle.crt",
    ] {
        if let Ok(certs) = CertificateDer::pem_file_iter(bundle) {
            for cert in certs.flatten() {
                let _ = roots.add(cert);
            }
            break;
        }
    }
    if let Some(ca) = &config.tls_ca_file {
        let mut added = 0;
        for cert in CertificateDer::pem_file_iter(ca)
            .with_context(|| format!("reading the CA file {}", ca.display()))?
        {
            let cert = cert.with_context(|| format!("{} holds a bad certificate", ca.display()))?;
            roots
                .add(cert)
                .with_context(|| format!("{} holds a certificate rustls refuses", ca.display()))?;
            added += 1;
        }
        if added == 0 {
            anyhow::bail!("the CA file {} holds no certificate", ca.display());
        }
    }
    Ok(rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth())
}

fn retry_after(res: &reqwest::Response) -> Option<Duration> {
    let v = res
        .headers()
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?;
    v.trim()
        .parse::<u64>()
        .ok()
        .map(|s| Duration::from_secs(s.min(600)))
}

async fn classify(res: reqwest::Response) -> SendError {
    let status = res.status();
    let after = retry_after(&res);
    let body = res.text().await.unwrap_or_default();
    let body: String = body.chars().take(500).collect();
    match status {
        StatusCode::PAYLOAD_TOO_LARGE => SendError::TooLarge,
        StatusCode::UNPROCESSABLE_ENTITY => SendError::Malformed(body),
        StatusCode::TOO_MANY_REQUESTS | StatusCode::REQUEST_TIMEOUT => SendError::Retry {
            after,
            reason: format!("API answered {status}"),
        },
        s if s.is_server_error() => SendError::Retry {
            after,
            reason: format!("API answered {status}: {body}"),
        },
        StatusCode::UNAUTHORIZED => SendError::Config(format!(
            "the API refused the key (401): check api_key / api_key_file. {body}"
        )),
        StatusCode::FORBIDDEN => SendError::Config(format!(
            "the key lacks the ingest scope (403): create one with `relaywatch key create --scope ingest`. {body}"
        )),
        s => SendError::Config(format!("API answered {s}: {body}")),
    }
}

fn transport(e: reqwest::Error) -> SendError {
    // The chain says what actually failed (connection refused, TLS, timeout).
    let mut reason = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        reason.push_str(": ");
        reason.push_str(&s.to_string());
        source = s.source();
    }
    SendError::Retry {
        after: None,
        reason,
    }
}

impl Client {
    pub fn new(config: &Config) -> Result<Client> {
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(tls_config(config)?)
            .timeout(config.request_timeout)
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("relaywatch-agent/", env!("CARGO_PKG_VERSION")))
            .pool_max_idle_per_host(2)
            .build()
            .context("building the HTTP client")?;
        Ok(Client {
            http,
            base: config.api_url.clone(),
            key: config.api_key.clone(),
        })
    }

    /// Sends one gzip-compressed `IngestBatch` body.
    pub async fn ingest_gz(&self, body: Vec<u8>) -> Result<IngestResult, SendError> {
        let res = self
            .http
            .post(format!("{}/v1/ingest", self.base))
            .bearer_auth(self.key.expose())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(reqwest::header::CONTENT_ENCODING, "gzip")
            .body(body)
            .send()
            .await
            .map_err(transport)?;
        if res.status() == StatusCode::OK {
            let bytes = res.bytes().await.map_err(transport)?;
            // An acknowledgement we cannot read is still an acknowledgement: the batch arrived.
            return Ok(serde_json::from_slice(&bytes).unwrap_or_default());
        }
        Err(classify(res).await)
    }

    pub async fn heartbeat(&self, hb: &Heartbeat) -> Result<(), SendError> {
        let res = self
            .http
            .post(format!("{}/v1/agents/heartbeat", self.base))
            .bearer_auth(self.key.expose())
            .json(hb)
            .send()
            .await
            .map_err(transport)?;
        if res.status().is_success() {
            return Ok(());
        }
        Err(classify(res).await)
    }
}

/// Compresses an `IngestBatch` for the wire.
pub fn gzip_batch(batch: &IngestBatch) -> Result<Vec<u8>> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::fast());
    serde_json::to_writer(&mut enc, batch)?;
    Ok(enc.finish()?)
}

fn gunzip_batch(body: &[u8]) -> Result<IngestBatch> {
    let mut json = Vec::new();
    GzDecoder::new(body)
        .read_to_end(&mut json)
        .context("decompressing a spooled batch")?;
    serde_json::from_slice(&json).context("a spooled batch is not an IngestBatch")
}

/// Totals of one shipped batch.
#[derive(Debug, Default, Clone)]
pub struct Shipped {
    pub accepted: u64,
    pub duplicate: u64,
    pub rejected: u64,
    pub unrouted: u64,
}

impl Shipped {
    fn add(&mut self, r: &IngestResult) {
        self.accepted += r.accepted;
        self.duplicate += r.duplicate;
        self.rejected += r.rejected;
        self.unrouted += r.unrouted;
    }
}

/// Random numbers for jitter; quality does not matter, independence between agents does.
struct Jitter(u64);
impl Jitter {
    fn new() -> Jitter {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1)
            ^ (u64::from(std::process::id()) << 32);
        Jitter(seed | 1)
    }
    /// A factor in [0.5, 1.0).
    fn factor(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        0.5 + (self.0 >> 11) as f64 / (1u64 << 53) as f64 * 0.5
    }
}

/// Exponential backoff with jitter: 0.5 s, 1 s, 2 s, ... up to 60 s.
pub struct Backoff {
    attempt: u32,
    jitter: Jitter,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            attempt: 0,
            jitter: Jitter::new(),
        }
    }
}

impl Backoff {
    pub fn next(&mut self, retry_after: Option<Duration>) -> Duration {
        self.attempt = self.attempt.saturating_add(1);
        if let Some(after) = retry_after {
            return after;
        }
        let base = 0.5 * 2f64.powi(self.attempt.min(12) as i32 - 1);
        Duration::from_secs_f64(base.min(60.0) * self.jitter.factor())
    }
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

/// Sends a batch, splitting it below the record limit or after a 413. Rejections are logged here.
pub async fn send_batch(
    client: &Client,
    body: Vec<u8>,
    records: u64,
) -> Result<Shipped, SendError> {
    if records as usize <= MAX_RECORDS_PER_BATCH {
        match client.ingest_gz(body.clone()).await {
            Ok(r) => {
                log_rejections(&r);
                let mut s = Shipped::default();
                s.add(&r);
                return Ok(s);
            }
            Err(SendError::TooLarge) if records > 1 => {}
            Err(e) => return Err(e),
        }
    }
    // Split in halves (or in chunks of the record limit) and send each; all must succeed.
    let batch = gunzip_batch(&body).map_err(|e| SendError::Malformed(format!("{e:#}")))?;
    let n = batch.records.len();
    let chunk = if n > MAX_RECORDS_PER_BATCH {
        MAX_RECORDS_PER_BATCH
    } else {
        n.div_ceil(2).max(1)
    };
    let mut total = Shipped::default();
    for part in batch.records.chunks(chunk) {
        let sub = IngestBatch {
            agent: batch.agent.clone(),
            records: part.to_vec(),
        };
        let body = gzip_batch(&sub).map_err(|e| SendError::Malformed(format!("{e:#}")))?;
        let r = Box::pin(send_batch(client, body, part.len() as u64)).await?;
        total.accepted += r.accepted;
        total.duplicate += r.duplicate;
        total.rejected += r.rejected;
        total.unrouted += r.unrouted;
    }
    Ok(total)
}

fn log_rejections(r: &IngestResult) {
    // A noisy batch must not flood the log: the first few are enough to see the pattern.
    for rej in r.rejections.iter().take(5) {
        tracing::warn!(index = rej.index, id = rej.id.as_deref().unwrap_or("-"), reason = %rej.reason,
            "the API rejected a record (permanent; not resent)");
    }
    if r.rejections.len() > 5 {
        tracing::warn!(
            more = r.rejections.len() - 5,
            "more records rejected in this batch"
        );
    }
}

/// What the shipper loop works with.
pub struct Shipper {
    pub client: Arc<Client>,
    pub spool: Arc<Spool>,
    /// The last committed checkpoint; the shipper is its only writer while the agent runs.
    pub checkpoint: Checkpoint,
    pub state_dir: std::path::PathBuf,
    pub metrics: Arc<Metrics>,
    /// Notified by the reader when it spooled a batch.
    pub wake: Arc<Notify>,
    pub stop: Arc<AtomicBool>,
    pub stop_notify: Arc<Notify>,
}

/// Drains the spool in order until `stop`, committing each acknowledged batch to the checkpoint. Returns an error
/// only for configuration errors (and I/O errors on the state directory), which end the agent.
pub async fn ship_loop(shipper: Shipper) -> Result<()> {
    let Shipper {
        client,
        spool,
        mut checkpoint,
        state_dir,
        metrics,
        wake,
        stop,
        stop_notify,
    } = shipper;
    let mut backoff = Backoff::default();
    let mut failing_since: Option<std::time::Instant> = None;
    loop {
        if stop.load(Ordering::Relaxed) {
            return Ok(());
        }
        let Some(seq) = spool.oldest()? else {
            tokio::select! {
                _ = wake.notified() => {}
                _ = stop_notify.notified() => {}
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            }
            continue;
        };
        let (meta, body) = spool.read(seq)?;
        if meta.records > 0 {
            let result = tokio::select! {
                r = send_batch(&client, body, meta.records) => r,
                _ = stop_notify.notified() => return Ok(()),
            };
            match result {
                Ok(s) => {
                    if let Some(t) = failing_since.take() {
                        tracing::info!(
                            after_seconds = t.elapsed().as_secs(),
                            "API reachable again; draining the spool"
                        );
                    }
                    backoff.reset();
                    Metrics::add(&metrics.records_accepted, s.accepted);
                    Metrics::add(&metrics.records_duplicate, s.duplicate);
                    Metrics::add(&metrics.records_rejected, s.rejected);
                    Metrics::add(&metrics.records_unrouted, s.unrouted);
                    Metrics::add(&metrics.batches_shipped, 1);
                    tracing::debug!(
                        seq,
                        records = meta.records,
                        accepted = s.accepted,
                        duplicate = s.duplicate,
                        rejected = s.rejected,
                        "batch acknowledged"
                    );
                }
                Err(SendError::Retry { after, reason }) => {
                    Metrics::add(&metrics.ship_errors, 1);
                    let wait = backoff.next(after);
                    let msg = format!("shipping failed: {reason}");
                    if failing_since.is_none() {
                        failing_since = Some(std::time::Instant::now());
                        tracing::warn!(
                            spool_bytes = spool.bytes(),
                            "{msg}; batches stay in the spool, retrying in {wait:?}"
                        );
                    } else {
                        tracing::debug!("{msg}; retrying in {wait:?}");
                    }
                    metrics.set_error(msg);
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = stop_notify.notified() => return Ok(()),
                    }
                    continue;
                }
                Err(SendError::Malformed(why)) => {
                    let to = spool.quarantine(seq)?;
                    let msg = format!(
                        "the API refused batch {seq} as malformed (422); it was moved to {} and shipping goes on: {why}",
                        to.display()
                    );
                    tracing::error!("{msg}");
                    metrics.set_error(msg);
                    commit(&mut checkpoint, &state_dir, meta, &spool, &metrics, false)?;
                    continue;
                }
                Err(SendError::TooLarge) => {
                    let to = spool.quarantine(seq)?;
                    let msg = format!(
                        "a single record of batch {seq} is larger than the API accepts; moved to {}",
                        to.display()
                    );
                    tracing::error!("{msg}");
                    metrics.set_error(msg);
                    commit(&mut checkpoint, &state_dir, meta, &spool, &metrics, false)?;
                    continue;
                }
                Err(SendError::Config(msg)) => {
                    metrics.set_error(msg.clone());
                    return Err(anyhow!(msg));
                }
            }
        }
        commit(&mut checkpoint, &state_dir, meta, &spool, &metrics, true)?;
    }
}

/// Makes an acknowledged batch's reader state the checkpoint, then forgets the batch.
fn commit(
    checkpoint: &mut Checkpoint,
    state_dir: &std::path::Path,
    meta: crate::spool::SpoolMeta,
    spool: &Spool,
    metrics: &Metrics,
    remove: bool,
) -> Result<()> {
    checkpoint.acked_seq = meta.seq;
    checkpoint.streams.insert(meta.stream, meta.state);
    checkpoint.store(state_dir)?;
    if remove {
        spool.remove(meta.seq)?;
    }
    metrics.spool_bytes.store(spool.bytes(), Ordering::Relaxed);
    metrics
        .spool_batches
        .store(spool.files(), Ordering::Relaxed);
    Ok(())
}

/// Writes `bytes` with a gzip header, for tests and `backfill`.
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::fast());
    let _ = enc.write_all(bytes);
    enc.finish().unwrap_or_default()
}
