//! relaywatch-agent: reads Postfix logs on a mail host and turns them into delivery records.
//!
//! Subcommands: `parse` (offline: files or stdin to NDJSON, statistics or a summary). Tailing and shipping come later.

use clap::{Parser, Subcommand};

mod parse_cmd;

#[derive(Parser)]
#[command(
    name = "relaywatch-agent",
    version,
    about = "Reads Postfix logs and turns them into delivery records"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Parse and correlate Postfix log files (plain or .gz; `-` for stdin).
    Parse(parse_cmd::ParseArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Parse(args) => parse_cmd::run(args),
    };
    // `relaywatch-agent parse --json log | head` is a normal use: a closed pipe ends the output, it is no error.
    match result {
        Err(e) if is_broken_pipe(&e) => Ok(()),
        other => other,
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
