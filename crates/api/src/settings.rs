//! Settings: a TOML file, then `RELAYWATCH_*` environment variables, then command-line flags; each layer overrides
//! the one before. The CLI applies the flag layer; this module applies the first two.

use serde::Deserialize;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// A secret that never appears in logs or debug output.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Address the API listens on.
    pub listen: SocketAddr,
    /// Where the embedded database and the generated signing secret live.
    pub data_dir: PathBuf,
    /// `postgres://...` for PostgreSQL; when absent, SQLite in `data_dir`.
    pub database_url: Option<Secret>,
    /// Secret for signing user tokens. When absent, one is generated into `data_dir/signing.key`.
    /// Set it explicitly when several API nodes share one database.
    pub signing_secret: Option<Secret>,
    /// Lifetime of user tokens issued at login.
    pub token_ttl_seconds: u64,
    /// Largest accepted JSON request body.
    pub max_body_bytes: usize,
    /// Largest accepted ingest batch as sent (gzip-compressed or not).
    pub max_ingest_bytes: usize,
    /// Largest ingest batch after decompression: the guard against compression bombs.
    pub max_ingest_decompressed_bytes: usize,
    /// Email of the installation admin created at first start.
    pub admin_email: String,
    /// `host:port` of a statsd server to send delivery counts to; none by default.
    pub statsd_addr: Option<String>,
    /// Prefix of statsd metric names.
    pub statsd_prefix: String,
    /// Run the background worker in the same process as the API (`relaywatch serve`).
    pub worker_enabled: bool,
    /// DNS blocklist sweeps: interval, nameservers, limits, Spamhaus DQS key, zones added or removed (`[blocklists]`).
    pub blocklists: relaywatch_worker::blocklist::BlocklistSettings,
    /// Webhook delivery: networks allowed despite the SSRF guard, resolvers, timeouts, retries.
    pub webhooks: relaywatch_webhooks::WebhookSettings,
    /// Domain audits: resolvers, timeouts, concurrency, SMTP probes, extra CA, default schedule (`[audit]`).
    pub audit: relaywatch_worker::audit::schedule::AuditConfig,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".parse().expect("a valid literal address"),
            data_dir: PathBuf::from("./relaywatch-data"),
            database_url: None,
            signing_secret: None,
            token_ttl_seconds: 900,
            max_body_bytes: 256 * 1024,
            max_ingest_bytes: 16 * 1024 * 1024,
            max_ingest_decompressed_bytes: 64 * 1024 * 1024,
            admin_email: "admin@relaywatch.localhost".to_string(),
            statsd_addr: None,
            statsd_prefix: "relaywatch".to_string(),
            worker_enabled: true,
            blocklists: Default::default(),
            webhooks: relaywatch_webhooks::WebhookSettings::default(),
            audit: Default::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not valid: {message}")]
    File { path: PathBuf, message: String },
    #[error("environment variable {name}={value:?} is not valid: {message}")]
    Env {
        name: &'static str,
        value: String,
        message: String,
    },
    #[error("environment variable {0}")]
    WebhooksEnv(String),
    #[error("environment variable {0}")]
    AuditEnv(String),
}

impl Settings {
    /// File layer (if a path is given) then environment layer. `env` is `std::env::var` in production and a map in tests.
    pub fn load(
        file: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, SettingsError> {
        let mut s = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| SettingsError::Read {
                    path: path.to_path_buf(),
                    source,
                })?;
                toml::from_str(&text).map_err(|e| SettingsError::File {
                    path: path.to_path_buf(),
                    message: e.to_string(),
                })?
            }
            None => Settings::default(),
        };
        s.apply_env(env)?;
        Ok(s)
    }

    fn apply_env(&mut self, env: impl Fn(&str) -> Option<String>) -> Result<(), SettingsError> {
        fn parse<T: std::str::FromStr>(
            name: &'static str,
            value: String,
        ) -> Result<T, SettingsError>
        where
            T::Err: fmt::Display,
        {
            value.parse().map_err(|e: T::Err| SettingsError::Env {
                name,
                message: e.to_string(),
                value,
            })
        }
        if let Some(v) = env("RELAYWATCH_LISTEN") {
            self.listen = parse("RELAYWATCH_LISTEN", v)?;
        }
        if let Some(v) = env("RELAYWATCH_DATA_DIR") {
            self.data_dir = PathBuf::from(v);
        }
        if let Some(v) = env("RELAYWATCH_DATABASE_URL").filter(|v| !v.is_empty()) {
            self.database_url = Some(Secret(v));
        }
        if let Some(v) = env("RELAYWATCH_SIGNING_SECRET").filter(|v| !v.is_empty()) {
            self.signing_secret = Some(Secret(v));
        }
        if let Some(v) = env("RELAYWATCH_TOKEN_TTL_SECONDS") {
            self.token_ttl_seconds = parse("RELAYWATCH_TOKEN_TTL_SECONDS", v)?;
        }
        if let Some(v) = env("RELAYWATCH_MAX_BODY_BYTES") {
            self.max_body_bytes = parse("RELAYWATCH_MAX_BODY_BYTES", v)?;
        }
        if let Some(v) = env("RELAYWATCH_MAX_INGEST_BYTES") {
            self.max_ingest_bytes = parse("RELAYWATCH_MAX_INGEST_BYTES", v)?;
        }
        if let Some(v) = env("RELAYWATCH_STATSD_ADDR").filter(|v| !v.is_empty()) {
            self.statsd_addr = Some(v);
        }
        if let Some(v) = env("RELAYWATCH_STATSD_PREFIX") {
            self.statsd_prefix = v;
        }
        if let Some(v) = env("RELAYWATCH_ADMIN_EMAIL") {
            self.admin_email = v;
        }
        if let Some(v) = env("RELAYWATCH_WORKER_ENABLED") {
            self.worker_enabled = parse("RELAYWATCH_WORKER_ENABLED", v)?;
        }
        if let Some(v) = env("RELAYWATCH_BLOCKLISTS_INTERVAL_MINUTES") {
            self.blocklists.interval_minutes = parse("RELAYWATCH_BLOCKLISTS_INTERVAL_MINUTES", v)?;
        }
        if let Some(v) = env("RELAYWATCH_BLOCKLISTS_NAMESERVERS") {
            self.blocklists.nameservers = v
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| parse("RELAYWATCH_BLOCKLISTS_NAMESERVERS", s.to_string()))
                .collect::<Result<_, _>>()?;
        }
        if let Some(v) = env("RELAYWATCH_BLOCKLISTS_DQS_KEY").filter(|v| !v.is_empty()) {
            self.blocklists.dqs_key = Some(v);
        }
        if let Some(v) = env("RELAYWATCH_BLOCKLISTS_REMOVE") {
            self.blocklists.remove = v
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect();
        }
        self.webhooks
            .apply_env(&env)
            .map_err(SettingsError::WebhooksEnv)?;
        self.audit
            .apply_env(&env)
            .map_err(|e| SettingsError::AuditEnv(e.to_string()))?;
        Ok(())
    }

    /// The database to use: the configured URL, or SQLite in the data directory.
    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(url) => url.expose().to_string(),
            None => format!(
                "sqlite://{}?mode=rwc",
                self.data_dir.join("relaywatch.db").display()
            ),
        }
    }

    pub fn uses_embedded_database(&self) -> bool {
        self.database_url.is_none()
    }

    /// The configured signing secret, or the one in `data_dir/signing.key`, generated (mode 0600) on first use.
    pub fn resolve_signing_secret(&self) -> std::io::Result<Secret> {
        if let Some(s) = &self.signing_secret {
            return Ok(s.clone());
        }
        let path = self.data_dir.join("signing.key");
        match std::fs::read_to_string(&path) {
            Ok(s) if !s.trim().is_empty() => return Ok(Secret(s.trim().to_string())),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        std::fs::create_dir_all(&self.data_dir)?;
        let secret = relaywatch_store::secrets::generate_signing_secret();
        let tmp = path.with_extension("key.tmp");
        {
            use std::io::Write;
            let mut opts = std::fs::OpenOptions::new();
            opts.write(true).create(true).truncate(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
            let mut f = opts.open(&tmp)?;
            f.write_all(secret.as_bytes())?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, &path)?;
        Ok(Secret(secret))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn environment_overrides_file() {
        let dir = std::env::temp_dir().join(format!("rw-settings-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("relaywatch.toml");
        std::fs::write(
            &file,
            "listen = \"127.0.0.1:9000\"\ntoken_ttl_seconds = 60\n",
        )
        .unwrap();
        let s = Settings::load(
            Some(&file),
            env_of(&[("RELAYWATCH_LISTEN", "127.0.0.1:9100")]),
        )
        .unwrap();
        assert_eq!(s.listen.port(), 9100);
        assert_eq!(s.token_ttl_seconds, 60);
        assert!(s.database_url().starts_with("sqlite://"));
    }

    #[test]
    fn bad_values_name_their_source() {
        let err =
            Settings::load(None, env_of(&[("RELAYWATCH_TOKEN_TTL_SECONDS", "soon")])).unwrap_err();
        assert!(
            err.to_string().contains("RELAYWATCH_TOKEN_TTL_SECONDS"),
            "{err}"
        );
        let dir = std::env::temp_dir().join(format!("rw-settings-bad-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("relaywatch.toml");
        std::fs::write(&file, "lisen = \"127.0.0.1:9000\"\n").unwrap();
        let err = Settings::load(Some(&file), env_of(&[])).unwrap_err();
        assert!(err.to_string().contains("lisen"), "{err}");
    }

    #[test]
    fn webhook_settings_come_from_the_file_and_the_environment() {
        let dir = std::env::temp_dir().join(format!("rw-settings-wh-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("relaywatch.toml");
        std::fs::write(
            &file,
            "[webhooks]\nallow_networks = [\"10.0.0.0/8\"]\ntimeout_ms = 2000\n",
        )
        .unwrap();
        let s = Settings::load(Some(&file), env_of(&[])).unwrap();
        assert_eq!(s.webhooks.allow_networks[0].to_string(), "10.0.0.0/8");
        assert_eq!(s.webhooks.timeout_ms, 2000);
        let s = Settings::load(
            Some(&file),
            env_of(&[("RELAYWATCH_WEBHOOKS_ALLOW_NETWORKS", "127.0.0.0/8,::1")]),
        )
        .unwrap();
        assert_eq!(s.webhooks.allow_networks.len(), 2);
        assert_eq!(s.webhooks.allow_networks[0].to_string(), "127.0.0.0/8");
        let err = Settings::load(
            None,
            env_of(&[("RELAYWATCH_WEBHOOKS_ALLOW_NETWORKS", "everything")]),
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("RELAYWATCH_WEBHOOKS_ALLOW_NETWORKS"),
            "{err}"
        );
    }

    #[test]
    fn audit_settings_come_from_the_file_and_the_environment_overrides_them() {
        let dir = std::env::temp_dir().join(format!("rw-settings-audit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("relaywatch.toml");
        std::fs::write(
            &file,
            "[audit]\nnameservers = [\"192.0.2.53\", \"192.0.2.54:5353\"]\ntimeout_ms = 1500\n\
             concurrency = 8\nsmtp_checks = false\nschedule = \"0 30 2 * * *\"\n",
        )
        .unwrap();
        let s = Settings::load(Some(&file), env_of(&[])).unwrap();
        let (audit, schedule) = s.audit.build().unwrap();
        assert_eq!(
            audit.dns.nameservers,
            vec![
                "192.0.2.53:53".parse().unwrap(),
                "192.0.2.54:5353".parse().unwrap()
            ]
        );
        assert_eq!(audit.dns.timeout, std::time::Duration::from_millis(1500));
        assert_eq!(audit.concurrency, 8);
        assert!(!audit.smtp_checks && !schedule.smtp_checks);
        assert_eq!(schedule.cron, "0 30 2 * * *");
        // What the file leaves out keeps its default.
        assert_eq!(audit.ehlo_name, "relaywatch.invalid");

        // The environment overrides the file, field by field.
        let s = Settings::load(
            Some(&file),
            env_of(&[
                ("RELAYWATCH_AUDIT_TIMEOUT_MS", "700"),
                ("RELAYWATCH_AUDIT_SMTP_CHECKS", "true"),
                ("RELAYWATCH_AUDIT_NAMESERVERS", "198.51.100.53"),
            ]),
        )
        .unwrap();
        let (audit, schedule) = s.audit.build().unwrap();
        assert_eq!(audit.dns.timeout, std::time::Duration::from_millis(700));
        assert!(audit.smtp_checks);
        assert_eq!(
            audit.dns.nameservers,
            vec!["198.51.100.53:53".parse().unwrap()]
        );
        assert_eq!(
            (audit.concurrency, schedule.cron.as_str()),
            (8, "0 30 2 * * *")
        );

        // Bad values name their setting: at load for the environment, at build for the file's.
        let err =
            Settings::load(None, env_of(&[("RELAYWATCH_AUDIT_TIMEOUT_MS", "soon")])).unwrap_err();
        assert!(
            err.to_string().contains("RELAYWATCH_AUDIT_TIMEOUT_MS"),
            "{err}"
        );
        std::fs::write(&file, "[audit]\nschedule = \"every day\"\n").unwrap();
        let err = Settings::load(Some(&file), env_of(&[]))
            .unwrap()
            .audit
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("audit schedule"), "{err}");
        std::fs::write(&file, "[audit]\ntimeout = 5\n").unwrap();
        let err = Settings::load(Some(&file), env_of(&[])).unwrap_err();
        assert!(err.to_string().contains("timeout"), "{err}");
    }

    #[test]
    fn secrets_do_not_print() {
        let s = Settings {
            signing_secret: Some(Secret::new("hunter2")),
            ..Settings::default()
        };
        assert!(!format!("{s:?}").contains("hunter2"));
    }

    #[test]
    fn generated_signing_secret_is_kept() {
        let dir =
            std::env::temp_dir().join(format!("rw-secret-{}-{}", std::process::id(), line!()));
        let _ = std::fs::remove_dir_all(&dir);
        let s = Settings {
            data_dir: dir.clone(),
            ..Settings::default()
        };
        let a = s.resolve_signing_secret().unwrap();
        let b = s.resolve_signing_secret().unwrap();
        assert_eq!(a.expose(), b.expose());
        assert_eq!(a.expose().len(), 64);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.join("signing.key"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}

#[cfg(test)]
mod example_config {
    use super::*;

    /// The commented example in deploy/ must stay loadable: operators copy it.
    #[test]
    fn the_shipped_example_configuration_loads() {
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/relaywatch.example.toml");
        let s = Settings::load(Some(&path), |_| None).unwrap();
        assert_eq!(s.listen.port(), 8080);
        assert!(s.webhooks.allow_networks.is_empty());
        assert_eq!(s.webhooks.timeout_ms, 10_000);
        assert_eq!(s.data_dir, PathBuf::from("/var/lib/relaywatch"));
        assert!(s.database_url.is_none());
        // The [audit] section states the defaults, and they build.
        assert_eq!(
            s.audit,
            relaywatch_worker::audit::schedule::AuditConfig::default()
        );
        s.audit.build().unwrap();
    }
}
