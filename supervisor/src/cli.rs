//! The command line.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use daarion_config::ServiceName;

#[derive(Debug, Parser)]
#[command(
    name = "daarion",
    version,
    about = "An edge-first AI-agent appliance for one GPU box"
)]
pub struct Cli {
    /// Configuration file [default: /etc/daarion/daarion.toml, skipped when absent].
    #[arg(long, global = true, env = "DAARION_CONFIG")]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run one service in the foreground (what the supervisor starts for each child).
    Service {
        #[arg(value_parser = parse_service)]
        name: ServiceName,
    },
    /// Apply pending database migrations.
    Migrate,
    /// Check PostgreSQL, Redis, NATS, disk, GPU and models; exit non-zero if one fails.
    Doctor {
        /// Print the results as JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Print the version.
    Version,
}

fn parse_service(s: &str) -> Result<ServiceName, String> {
    s.parse()
}
