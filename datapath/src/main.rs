//! `ferrite`: see `ferrite --help`.

use clap::Parser;
use datapath::config::{Config, Flags};

/// mimalloc rather than glibc malloc: cross-shard messages and their outcomes are allocated on
/// one shard and freed on another, which glibc pays for in arena locks and consolidation.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let command_line: Vec<_> = std::env::args_os().collect();
    // --help, --version and malformed flags end here, with clap's own message and exit code.
    let flags = Flags::parse_from(&command_line);
    let config = match flags
        .over_config_file(&command_line)
        .and_then(Config::resolve)
    {
        Ok(config) => config,
        Err(error) => {
            eprintln!("ferrite: {error}");
            return std::process::ExitCode::from(2);
        }
    };
    let filter =
        tracing_subscriber::EnvFilter::try_new(&config.log_level).unwrap_or_else(|error| {
            eprintln!(
                "ferrite: --log-level {:?} is not a log filter ({error}); using info",
                config.log_level
            );
            tracing_subscriber::EnvFilter::new("info")
        });
    let colour = std::io::IsTerminal::is_terminal(&std::io::stdout());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(colour)
        .init();
    tracing::info!(
        version = datapath::commands::VERSION,
        pid = std::process::id(),
        "ferrite starting"
    );
    match datapath::server::run(config) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error}");
            eprintln!("ferrite: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}
