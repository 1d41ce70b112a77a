//! Agent configuration: a TOML file, then `RELAYWATCH_AGENT_*` environment variables, then flags; each overrides the
//! one before. The API key comes from the file, `RELAYWATCH_AGENT_API_KEY`, or a key file, and never prints.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Args;
use relaywatch_postfix::DEFAULT_TAG_HEADER;
use serde::Deserialize;

/// A secret that never shows in logs or debug output.
#[derive(Clone, Default, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Where a first start begins in a log that already has content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum StartAt {
    /// Ship the whole current file (ids are stable, so this is harmless when some of it was shipped before).
    Beginning,
    /// Only lines written from now on.
    End,
}

/// The TOML file. Every field is optional; defaults are in [`Config`].
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub api_url: Option<String>,
    pub api_key: Option<Secret>,
    pub api_key_file: Option<PathBuf>,
    pub logs: Option<Vec<String>>,
    pub tag_headers: Option<Vec<String>>,
    pub syslog_names: Option<Vec<String>>,
    pub host_name: Option<String>,
    pub state_dir: Option<PathBuf>,
    pub spool_max_bytes: Option<u64>,
    pub batch_max_records: Option<usize>,
    pub batch_linger_ms: Option<u64>,
    pub poll_interval_ms: Option<u64>,
    pub idle_flush_ms: Option<u64>,
    /// How often log globs are expanded again to find logs created since, in milliseconds (default 10,000).
    pub glob_rescan_ms: Option<u64>,
    pub metrics_listen: Option<SocketAddr>,
    pub heartbeat_interval_secs: Option<u64>,
    pub utc_offset_minutes: Option<i16>,
    pub start_at: Option<StartAt>,
    pub request_timeout_secs: Option<u64>,
    /// Read the systemd journal (through `journalctl -o json -f`) besides or instead of log files.
    pub journald: Option<bool>,
    /// `journalctl --unit` filters (globs allowed), e.g. `postfix@-.service`. Setting it turns `journald` on.
    pub journald_units: Option<Vec<String>>,
    /// journalctl match terms, e.g. `SYSLOG_IDENTIFIER=postfix/smtp`. Setting it turns `journald` on.
    pub journald_match: Option<Vec<String>>,
    /// The journalctl program (default `journalctl`, looked up in PATH).
    pub journalctl: Option<PathBuf>,
    /// More journalctl arguments, e.g. `--directory=/var/log/journal/remote` or `--file=...`.
    pub journalctl_args: Option<Vec<String>>,
    pub tls: Option<TlsFileConfig>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFileConfig {
    /// PEM file of extra CA certificates (a self-hosted API with a private CA).
    pub ca_file: Option<PathBuf>,
}

/// Flags of `run` and `check`; each overrides the file and the environment.
#[derive(Args, Debug, Default, Clone)]
pub struct ConfigArgs {
    /// TOML configuration file.
    #[arg(long, short = 'c', value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Base URL of the Relaywatch API, e.g. https://relaywatch.example.com.
    #[arg(long, value_name = "URL")]
    pub api_url: Option<String>,
    /// File holding the ingest API key (rw_...).
    #[arg(long, value_name = "FILE")]
    pub api_key_file: Option<PathBuf>,
    /// Log file or glob to follow (repeatable), e.g. /var/log/mail.log.
    #[arg(long = "log", value_name = "PATH")]
    pub logs: Vec<String>,
    /// Directory for the checkpoint and the spool.
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Header that carries the application's message tag (repeatable). Default: X-Relaywatch-Tag.
    #[arg(long = "tag-header", value_name = "NAME")]
    pub tag_headers: Vec<String>,
    /// Name of this mail host as reported to the API. Default: the machine's host name.
    #[arg(long, value_name = "NAME")]
    pub host_name: Option<String>,
    /// Serve Prometheus metrics at http://ADDR/metrics.
    #[arg(long, value_name = "ADDR")]
    pub metrics_listen: Option<SocketAddr>,
    /// Largest spool on disk, in bytes.
    #[arg(long, value_name = "BYTES")]
    pub spool_max_bytes: Option<u64>,
    /// Records per batch (at most 5000).
    #[arg(long, value_name = "N")]
    pub batch_max_records: Option<usize>,
    /// How long a batch may wait for more records, in milliseconds.
    #[arg(long, value_name = "MS")]
    pub batch_linger_ms: Option<u64>,
    /// How often an idle log is checked for new lines, in milliseconds.
    #[arg(long, value_name = "MS")]
    pub poll_interval_ms: Option<u64>,
    /// Seconds between heartbeats to the API (0: none).
    #[arg(long, value_name = "SECONDS")]
    pub heartbeat_interval_secs: Option<u64>,
    /// PEM file of extra CA certificates for the API's TLS certificate.
    #[arg(long, value_name = "FILE")]
    pub tls_ca_file: Option<PathBuf>,
    /// UTC offset in minutes of year-less RFC 3164 stamps.
    #[arg(long, value_name = "MINUTES", allow_hyphen_values = true)]
    pub utc_offset: Option<i16>,
    /// Where a first start begins in an existing log (and in the journal).
    #[arg(long, value_enum)]
    pub start_at: Option<StartAt>,
    /// Read Postfix's entries from the systemd journal (journalctl -o json -f), besides or instead of --log files.
    #[arg(long)]
    pub journald: bool,
    /// The journalctl program to run for --journald.
    #[arg(long, value_name = "PATH")]
    pub journalctl: Option<PathBuf>,
    /// Only this systemd unit's journal entries (repeatable; journalctl --unit, globs allowed), e.g. postfix@-.service.
    #[arg(long = "journald-unit", value_name = "UNIT")]
    pub journald_units: Vec<String>,
    /// A journalctl match term (repeatable), e.g. SYSLOG_IDENTIFIER=postfix/smtp.
    #[arg(long = "journald-match", value_name = "FIELD=VALUE")]
    pub journald_match: Vec<String>,
    /// One more argument for journalctl (repeatable), e.g. --journalctl-arg=--directory=/var/log/journal/remote.
    #[arg(
        long = "journalctl-arg",
        value_name = "ARG",
        allow_hyphen_values = true
    )]
    pub journalctl_args: Vec<String>,
}

/// The journald source: `journalctl -o json -f --no-tail -a` with these filters, its output read as JSON entries.
#[derive(Debug, Clone, Default)]
pub struct JournaldConfig {
    pub enabled: bool,
    pub journalctl: PathBuf,
    pub units: Vec<String>,
    pub matches: Vec<String>,
    pub args: Vec<String>,
}

/// The resolved configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub api_url: String,
    pub api_key: Secret,
    pub logs: Vec<String>,
    pub tag_headers: Vec<String>,
    pub syslog_names: Vec<String>,
    pub host_name: String,
    pub state_dir: PathBuf,
    pub spool_max_bytes: u64,
    pub batch_max_records: usize,
    pub batch_linger: Duration,
    pub poll_interval: Duration,
    pub idle_flush: Duration,
    pub glob_rescan: Duration,
    pub metrics_listen: Option<SocketAddr>,
    pub heartbeat_interval: Duration,
    pub utc_offset_minutes: i16,
    pub start_at: StartAt,
    pub request_timeout: Duration,
    pub tls_ca_file: Option<PathBuf>,
    pub journald: JournaldConfig,
}

pub const DEFAULT_STATE_DIR: &str = "/var/lib/relaywatch-agent";

impl Config {
    /// Loads file, environment and flags. `need_api` is false for commands that do not talk to the API.
    pub fn load(args: &ConfigArgs) -> Result<Config> {
        let env = |k: &str| {
            std::env::var(format!("RELAYWATCH_AGENT_{k}"))
                .ok()
                .filter(|v| !v.is_empty())
        };
        let config_path = args
            .config
            .clone()
            .or_else(|| env("CONFIG").map(PathBuf::from));
        let file: FileConfig = match &config_path {
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .with_context(|| format!("reading {}", p.display()))?;
                toml::from_str(&text).with_context(|| {
                    format!("{} is not a valid agent configuration", p.display())
                })?
            }
            None => FileConfig::default(),
        };
        fn parse<T: std::str::FromStr>(name: &str, v: Option<String>) -> Result<Option<T>>
        where
            T::Err: std::fmt::Display,
        {
            v.map(|v| {
                v.parse::<T>()
                    .map_err(|e| anyhow::anyhow!("RELAYWATCH_AGENT_{name}={v:?}: {e}"))
            })
            .transpose()
        }
        let list = |v: Option<String>| -> Option<Vec<String>> {
            v.map(|v| {
                v.split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect()
            })
        };
        let nonempty = |v: Vec<String>| (!v.is_empty()).then_some(v);

        let api_url = args
            .api_url
            .clone()
            .or_else(|| env("API_URL"))
            .or(file.api_url)
            .unwrap_or_default();
        let key_file = args
            .api_key_file
            .clone()
            .or_else(|| env("API_KEY_FILE").map(PathBuf::from))
            .or(file.api_key_file);
        // A key file named on the command line or in the environment wins over a key written in the file.
        let api_key = match (&args.api_key_file, env("API_KEY"), key_file, file.api_key) {
            (Some(_), _, Some(f), _) => read_key_file(&f)?,
            (None, Some(k), _, _) => Secret::new(k),
            (None, None, Some(f), _) => read_key_file(&f)?,
            (_, _, _, Some(k)) => k,
            _ => Secret::default(),
        };
        let logs = nonempty(args.logs.clone())
            .or_else(|| list(env("LOGS")))
            .or(file.logs)
            .unwrap_or_default();
        let tag_headers = nonempty(args.tag_headers.clone())
            .or_else(|| list(env("TAG_HEADERS")))
            .or(file.tag_headers)
            .unwrap_or_else(|| vec![DEFAULT_TAG_HEADER.to_string()]);
        let syslog_names = list(env("SYSLOG_NAMES"))
            .or(file.syslog_names)
            .unwrap_or_else(|| vec!["postfix".to_string()]);
        let host_name = args
            .host_name
            .clone()
            .or_else(|| env("HOST_NAME"))
            .or(file.host_name)
            .unwrap_or_else(machine_host_name);
        let state_dir = args
            .state_dir
            .clone()
            .or_else(|| env("STATE_DIR").map(PathBuf::from))
            .or(file.state_dir)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_STATE_DIR));
        let ms =
            |flag: Option<u64>, name: &str, file: Option<u64>, default: u64| -> Result<Duration> {
                Ok(Duration::from_millis(
                    flag.or(parse(name, env(name))?).or(file).unwrap_or(default),
                ))
            };
        let journald_units = nonempty(args.journald_units.clone())
            .or_else(|| list(env("JOURNALD_UNITS")))
            .or(file.journald_units)
            .unwrap_or_default();
        let journald_match = nonempty(args.journald_match.clone())
            .or_else(|| list(env("JOURNALD_MATCH")))
            .or(file.journald_match)
            .unwrap_or_default();
        let journald = JournaldConfig {
            // A unit or match filter means the journal is wanted, unless it is switched off explicitly.
            enabled: args.journald
                || match env("JOURNALD") {
                    Some(v) => parse_bool("JOURNALD", &v)?,
                    None => file
                        .journald
                        .unwrap_or(!journald_units.is_empty() || !journald_match.is_empty()),
                },
            journalctl: args
                .journalctl
                .clone()
                .or_else(|| env("JOURNALCTL").map(PathBuf::from))
                .or(file.journalctl)
                .unwrap_or_else(|| PathBuf::from("journalctl")),
            units: journald_units,
            matches: journald_match,
            args: nonempty(args.journalctl_args.clone())
                .or(file.journalctl_args)
                .unwrap_or_default(),
        };
        let batch_max_records = args
            .batch_max_records
            .or(parse("BATCH_MAX_RECORDS", env("BATCH_MAX_RECORDS"))?)
            .or(file.batch_max_records)
            .unwrap_or(2_000);
        let config = Config {
            api_url: api_url.trim_end_matches('/').to_string(),
            api_key,
            logs,
            tag_headers,
            syslog_names,
            host_name,
            state_dir,
            spool_max_bytes: args
                .spool_max_bytes
                .or(parse("SPOOL_MAX_BYTES", env("SPOOL_MAX_BYTES"))?)
                .or(file.spool_max_bytes)
                .unwrap_or(256 * 1024 * 1024),
            batch_max_records,
            batch_linger: ms(
                args.batch_linger_ms,
                "BATCH_LINGER_MS",
                file.batch_linger_ms,
                1_000,
            )?,
            poll_interval: ms(
                args.poll_interval_ms,
                "POLL_INTERVAL_MS",
                file.poll_interval_ms,
                250,
            )?,
            idle_flush: ms(None, "IDLE_FLUSH_MS", file.idle_flush_ms, 1_000)?,
            glob_rescan: ms(None, "GLOB_RESCAN_MS", file.glob_rescan_ms, 10_000)?,
            metrics_listen: args
                .metrics_listen
                .or(parse("METRICS_LISTEN", env("METRICS_LISTEN"))?)
                .or(file.metrics_listen),
            heartbeat_interval: Duration::from_secs(
                args.heartbeat_interval_secs
                    .or(parse(
                        "HEARTBEAT_INTERVAL_SECS",
                        env("HEARTBEAT_INTERVAL_SECS"),
                    )?)
                    .or(file.heartbeat_interval_secs)
                    .unwrap_or(60),
            ),
            utc_offset_minutes: args
                .utc_offset
                .or(parse("UTC_OFFSET_MINUTES", env("UTC_OFFSET_MINUTES"))?)
                .or(file.utc_offset_minutes)
                .unwrap_or(0),
            start_at: args
                .start_at
                .or(match env("START_AT").as_deref() {
                    Some("end") => Some(StartAt::End),
                    Some("beginning") => Some(StartAt::Beginning),
                    Some(other) => {
                        bail!("RELAYWATCH_AGENT_START_AT={other:?}: expected beginning or end")
                    }
                    None => None,
                })
                .or(file.start_at)
                .unwrap_or(StartAt::Beginning),
            request_timeout: Duration::from_secs(
                parse("REQUEST_TIMEOUT_SECS", env("REQUEST_TIMEOUT_SECS"))?
                    .or(file.request_timeout_secs)
                    .unwrap_or(30),
            ),
            tls_ca_file: args
                .tls_ca_file
                .clone()
                .or_else(|| env("TLS_CA_FILE").map(PathBuf::from))
                .or(file.tls.and_then(|t| t.ca_file)),
            journald,
        };
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<()> {
        if self.batch_max_records == 0
            || self.batch_max_records > relaywatch_domain::wire::MAX_RECORDS_PER_BATCH
        {
            bail!(
                "batch_max_records must be 1..={}",
                relaywatch_domain::wire::MAX_RECORDS_PER_BATCH
            );
        }
        if self.poll_interval < Duration::from_millis(10) {
            bail!("poll_interval_ms must be at least 10 (a smaller value is busy-polling)");
        }
        if self.host_name.trim().is_empty() {
            bail!("host_name is empty");
        }
        if self.journald.enabled && self.journald.journalctl.as_os_str().is_empty() {
            bail!("journalctl is empty: name the journalctl program (default journalctl)");
        }
        for m in &self.journald.matches {
            if m != "+" && !m.contains('=') {
                bail!(
                    "journald_match {m:?} is not a journalctl match (FIELD=VALUE, or + between groups)"
                );
            }
        }
        Ok(())
    }

    /// The settings `run` and `check` need before they start.
    pub fn require_api(&self) -> Result<()> {
        if self.api_url.is_empty() {
            bail!("no API URL: set api_url in the file, RELAYWATCH_AGENT_API_URL or --api-url");
        }
        if !(self.api_url.starts_with("http://") || self.api_url.starts_with("https://")) {
            bail!("api_url must start with http:// or https://");
        }
        if self.api_key.is_empty() {
            bail!(
                "no API key: set api_key_file (or api_key) in the file, RELAYWATCH_AGENT_API_KEY(_FILE) or --api-key-file"
            );
        }
        Ok(())
    }

    /// A source to read: log files, the journal, or both.
    pub fn require_logs(&self) -> Result<()> {
        if self.logs.is_empty() && !self.journald.enabled {
            bail!(
                "no log to follow: set logs in the file, RELAYWATCH_AGENT_LOGS or --log PATH \
                 (or read the systemd journal: journald = true, RELAYWATCH_AGENT_JOURNALD=true or --journald)"
            );
        }
        Ok(())
    }

    /// The configured log paths with globs expanded. A plain path is kept even when it does not exist yet (the
    /// tailer waits for it); a glob names what exists now, without rotated generations (see [`expand_logs`]).
    pub fn log_paths(&self) -> Vec<PathBuf> {
        expand_logs(&self.logs, &[])
    }

    /// Whether some configured pattern is a glob (then the agent expands it again now and then).
    pub fn has_globs(&self) -> bool {
        self.logs.iter().any(|p| is_glob(p))
    }
}

pub fn is_glob(pattern: &str) -> bool {
    pattern.contains(['*', '?', '['])
}

/// Expands the configured log patterns. Plain paths are kept as given. Glob matches are regular files, minus rotated
/// generations of another log: a glob such as `/var/log/mail.log*` also matches `mail.log.1` and `mail.log.2.gz`,
/// which the follower of `mail.log` reads by itself at rotation; following them as logs of their own would ship
/// their lines twice. `followed` are logs already followed (their generations are left out even while the live file
/// is briefly missing during a rotation).
pub fn expand_logs(patterns: &[String], followed: &[PathBuf]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for pattern in patterns {
        if is_glob(pattern) {
            if let Ok(paths) = glob::glob(pattern) {
                out.extend(paths.filter_map(Result::ok).filter(|p| p.is_file()));
            }
        } else {
            out.push(PathBuf::from(pattern));
        }
    }
    out.sort();
    out.dedup();
    let bases: Vec<PathBuf> = out.iter().chain(followed).cloned().collect();
    let plain: Vec<&str> = patterns
        .iter()
        .filter(|p| !is_glob(p))
        .map(String::as_str)
        .collect();
    out.retain(|p| {
        plain.contains(&p.to_string_lossy().as_ref())
            || !bases.iter().any(|base| is_generation_of(p, base))
    });
    out
}

/// `candidate` is a rotated generation of `base` when it sits in the same directory and its name is the base name
/// followed by a rotation suffix: `.1`, `.1.gz`, `-20261129`, `-20261129.gz`, `.old`, or a compression extension.
pub fn is_generation_of(candidate: &Path, base: &Path) -> bool {
    if candidate == base || candidate.parent() != base.parent() {
        return false;
    }
    let (Some(name), Some(base_name)) = (
        candidate.file_name().and_then(|n| n.to_str()),
        base.file_name().and_then(|n| n.to_str()),
    ) else {
        return false;
    };
    let Some(rest) = name.strip_prefix(base_name) else {
        return false;
    };
    let Some(suffix) = rest.strip_prefix(['.', '-', '_']) else {
        return false;
    };
    let suffix = ["gz", "bz2", "xz", "zst", "lz4", "Z"]
        .iter()
        .find_map(|ext| suffix.strip_suffix(&format!(".{ext}")))
        .unwrap_or(suffix);
    ["gz", "bz2", "xz", "zst", "lz4", "Z", "old", "bak"].contains(&suffix)
        || (!suffix.is_empty() && suffix.chars().all(|c| c.is_ascii_digit() || c == '-'))
}

fn parse_bool(name: &str, v: &str) -> Result<bool> {
    match v.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => bail!("RELAYWATCH_AGENT_{name}={v:?}: expected true or false"),
    }
}

fn read_key_file(path: &Path) -> Result<Secret> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the API key file {}", path.display()))?;
    let key = text.trim();
    if key.is_empty() {
        bail!("the API key file {} is empty", path.display());
    }
    Ok(Secret::new(key))
}

/// The machine's host name (no libc call: the kernel publishes it).
pub fn machine_host_name() -> String {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .find_map(|p| {
            std::fs::read_to_string(p)
                .ok()
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
        })
        .unwrap_or_else(|| "localhost".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_configuration_is_valid() {
        let text = include_str!("../../../deploy/relaywatch-agent.example.toml");
        let file: FileConfig = toml::from_str(text).expect("the example parses");
        assert_eq!(
            file.logs.as_deref(),
            Some(&["/var/log/mail.log".to_string()][..])
        );
        assert_eq!(file.batch_max_records, Some(2000));
        // The journald keys are there, commented out: uncommented they must parse too.
        let uncommented: String = text
            .lines()
            .map(|l| match l.strip_prefix("# journal") {
                Some(rest) if rest.contains(" = ") => format!("journal{rest}\n"),
                _ => format!("{l}\n"),
            })
            .collect();
        let file: FileConfig = toml::from_str(&uncommented).expect("the journald keys parse");
        assert_eq!(file.journald, Some(true));
        assert_eq!(
            file.journald_units.as_deref(),
            Some(&["postfix@-.service".to_string()][..])
        );
        assert!(file.journalctl.is_some() && file.journald_match.is_some());
    }

    #[test]
    fn journald_is_chosen_by_flag_or_by_its_filters() {
        let base = ConfigArgs {
            host_name: Some("mx".into()),
            ..Default::default()
        };
        let c = Config::load(&base).unwrap();
        assert!(!c.journald.enabled);
        assert!(c.require_logs().is_err(), "no source at all is an error");
        let c = Config::load(&ConfigArgs {
            journald: true,
            ..base.clone()
        })
        .unwrap();
        assert!(c.journald.enabled);
        assert_eq!(c.journald.journalctl, PathBuf::from("journalctl"));
        c.require_logs().expect("the journal alone is a source");
        let c = Config::load(&ConfigArgs {
            journald_units: vec!["postfix@-.service".into()],
            journalctl_args: vec!["--file=/x.journal".into()],
            ..base.clone()
        })
        .unwrap();
        assert!(c.journald.enabled, "a unit filter turns the journal on");
        assert_eq!(c.journald.args, ["--file=/x.journal"]);
        assert!(
            Config::load(&ConfigArgs {
                journald_match: vec!["postfix".into()],
                ..base
            })
            .is_err(),
            "a match term needs FIELD=VALUE"
        );
    }

    #[test]
    fn unknown_settings_are_refused() {
        assert!(toml::from_str::<FileConfig>("api_urll = \"x\"").is_err());
    }

    #[test]
    fn the_key_never_prints() {
        let s = Secret::new("rw_secret");
        assert_eq!(format!("{s:?}"), "Secret(***)");
    }

    #[test]
    fn rotated_generations_are_recognised_by_name() {
        let live = Path::new("/var/log/mail.log");
        for g in [
            "/var/log/mail.log.1",
            "/var/log/mail.log.2.gz",
            "/var/log/mail.log-20261129",
            "/var/log/mail.log-20261129.gz",
            "/var/log/mail.log.gz",
            "/var/log/mail.log.old",
            "/var/log/mail.log.1.xz",
        ] {
            assert!(is_generation_of(Path::new(g), live), "{g}");
        }
        for other in [
            "/var/log/mail.log",
            "/var/log/mail.logger",
            "/var/log/mail.log.pid",
            "/var/log/mail.log-out",
            "/var/log/mail.err",
            "/var/log/old/mail.log.1",
            "/var/log/mail.log.",
        ] {
            assert!(!is_generation_of(Path::new(other), live), "{other}");
        }
    }

    #[test]
    fn globs_expand_to_logs_without_their_rotated_generations() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            "mail.log",
            "mail.log.1",
            "mail.log.2.gz",
            "mail-out.log",
            "mail-out.log-20261128",
            "mail.err",
        ] {
            std::fs::write(dir.path().join(name), b"x\n").unwrap();
        }
        std::fs::create_dir(dir.path().join("mail.dir")).unwrap();
        let d = dir.path().display();
        let names = |paths: Vec<PathBuf>| -> Vec<String> {
            paths
                .iter()
                .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
                .collect()
        };
        assert_eq!(
            names(expand_logs(&[format!("{d}/mail*")], &[])),
            ["mail-out.log", "mail.err", "mail.log"]
        );
        // While mail.log is away during a rotation, mail.log.1 is still its generation, not a new log.
        std::fs::rename(dir.path().join("mail.log"), dir.path().join("mail.log.0")).unwrap();
        assert_eq!(
            names(expand_logs(
                &[format!("{d}/mail.log*")],
                &[dir.path().join("mail.log")]
            )),
            Vec::<String>::new()
        );
        // A path named plainly is followed even when it looks like a generation, and even before it exists.
        assert_eq!(
            names(expand_logs(
                &[format!("{d}/mail.log.1"), format!("{d}/mail.log")],
                &[]
            )),
            ["mail.log", "mail.log.1"]
        );
    }
}
