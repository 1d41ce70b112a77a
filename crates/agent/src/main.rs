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
    match cli.command {
        Command::Parse(args) => parse_cmd::run(args),
    }
}
