//! `daarion`: the one binary of the appliance. Every subcommand is a thin shell over a library
//! crate; see `docs/architecture.md`.

mod admin;
mod child_exec;
mod cli;
mod client;
mod doctor;
mod models;
mod service;
mod signals;
mod up;

use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use daarion_config::{Config, Source};

use crate::cli::{Cli, Command};

/// Exit status for a configuration that does not load (sysexits' EX_CONFIG).
const EXIT_CONFIG: u8 = 78;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Before any config or runtime: it only sets up and replaces this process.
    if let Command::ChildExec { parent, command } = &cli.command {
        return child_exec::run(*parent, &command[0], &command[1..]);
    }
    // rustls is built with both ring and aws-lc-rs here (the Bolt driver wants aws-lc-rs), and
    // with two providers compiled in, `ClientConfig::builder()` panics unless one is chosen.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = match load_config(&cli) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("daarion: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("daarion: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli, config)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("daarion: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn load_config(cli: &Cli) -> Result<Config, daarion_config::ConfigError> {
    match &cli.config {
        Some(path) => Config::load(Source::Explicit(path)),
        None => Config::load(Source::Default),
    }
}

async fn run(cli: Cli, config: Config) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Version => {
            println!("{}", version_line());
            Ok(ExitCode::SUCCESS)
        }
        Command::Doctor { json } => Ok(doctor::run(&config, json).await),
        Command::Migrate => {
            init_logging(&config, "migrate")?;
            let pool = daarion_db::connect(&config.database).await?;
            let applied = daarion_db::migrate(&pool).await?;
            if applied.is_empty() {
                println!("database is up to date");
            } else {
                println!("applied migrations: {applied:?}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Service { name } => {
            init_logging(&config, name.as_str())?;
            let shutdown = signals::shutdown_token();
            service::run(name, config, shutdown).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Up => {
            init_logging(&config, "supervisor")?;
            let shutdown = signals::shutdown_token();
            up::run(config, cli.config.clone(), shutdown).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Admin { command } => admin::run(&config, command).await,
        Command::Models { command } => models::run(&config, command).await,
        Command::Telegram {
            command: cli::TelegramCommand::Approve { code },
        } => client::approve_pairing(&config, &code).await,
        Command::Telegram {
            command: cli::TelegramCommand::SetWebhook { bot },
        } => match daarion_gateway::set_webhook(&config, &bot).await {
            Ok(url) => {
                println!("webhook for {bot} set to {url}");
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => {
                eprintln!("daarion: cannot set the webhook of {bot}: {e}");
                Ok(ExitCode::FAILURE)
            }
        },
        Command::Status => client::status(&config).await,
        Command::Logs {
            unit,
            lines,
            filter,
        } => client::logs(&config, &unit, lines, &filter).await,
        Command::Restart { unit } => client::act(&config, &unit, "restart").await,
        Command::Start { unit } => client::act(&config, &unit, "start").await,
        Command::Stop { unit } => client::act(&config, &unit, "stop").await,
        Command::ChildExec { .. } => unreachable!("handled before the runtime starts"),
    }
}

fn init_logging(config: &Config, name: &str) -> anyhow::Result<()> {
    daarion_telemetry::init_logging(&config.telemetry, name).context("setting up logging")?;
    // Each process serves its recorded spans to the root token only (`/internal/traces`).
    daarion_http::set_root_token_file(config.supervisor.admin_token_file.clone());
    Ok(())
}

pub(crate) fn version_line() -> String {
    format!(
        "daarion {} ({} {}, {} build)",
        env!("CARGO_PKG_VERSION"),
        std::env::consts::OS,
        std::env::consts::ARCH,
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
    )
}
