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
    /// Run the supervisor: every enabled service, in dependency order, until SIGTERM.
    Up,
    /// Show every unit's state, pid, uptime and restarts (exit 3 if one is not ready).
    Status,
    /// Print the last lines a unit wrote.
    Logs {
        unit: String,
        /// How many lines.
        #[arg(short = 'n', long, default_value_t = 100)]
        lines: usize,
        /// Only lines containing this text.
        #[arg(long, default_value = "")]
        filter: String,
    },
    /// Restart a unit.
    Restart { unit: String },
    /// Start a unit that was stopped or marked failed.
    Start { unit: String },
    /// Stop a unit (it stays stopped until started).
    Stop { unit: String },
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
    /// The model catalogue: manifests and their files.
    Models {
        #[command(subcommand)]
        command: ModelsCommand,
    },
    /// Telegram bots (configured in the control plane as `telegram.<bot>`).
    Telegram {
        #[command(subcommand)]
        command: TelegramCommand,
    },
    /// Admin accounts for the browser panel.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Print the version.
    Version,
    /// Internal: how the supervisor starts a child (sets the parent-death signal, then execs).
    #[command(hide = true)]
    ChildExec {
        #[arg(long)]
        parent: i32,
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
}

fn parse_service(s: &str) -> Result<ServiceName, String> {
    s.parse()
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create an admin account (the installer creates the first one).
    Create {
        username: String,
        /// Read the password from standard input instead of generating one.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Set an account's password (generated, or read with `--password-stdin`) and end all of
    /// its sessions: for a forgotten password, or one that may have leaked.
    Password {
        username: String,
        /// Read the password from standard input instead of generating one.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Disable an account: it cannot log in, and its sessions end at once.
    Disable { username: String },
    /// Enable a disabled account again.
    Enable { username: String },
    /// End every session of an account ("sign out everywhere").
    SignOut { username: String },
}

#[derive(Debug, Subcommand)]
pub enum TelegramCommand {
    /// Register the bot's webhook with Telegram: `public_url` + `/telegram/BOT/webhook`, with
    /// the bot's secret token.
    SetWebhook { bot: String },
    /// Approve a pairing code a new Telegram user was given (bots with `pairing = true`).
    Approve { code: String },
}

#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// Every manifest with its file's presence and size.
    List,
    /// Hash every present model file and compare with its manifest (exit 1 on a mismatch).
    Verify,
    /// Download a model's file from its manifest's `url`: resumes an interrupted download,
    /// refuses a file whose sha256 does not match.
    Pull { model: String },
    /// Delete a model's file (the manifest stays; `pull` brings it back).
    Rm { model: String },
}
