//! The Parlor server.
//!
//! Run with `cargo run --release`, then open the printed URL;
//! `parlor --config my.toml` overrides any key of `config/default.toml`.

use std::{path::PathBuf, process::ExitCode};

use clap::Parser;

use parlor::config::Config;

/// A real-time room and game server: tic-tac-toe, connect four, match three
/// and live rooms over WebSockets.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// A TOML file overriding keys of the built-in config/default.toml.
    /// PARLOR_<SECTION>__<KEY> environment variables override both.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let config = match Config::load(cli.config.as_deref(), None) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("parlor: {err}");
            return ExitCode::from(2);
        }
    };
    match actix_web::rt::System::new().block_on(parlor::run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("parlor: {err}");
            ExitCode::FAILURE
        }
    }
}
