//! Test support for Relaywatch's end-to-end and API tests: a real server on port 0 with a fresh database per test.
//!
//! Every test database is new: a SQLite file in a temporary directory, or, when `RELAYWATCH_TEST_DATABASE_URL`
//! points at a PostgreSQL server (`postgres://postgres@127.0.0.1:5432/postgres`), a database created for the test
//! (named `rw_test_*`; CI drops old ones before a run).

pub mod dns;
pub mod dnsbl;
pub mod receiver;

use relaywatch_api::settings::Secret;
use relaywatch_api::{Application, Settings};
use relaywatch_domain::{Scope, ScopeSet, TenantId};
use relaywatch_store::Store;
use relaywatch_store::api_keys::NewKey;
use reqwest::{Method, Response};
use serde_json::Value;

/// The signing secret of test servers, so tests can forge tokens with the right and the wrong key.
pub const TEST_SIGNING_SECRET: &str = "relaywatch-test-signing-secret-0123456789abcdef";
/// The JSON body limit of test servers.
pub const TEST_MAX_BODY_BYTES: usize = 64 * 1024;

/// A database for one test.
pub struct TestDatabase {
    pub url: String,
    pub backend: &'static str,
    _dir: tempfile::TempDir,
}

impl TestDatabase {
    pub async fn create() -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        match std::env::var("RELAYWATCH_TEST_DATABASE_URL")
            .ok()
            .filter(|u| !u.is_empty())
        {
            Some(admin_url) => {
                let name = format!("rw_test_{}", uuid::Uuid::now_v7().simple());
                let admin = Store::connect(&admin_url)
                    .await
                    .expect("connect to RELAYWATCH_TEST_DATABASE_URL");
                use relaywatch_store::sea_orm::ConnectionTrait;
                admin
                    .connection()
                    .execute_unprepared(&format!("CREATE DATABASE {name}"))
                    .await
                    .expect("create test database");
                admin.connection().clone().close().await.ok();
                let base = admin_url
                    .rsplit_once('/')
                    .map(|(b, _)| b)
                    .unwrap_or(&admin_url);
                Self {
                    url: format!("{base}/{name}"),
                    backend: "postgres",
                    _dir: dir,
                }
            }
            None => {
                let url = format!(
                    "sqlite://{}?mode=rwc",
                    dir.path().join("relaywatch.db").display()
                );
                Self {
                    url,
                    backend: "sqlite",
                    _dir: dir,
                }
            }
        }
    }

    pub async fn store(&self) -> Store {
        let store = Store::connect(&self.url)
            .await
            .expect("connect to test database");
        store.migrate().await.expect("migrate test database");
        // As `relaywatch serve` does: on PostgreSQL, the days around today get their own partitions.
        store
            .ensure_delivery_partitions(chrono::Utc::now().date_naive(), 1, 7)
            .await
            .expect("prepare partitions");
        store
    }
}

/// A running Relaywatch with a bootstrapped installation admin.
pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub store: Store,
    pub db: TestDatabase,
    /// Installation admin key (all scopes) of the first tenant.
    pub admin_key: String,
    pub tenant_id: TenantId,
    pub admin_email: String,
    pub admin_password: String,
    handle: actix_web::dev::ServerHandle,
}

/// Installs rustls' process-wide crypto provider. The workspace links two (ring via sqlx, aws-lc-rs via others), and
/// the agent's reqwest build has none of its own, so any client built in a test process needs one chosen first.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Like [`spawn_app`], with settings changed by `configure` before the server is built.
pub async fn spawn_app_with(configure: impl FnOnce(&mut Settings)) -> TestApp {
    install_crypto_provider();
    let db = TestDatabase::create().await;
    let store = db.store().await;
    let first = store
        .bootstrap_installation_admin(&"admin@relaywatch.localhost".parse_email())
        .await
        .expect("bootstrap")
        .expect("a fresh database has no admin yet");
    let mut settings = Settings {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: db._dir.path().to_path_buf(),
        database_url: Some(Secret::new(db.url.clone())),
        signing_secret: Some(Secret::new(TEST_SIGNING_SECRET)),
        max_body_bytes: TEST_MAX_BODY_BYTES,
        ..Settings::default()
    };
    // Blocklist checks go nowhere unless a test points them at its own DNS server: a closed loopback port answers
    // at once, and the default zones are not asked.
    settings.blocklists.nameservers = vec!["127.0.0.1:9".parse().unwrap()];
    settings.blocklists.timeout_ms = 300;
    settings.blocklists.remove = relaywatch_audit::blocklist::default_zones()
        .into_iter()
        .map(|z| z.name)
        .collect();
    configure(&mut settings);
    let app = Application::build_with_store(settings, store.clone())
        .await
        .expect("build application");
    let address = format!("http://127.0.0.1:{}", app.port());
    let handle = app.handle();
    tokio::spawn(app.run_until_stopped());
    TestApp {
        address,
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            // A fresh connection per request: after a slow request (a password hash on a loaded CI machine takes
            // seconds) the server may close the kept-alive connection just as the next request reuses it, and that
            // request then fails with "connection reset" (seen once in CI). Tests check responses, not pooling.
            .pool_max_idle_per_host(0)
            .build()
            .unwrap(),
        store,
        db,
        admin_key: first.api_key,
        tenant_id: first.tenant_id,
        admin_email: first.admin_email,
        admin_password: first.admin_password,
        handle,
    }
}

/// The key the test servers encrypt webhook secrets with (derived from [`TEST_SIGNING_SECRET`], as in production).
pub fn test_cipher() -> relaywatch_store::secrets::SecretCipher {
    relaywatch_store::secrets::SecretCipher::new(TEST_SIGNING_SECRET.as_bytes())
}

/// Webhook settings for tests: loopback allowed (receivers run there), short timeouts and backoff so retries
/// happen within a test, and endpoints never disabled unless a test asks for it.
pub fn test_webhook_settings() -> relaywatch_webhooks::WebhookSettings {
    relaywatch_webhooks::WebhookSettings {
        allow_networks: vec!["127.0.0.0/8".parse().unwrap()],
        timeout_ms: 2_000,
        max_attempts: 5,
        retry_base_ms: 50,
        retry_factor: 2.0,
        retry_max_delay_ms: 200,
        disable_after_failures: 1_000,
        disable_after_secs: 0,
        lease_grace_ms: 0,
        ..relaywatch_webhooks::WebhookSettings::default()
    }
}

/// A server whose webhooks may target loopback (with [`test_webhook_settings`]).
pub async fn spawn_app_allowing_loopback() -> TestApp {
    spawn_app_with(|s| s.webhooks = test_webhook_settings()).await
}

/// Verifies a Standard Webhooks request with HMAC-SHA256 from the RustCrypto crates (not the implementation under
/// test): true when one of the `v1,` signatures in `webhook-signature` is the MAC of `id.timestamp.body` under the
/// base64-decoded `whsec_` secret.
pub fn verify_standard_webhook(
    secret: &str,
    id: &str,
    timestamp: &str,
    signatures: &str,
    body: &[u8],
) -> bool {
    use base64::Engine;
    use hmac::{KeyInit, Mac};
    let Some(key) = secret
        .strip_prefix("whsec_")
        .and_then(|k| base64::engine::general_purpose::STANDARD.decode(k).ok())
    else {
        return false;
    };
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key).expect("any key length");
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    let expected = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    signatures
        .split(' ')
        .filter_map(|s| s.strip_prefix("v1,"))
        .any(|sig| sig == expected)
}

trait ParseEmail {
    fn parse_email(&self) -> relaywatch_domain::EmailAddress;
}
impl ParseEmail for str {
    fn parse_email(&self) -> relaywatch_domain::EmailAddress {
        relaywatch_domain::EmailAddress::parse(self).expect("valid test address")
    }
}

/// A response read to the end: status, content type and JSON body (Null when the body is not JSON).
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub content_type: String,
    pub body: Value,
    pub text: String,
}

impl Reply {
    async fn read(res: Response) -> Self {
        let status = res.status().as_u16();
        let content_type = res
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let text = res.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Self {
            status,
            content_type,
            body,
            text,
        }
    }

    /// The problem `code` of an error reply; asserts the body is problem+json.
    pub fn code(&self) -> &str {
        assert!(
            self.content_type.starts_with("application/problem+json"),
            "expected a problem document, got {} {}: {}",
            self.status,
            self.content_type,
            self.text
        );
        self.body["code"].as_str().unwrap_or_default()
    }

    pub fn id(&self) -> String {
        self.body["id"]
            .as_str()
            .unwrap_or_else(|| panic!("no id in {}", self.text))
            .to_string()
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let mut req = self.client.request(method, self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        Reply::read(req.send().await.expect("request reaches the test server")).await
    }

    pub async fn get(&self, path: &str, token: &str) -> Reply {
        self.call(Method::GET, path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> Reply {
        self.call(Method::POST, path, Some(token), Some(body)).await
    }

    pub async fn patch(&self, path: &str, token: &str, body: Value) -> Reply {
        self.call(Method::PATCH, path, Some(token), Some(body))
            .await
    }

    pub async fn delete(&self, path: &str, token: &str) -> Reply {
        self.call(Method::DELETE, path, Some(token), None).await
    }

    /// Sends a raw body with a given content type.
    pub async fn post_raw(
        &self,
        path: &str,
        token: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> Reply {
        self.call_raw(Method::POST, path, Some(token), Some((content_type, body)))
            .await
    }

    /// The OpenAPI document the server serves at `/openapi.json`.
    pub async fn served_spec(&self) -> Value {
        self.client
            .get(self.url("/openapi.json"))
            .send()
            .await
            .expect("request reaches the test server")
            .json()
            .await
            .expect("the served spec is JSON")
    }

    /// Any method, optional credentials, and an optional raw body with its content type.
    pub async fn call_raw(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<(&str, Vec<u8>)>,
    ) -> Reply {
        let mut req = self.client.request(method, self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some((content_type, body)) = body {
            req = req.header("content-type", content_type).body(body);
        }
        Reply::read(req.send().await.expect("request reaches the test server")).await
    }

    /// A second tenant with an all-scopes admin key (not an installation admin).
    pub async fn other_tenant(&self, name: &str) -> (TenantId, String) {
        let created = self
            .store
            .create_tenant_with_admin_key(name, &[], &[])
            .await
            .expect("create tenant");
        (TenantId(created.tenant.id), created.plaintext_key)
    }

    /// A key of the first tenant with exactly these scopes.
    pub async fn key_with(&self, scopes: &[Scope]) -> String {
        let new = NewKey {
            name: "test key",
            scopes: scopes.iter().copied().collect::<ScopeSet>(),
            installation_admin: false,
            expires_at: None,
            created_by_user: None,
            routes_by_sender: false,
        };
        self.store
            .issue_api_key(self.tenant_id, new)
            .await
            .expect("issue key")
            .1
    }

    /// Logs in and returns the access token.
    pub async fn login(&self, email: &str, password: &str) -> String {
        let r = self
            .call(
                Method::POST,
                "/v1/auth/login",
                None,
                Some(serde_json::json!({"email": email, "password": password})),
            )
            .await;
        assert_eq!(r.status, 200, "login failed: {}", r.text);
        r.body["access_token"].as_str().unwrap().to_string()
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        // Stop accepting; the runtime ends with the test anyway.
        let handle = self.handle.clone();
        drop(handle.stop(false));
    }
}

/// Parses and correlates a whole Postfix log the way the agent does, into wire records.
pub fn correlate_log(
    log: &[u8],
    tag_headers: &[&str],
    reference_unix: i64,
) -> Vec<relaywatch_postfix::Record> {
    let parser = relaywatch_postfix::Parser::new(relaywatch_postfix::ParserConfig {
        tag_headers: tag_headers.iter().map(|h| h.to_string()).collect(),
        reference_unix,
        ..Default::default()
    });
    let mut correlator = relaywatch_postfix::Correlator::new(Default::default());
    let mut out = Vec::new();
    for line in log.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        correlator.push(&parser.parse_line(line), &mut out);
    }
    correlator.flush(&mut out);
    out
}

/// The real Postfix log of the lab run in `../shared/lab/` (its tag header is `X-Delivery-Tag`), parsed and correlated
/// into wire records, with times moved so the newest attempt lies one hour ago (the server refuses records older than
/// the tenant's retention). `None`, said loudly, when the shared folder is absent.
pub fn lab_records() -> Option<Vec<Value>> {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/lab/maillog.sample");
    let Ok(log) = std::fs::read(&path) else {
        eprintln!(
            "SKIPPED: {} is absent; the lab-log ingest test needs it",
            path.display()
        );
        return None;
    };
    // The lab ran in late November 2026; year-less stamps are read relative to the end of that month.
    let out = correlate_log(&log, &["X-Delivery-Tag"], 1_796_083_200);
    let mut records: Vec<Value> = out
        .iter()
        .map(|r| serde_json::to_value(r).expect("records serialise"))
        .collect();
    let time = |v: &Value| {
        chrono::DateTime::parse_from_rfc3339(v["time"].as_str().unwrap_or_default()).ok()
    };
    let newest = records.iter().filter_map(time).max()?;
    let shift = chrono::Utc::now().fixed_offset() - chrono::Duration::hours(1) - newest;
    for r in &mut records {
        if let Some(t) = time(r) {
            r["time"] = Value::String((t + shift).to_rfc3339());
        }
        // Message ends carry when the message was first seen; it moves with the rest.
        if let Some(t) = r["first_seen"]
            .as_str()
            .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
        {
            r["first_seen"] = Value::String((t + shift).to_rfc3339());
        }
    }
    Some(records)
}

/// A delivery record as an agent sends it, `minutes_ago` before now.
pub fn delivery(queue_id: &str, recipient: &str, status: &str, minutes_ago: i64) -> Value {
    let time = chrono::Utc::now() - chrono::Duration::minutes(minutes_ago);
    let failed = status != "sent";
    serde_json::json!({
        "kind": "delivery",
        "id": uuid::Uuid::now_v7().to_string(),
        "time": time.to_rfc3339(),
        "host": "mx1",
        "instance": "postfix",
        "queue_id": queue_id,
        "daemon": "smtp",
        "recipient": recipient,
        "status": status,
        "dsn": if failed { "5.1.1" } else { "2.0.0" },
        "relay": "mx.example.org[192.0.2.25]:25",
        "delay": 1.5,
        "delays": {"before_queue": 0.1, "in_queue": 0.2, "connection": 0.7, "transmission": 0.5},
        "reply": if failed { "host mx.example.org[192.0.2.25] said: 550 5.1.1 <x>: Recipient address rejected: User unknown (in reply to RCPT TO command)" } else { "250 2.0.0 Ok: queued as ABC" },
        "bounce_class": if failed { serde_json::json!({"severity": "hard", "reason": "unknown_recipient"}) } else { Value::Null },
        "position": 0,
        "message_id": format!("<{queue_id}@app.example.com>"),
        "tag": format!("tag-{queue_id}"),
        "sender": "app@example.com",
        "size": 1234,
        "nrcpt": 1
    })
}

impl TestApp {
    /// Sends one ingest batch as agent `mx1`.
    pub async fn ingest(&self, key: &str, records: Vec<Value>) -> Reply {
        self.post("/v1/ingest", key, serde_json::json!({"agent": {"host_name": "mx1", "version": "test"}, "records": records}))
            .await
    }

    /// Sends one ingest batch gzip-compressed.
    pub async fn ingest_gzip(&self, key: &str, records: Vec<Value>) -> Reply {
        use std::io::Write;
        let body = serde_json::to_vec(
            &serde_json::json!({"agent": {"host_name": "mx1"}, "records": records}),
        )
        .unwrap();
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(&body).unwrap();
        let res = self
            .client
            .post(self.url("/v1/ingest"))
            .bearer_auth(key)
            .header("content-type", "application/json")
            .header("content-encoding", "gzip")
            .body(enc.finish().unwrap())
            .send()
            .await
            .expect("request reaches the test server");
        Reply::read(res).await
    }
}
