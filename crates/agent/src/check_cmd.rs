//! `relaywatch-agent check`: is the configuration valid, can every log be read, is the state directory writable,
//! does the API answer and accept the key? One `ok`/`FAIL` line per check; exit 1 when any fails.

use std::io::Read;

use anyhow::Result;
use clap::Args;
use relaywatch_domain::wire::{AgentInfo, IngestBatch};

use crate::config::{Config, ConfigArgs};
use crate::ship::{Client, SendError, gzip_batch};

#[derive(Args, Debug)]
pub struct CheckArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
}

/// Runs every check; returns whether all passed.
pub fn run(args: CheckArgs) -> Result<bool> {
    let mut ok = true;
    let mut report = |passed: bool, what: String| {
        println!("{} {what}", if passed { "ok  " } else { "FAIL" });
        ok &= passed;
    };
    let config = match Config::load(&args.config) {
        Ok(c) => {
            report(true, "configuration is valid".into());
            c
        }
        Err(e) => {
            report(false, format!("configuration: {e:#}"));
            return Ok(false);
        }
    };
    match config.require_logs() {
        Ok(()) => {
            let paths = config.log_paths();
            if paths.is_empty() && !config.logs.is_empty() {
                report(false, format!("no file matches {:?}", config.logs));
            }
            for p in paths {
                let mut head = [0u8; 4096];
                match std::fs::File::open(&p).and_then(|mut f| f.read(&mut head)) {
                    Ok(n) => {
                        let parser = relaywatch_postfix::Parser::default();
                        let postfix = head[..n]
                            .split(|&b| b == b'\n')
                            .filter(|l| !l.is_empty())
                            .any(|l| {
                                !matches!(
                                    parser.parse_line(l).kind,
                                    relaywatch_postfix::EventKind::NotPostfix { .. }
                                        | relaywatch_postfix::EventKind::Unknown { .. }
                                )
                            });
                        let note = if n == 0 {
                            " (empty)"
                        } else if postfix {
                            ""
                        } else {
                            " (no Postfix line in its first 4 KiB)"
                        };
                        report(true, format!("{} is readable{note}", p.display()));
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => report(
                        false,
                        format!(
                            "{} is not readable by this user (permission denied; postlogd creates logs as 0600 root)",
                            p.display()
                        ),
                    ),
                    Err(e) => report(false, format!("{}: {e}", p.display())),
                }
            }
        }
        Err(e) => report(false, format!("{e:#}")),
    }
    if config.journald.enabled {
        match crate::journal::probe(&config.journald, &config.syslog_names) {
            Ok(what) => report(
                true,
                format!(
                    "journald: {} reads the journal ({what})",
                    config.journald.journalctl.display()
                ),
            ),
            Err(e) => report(false, format!("journald: {e}")),
        }
    }
    let probe = config.state_dir.join(".check");
    match std::fs::create_dir_all(&config.state_dir).and_then(|()| std::fs::write(&probe, b"x")) {
        Ok(()) => {
            std::fs::remove_file(&probe).ok();
            report(
                true,
                format!("state directory {} is writable", config.state_dir.display()),
            );
        }
        Err(e) => report(
            false,
            format!("state directory {}: {e}", config.state_dir.display()),
        ),
    }
    if let Err(e) = config.require_api() {
        report(false, format!("{e:#}"));
        return Ok(ok);
    }
    let client = match Client::new(&config) {
        Ok(c) => c,
        Err(e) => {
            report(false, format!("HTTP client: {e:#}"));
            return Ok(ok);
        }
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    // An empty batch proves reachability, TLS, the key and its ingest scope without storing anything.
    let empty = IngestBatch {
        agent: AgentInfo {
            host_name: config.host_name.clone(),
            version: Some(env!("CARGO_PKG_VERSION").to_string()),
        },
        records: Vec::new(),
    };
    match rt.block_on(client.ingest_gz(gzip_batch(&empty)?)) {
        Ok(_) => report(
            true,
            format!("API {} reachable and the key may ingest", config.api_url),
        ),
        Err(SendError::Retry { reason, .. }) => report(
            false,
            format!("API {} not reachable: {reason}", config.api_url),
        ),
        Err(e) => report(false, format!("API {}: {e}", config.api_url)),
    }
    Ok(ok)
}
