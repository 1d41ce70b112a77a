//! One webhook POST: vetted by the guard, sent to the vetted addresses only, signed, bounded in time, redirects
//! refused.

use crate::guard::{Guard, GuardError};
use crate::settings::WebhookSettings;
use crate::sign::signature_header;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Bytes of the receiver's answer kept for the delivery log.
const EXCERPT_BYTES: usize = 1024;

/// What to send.
#[derive(Debug, Clone)]
pub struct Delivery<'a> {
    pub url: &'a str,
    /// `webhook-id`: the same for every attempt of one event.
    pub id: &'a str,
    /// `webhook-timestamp`: this attempt's time, Unix seconds.
    pub timestamp: i64,
    /// The JSON envelope, exactly as signed.
    pub body: &'a [u8],
    /// Secrets to sign with: the current one first, the previous one during a rotation's overlap.
    pub secrets: &'a [String],
}

/// What one attempt came to.
#[derive(Debug, Clone)]
pub struct SendOutcome {
    /// 2xx: delivered.
    pub succeeded: bool,
    pub status: Option<u16>,
    pub latency: Duration,
    /// Why it failed, in words for the delivery log.
    pub error: Option<String>,
    pub response_excerpt: Option<String>,
}

impl SendOutcome {
    fn failed(started: Instant, error: String) -> Self {
        Self {
            succeeded: false,
            status: None,
            latency: started.elapsed(),
            error: Some(error),
            response_excerpt: None,
        }
    }
}

/// Sends webhooks. Cheap to clone.
#[derive(Clone)]
pub struct Sender {
    guard: Guard,
    tls: Arc<rustls::ClientConfig>,
    timeout: Duration,
}

impl Sender {
    pub fn new(settings: &WebhookSettings) -> anyhow::Result<Self> {
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
        Ok(Self {
            guard: Guard::new(settings)?,
            tls: Arc::new(tls),
            timeout: settings.timeout(),
        })
    }

    pub fn guard(&self) -> &Guard {
        &self.guard
    }

    /// One attempt. Never panics and never returns an error: every failure is an outcome with its reason.
    pub async fn send(&self, d: &Delivery<'_>) -> SendOutcome {
        let started = Instant::now();
        let vetted = match self.guard.vet(d.url).await {
            Ok(v) => v,
            Err(e @ GuardError::Forbidden { .. }) => {
                return SendOutcome::failed(started, format!("refused by the SSRF guard: {e}"));
            }
            Err(e) => return SendOutcome::failed(started, e.to_string()),
        };
        let signature = match signature_header(d.secrets, d.id, d.timestamp, d.body) {
            Ok(s) => s,
            Err(e) => return SendOutcome::failed(started, e.to_string()),
        };
        // A client per attempt: it knows only the vetted addresses of this host, and never a proxy.
        let mut builder = reqwest::Client::builder()
            .use_preconfigured_tls((*self.tls).clone())
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(self.timeout)
            .connect_timeout(self.timeout)
            .pool_max_idle_per_host(0)
            .user_agent(concat!("Relaywatch-Webhooks/", env!("CARGO_PKG_VERSION")));
        if let Some(host) = &vetted.host_name {
            builder = builder.resolve_to_addrs(host, &vetted.addrs);
        }
        let client = match builder.build() {
            Ok(c) => c,
            Err(e) => return SendOutcome::failed(started, format!("HTTP client: {e}")),
        };
        let request = client
            .post(vetted.url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("webhook-id", d.id)
            .header("webhook-timestamp", d.timestamp.to_string())
            .header("webhook-signature", signature)
            .body(d.body.to_vec());
        let timeout_ms = self.timeout.as_millis();
        let mut res = match request.send().await {
            Ok(r) => r,
            Err(e) if e.is_timeout() => {
                return SendOutcome::failed(started, format!("timed out after {timeout_ms} ms"));
            }
            Err(e) if e.is_connect() => {
                return SendOutcome::failed(started, format!("could not connect: {}", chain(&e)));
            }
            Err(e) => {
                return SendOutcome::failed(started, format!("request failed: {}", chain(&e)));
            }
        };
        let status = res.status();
        let mut excerpt: Vec<u8> = Vec::new();
        // The answer is read within the same time budget, and only its first bytes; a 2xx whose body never ends
        // still counts as delivered (the receiver accepted it).
        let _ = tokio::time::timeout(self.timeout.saturating_sub(started.elapsed()), async {
            while excerpt.len() < EXCERPT_BYTES {
                match res.chunk().await {
                    Ok(Some(chunk)) => excerpt.extend_from_slice(&chunk),
                    _ => break,
                }
            }
        })
        .await;
        excerpt.truncate(EXCERPT_BYTES);
        let excerpt = (!excerpt.is_empty()).then(|| String::from_utf8_lossy(&excerpt).into_owned());
        let latency = started.elapsed();
        let (succeeded, error) = if status.is_success() {
            (true, None)
        } else if status.is_redirection() {
            let to = res
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("nowhere");
            (
                false,
                Some(format!(
                    "the endpoint answered {status} (a redirect to {to}); redirects are not followed: point the webhook at the final URL"
                )),
            )
        } else {
            (false, Some(format!("the endpoint answered {status}")))
        };
        SendOutcome {
            succeeded,
            status: Some(status.as_u16()),
            latency,
            error,
            response_excerpt: excerpt,
        }
    }
}

/// An error and its causes, in one line (reqwest's own message is often just "error sending request").
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}
