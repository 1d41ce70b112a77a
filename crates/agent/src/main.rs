//! relaywatch-agent: reads Postfix logs on a mail host and ships delivery records to the Relaywatch API.
//!
//! Subcommands: `run` (follow logs and ship), `backfill` (ship old logs once), `check` (configuration, files, API),
//! `parse` (offline: files or stdin to NDJSON, statistics or a summary).

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use relaywatch_agent::{backfill_cmd, check_cmd, parse_cmd, run_cmd};

#[derive(Parser)]
#[command(
    name = "relaywatch-agent",
    version,
    about = "Reads Postfix logs and ships delivery records to Relaywatch"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Follow Postfix logs and ship delivery records to the API (through rotations, restarts and API outages).
    Run(run_cmd::RunArgs),
    /// Ship old log files (plain or .gz) once, with progress and a summary.
    Backfill(backfill_cmd::BackfillArgs),
    /// Check the configuration, the log files, the state directory and the API key.
    Check(check_cmd::CheckArgs),
    /// Parse and correlate Postfix log files (plain or .gz; `-` for stdin). No network.
    Parse(parse_cmd::ParseArgs),
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("RELAYWATCH_AGENT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Parse(args) => parse_cmd::run(args),
        Command::Run(args) => {
            init_logging();
            run_cmd::run(args)
        }
        Command::Backfill(args) => {
            init_logging();
            backfill_cmd::run(args)
        }
        Command::Check(args) => {
            init_logging();
            match check_cmd::run(args) {
                Ok(true) => Ok(()),
                Ok(false) => return ExitCode::from(1),
                Err(e) => Err(e),
            }
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // `relaywatch-agent parse --json log | head` is a normal use: a closed pipe ends the output, it is no error.
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("relaywatch-agent: error: {e:#}");
            if e.downcast_ref::<run_cmd::ConfigError>().is_some() {
                ExitCode::from(run_cmd::EXIT_CONFIG as u8)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .map(std::io::Error::kind)
            .or_else(|| {
                cause
                    .downcast_ref::<serde_json::Error>()
                    .and_then(serde_json::Error::io_error_kind)
            })
            == Some(std::io::ErrorKind::BrokenPipe)
    })
}
