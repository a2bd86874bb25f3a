//! `redlite-server`: serves Redis clients from a Redlite (SQLite) database file.
//!
//! The map (the library, `redlite_server`, does the work):
//! - `main` (here): parse the command line and config file ([`redlite_server::config`]),
//!   set up logging, bind the listeners, and run until SIGINT/SIGTERM or SHUTDOWN.
//! - [`redlite_server::run_with`]: accept loop, per-connection tasks, active expiry,
//!   graceful shutdown.
//! - [`redlite_server::conn`]: one client: parse, dispatch, flush once per batch.
//! - [`redlite_server::engine`]: the writer thread (group commit), the reader pool and
//!   the WAL fsync timer.
//! - [`redlite_server::admin`]: HELLO, AUTH, CLIENT, COMMAND, CONFIG, INFO.
//! - [`redlite_server::protocol`]: RESP requests in, RESP2/RESP3 replies out.

use std::process::ExitCode;

use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::prelude::*;
use tracing_subscriber::reload;

use redlite_server::config::{self, Cli, Config};

fn main() -> ExitCode {
    let config = match Config::from_args(std::env::args().skip(1)) {
        Ok(Cli::Run(config)) => *config,
        Ok(Cli::Help) => {
            print!("{}", config::help_text());
            return ExitCode::SUCCESS;
        }
        Ok(Cli::Version) => {
            println!(
                "redlite-server {} (Redlite {}, speaks Redis {}, SQLite {})",
                env!("CARGO_PKG_VERSION"),
                redlite::VERSION,
                redlite_server::admin::REDIS_VERSION,
                rusqlite::version()
            );
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("redlite-server: {e}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = config.validate() {
        eprintln!("redlite-server: {e}");
        return ExitCode::from(2);
    }

    // The level can change at run time (CONFIG SET loglevel), hence the reload layer.
    let level = LevelFilter::from_level(config.loglevel.tracing_level());
    let (filter, handle) = reload::Layer::new(level);
    tracing_subscriber::registry()
        .with(filter)
        .with(
            tracing_subscriber::fmt::layer()
                .with_target(false)
                // Colour codes only on a terminal, not in log files or journald.
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout())),
        )
        .init();
    redlite_server::set_log_level_hook(Box::new(move |level| {
        let _ = handle.modify(|f| *f = LevelFilter::from_level(level.tracing_level()));
    }));

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("redlite-server: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        let listeners = redlite_server::bind_all(&config).await?;
        redlite_server::run_with(config, listeners, shutdown_signal()).await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("redlite-server: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let ctrl_c = tokio::signal::ctrl_c();
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = ctrl_c => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = ctrl_c.await;
        }
    }
}
