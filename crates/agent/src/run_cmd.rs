//! `relaywatch-agent run`: the reader thread (tail, parse, correlate, spool), the shipper and the heartbeat on a
//! single-threaded runtime, the optional metrics listener, and orderly shutdown on SIGTERM/SIGINT.

use std::fs::{self, File};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Args;
use relaywatch_domain::wire::Heartbeat;
use tokio::sync::Notify;

use crate::config::{Config, ConfigArgs};
use crate::metrics::Metrics;
use crate::reader::Reader;
use crate::ship::{Client, SendError, Shipper, ship_loop};
use crate::spool::Spool;
use crate::state::Checkpoint;

/// Exit status for a configuration error (sysexits EX_CONFIG); the systemd unit does not restart on it.
pub const EXIT_CONFIG: i32 = 78;

#[derive(Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
}

/// An error that means the configuration is wrong (exit 78), not that something failed for a while.
#[derive(Debug)]
pub struct ConfigError(pub String);
impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for ConfigError {}

/// Keeps a second agent off the same state directory: two writers of one checkpoint would lose lines.
fn lock_state_dir(state_dir: &std::path::Path) -> Result<File> {
    fs::create_dir_all(state_dir)
        .with_context(|| format!("creating the state directory {}", state_dir.display()))?;
    let path = state_dir.join("agent.lock");
    let file = File::create(&path).with_context(|| format!("creating {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(_) => bail!(
            "another relaywatch-agent is running on the state directory {}",
            state_dir.display()
        ),
    }
}

pub fn run(args: RunArgs) -> Result<()> {
    let config = Config::load(&args.config).map_err(|e| ConfigError(format!("{e:#}")))?;
    run_config(config, Arc::new(AtomicBool::new(false)))
}

/// Runs the agent until SIGTERM/SIGINT or until `stop` is set (for embedding and tests).
pub fn run_config(config: Config, stop: Arc<AtomicBool>) -> Result<()> {
    config
        .require_api()
        .and_then(|()| config.require_logs())
        .map_err(|e| ConfigError(format!("{e:#}")))?;
    let _lock = lock_state_dir(&config.state_dir)?;
    let paths: Vec<PathBuf> = config.log_paths();
    if paths.is_empty() && !config.logs.is_empty() {
        return Err(ConfigError(format!("no file matches {:?}", config.logs)).into());
    }
    let mut checkpoint = Checkpoint::load(&config.state_dir)?;
    let spool = Arc::new(Spool::open(
        &config.state_dir.join("spool"),
        config.spool_max_bytes,
        checkpoint.acked_seq,
    )?);
    let metrics = Arc::new(Metrics::default());
    metrics.spool_bytes.store(spool.bytes(), Ordering::Relaxed);
    if let Some(addr) = config.metrics_listen {
        let bound = crate::metrics::serve(addr, Arc::clone(&metrics))
            .with_context(|| format!("listening for metrics on {addr}"))?;
        tracing::info!(%bound, "metrics at http://{bound}/metrics");
    }
    let client = Arc::new(Client::new(&config).map_err(|e| ConfigError(format!("{e:#}")))?);
    let wake = Arc::new(Notify::new());
    let stop_notify = Arc::new(Notify::new());

    let mut reader = {
        let wake = Arc::clone(&wake);
        Reader::new(
            &config,
            &paths,
            &checkpoint,
            Arc::clone(&spool),
            Arc::clone(&metrics),
            Box::new(move || wake.notify_one()),
        )?
    };
    let initial = reader.initial_states();
    let new_globs: Vec<String> = config
        .logs
        .iter()
        .filter(|p| crate::config::is_glob(p) && !checkpoint.globs_seen.contains(*p))
        .cloned()
        .collect();
    if !initial.is_empty() || !new_globs.is_empty() {
        checkpoint.streams.extend(initial);
        checkpoint.globs_seen.extend(new_globs);
        checkpoint.store(&config.state_dir)?;
    }
    tracing::info!(
        logs = ?paths,
        journald = config.journald.enabled,
        api = %config.api_url,
        host_name = %config.host_name,
        state_dir = %config.state_dir.display(),
        spool_bytes = spool.bytes(),
        version = env!("CARGO_PKG_VERSION"),
        "relaywatch-agent started"
    );
    let reader_thread = {
        let stop = Arc::clone(&stop);
        let stop_notify = Arc::clone(&stop_notify);
        std::thread::Builder::new()
            .name("reader".into())
            .spawn(move || {
                let r = reader.run(&stop);
                if let Err(e) = &r {
                    tracing::error!("reading stopped: {e:#}");
                    stop.store(true, Ordering::Relaxed);
                    stop_notify.notify_waiters();
                }
                r
            })?
    };

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let ship_result = rt.block_on(async {
        let heartbeat = tokio::spawn(heartbeat_loop(
            Arc::clone(&client),
            config.clone(),
            Arc::clone(&spool),
            Arc::clone(&metrics),
        ));
        let signals = {
            let stop = Arc::clone(&stop);
            let stop_notify = Arc::clone(&stop_notify);
            tokio::spawn(async move {
                use tokio::signal::unix::{SignalKind, signal};
                let (Ok(mut term), Ok(mut int)) = (
                    signal(SignalKind::terminate()),
                    signal(SignalKind::interrupt()),
                ) else {
                    return;
                };
                let mut tick = tokio::time::interval(Duration::from_millis(200));
                loop {
                    tokio::select! {
                        _ = term.recv() => break,
                        _ = int.recv() => break,
                        // A stop set from outside (an embedding program) is passed on like a signal.
                        _ = tick.tick() => if stop.load(Ordering::Relaxed) { break },
                    }
                }
                tracing::info!(
                    "stopping: the spool and the checkpoint are kept for the next start"
                );
                stop.store(true, Ordering::Relaxed);
                stop_notify.notify_waiters();
            })
        };
        let r = ship_loop(Shipper {
            client,
            spool: Arc::clone(&spool),
            checkpoint,
            state_dir: config.state_dir.clone(),
            metrics: Arc::clone(&metrics),
            wake,
            stop: Arc::clone(&stop),
            stop_notify: Arc::clone(&stop_notify),
        })
        .await;
        heartbeat.abort();
        signals.abort();
        r
    });
    stop.store(true, Ordering::Relaxed);
    let read_result = reader_thread
        .join()
        .unwrap_or_else(|_| Err(anyhow::anyhow!("the reader thread panicked")));
    match ship_result {
        Err(e) => Err(ConfigError(format!("{e:#}")).into()),
        Ok(()) => read_result,
    }
}

async fn heartbeat_loop(
    client: Arc<Client>,
    config: Config,
    spool: Arc<Spool>,
    metrics: Arc<Metrics>,
) {
    if config.heartbeat_interval.is_zero() {
        return;
    }
    let mut warned = false;
    // The first heartbeat a few seconds after start, so the API sees the agent soon.
    let mut wait = Duration::from_secs(2).min(config.heartbeat_interval);
    loop {
        tokio::time::sleep(wait).await;
        wait = config.heartbeat_interval;
        let hb = Heartbeat {
            host_name: config.host_name.clone(),
            version: Some(env!("CARGO_PKG_VERSION").to_string()),
            lines_read: Metrics::get(&metrics.lines_read),
            records_shipped: Metrics::get(&metrics.records_accepted)
                + Metrics::get(&metrics.records_duplicate)
                + Metrics::get(&metrics.records_rejected)
                + Metrics::get(&metrics.records_unrouted),
            spool_bytes: spool.bytes(),
            lag_seconds: metrics.lag_seconds(),
            last_error: metrics.last_error(),
        };
        match client.heartbeat(&hb).await {
            Ok(()) => warned = false,
            Err(e @ SendError::Config(_)) if !warned => {
                tracing::warn!("heartbeat refused: {e}");
                warned = true;
            }
            Err(e) => tracing::debug!("heartbeat failed: {e}"),
        }
    }
}
