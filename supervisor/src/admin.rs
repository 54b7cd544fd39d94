//! `daarion admin …`: admin accounts, straight in the database (the command runs as root on the
//! box, which needs no password). Each change goes through the control plane's own functions,
//! so it is validated and audited exactly as the API's is.

use std::process::ExitCode;

use anyhow::Context;
use daarion_config::Config;
use daarion_control_plane::accounts;
use daarion_control_plane::admins::{create_admin, generate_password};
use daarion_control_plane::principal::{Principal, Scope};

use crate::cli::AdminCommand;

/// Who the audit log names for a change made here.
fn actor() -> Principal {
    Principal {
        name: "cli".into(),
        scopes: vec![Scope::Admin],
    }
}

/// The password from standard input, or a generated one (then printed once).
fn password(from_stdin: bool) -> anyhow::Result<(String, bool)> {
    if from_stdin {
        let mut line = String::new();
        std::io::stdin()
            .read_line(&mut line)
            .context("reading the password from standard input")?;
        Ok((line.trim_end_matches(['\r', '\n']).to_owned(), false))
    } else {
        Ok((generate_password(), true))
    }
}

pub async fn run(config: &Config, command: AdminCommand) -> anyhow::Result<ExitCode> {
    let pool = daarion_db::connect(&config.database).await?;
    daarion_db::migrate(&pool).await?;
    match command {
        AdminCommand::Create {
            username,
            password_stdin,
        } => {
            let (password, generated) = password(password_stdin)?;
            create_admin(&pool, &username, &password).await?;
            println!("created admin `{username}`");
            if generated {
                println!("password: {password}");
            }
        }
        AdminCommand::Password {
            username,
            password_stdin,
        } => {
            let (password, generated) = password(password_stdin)?;
            let ended = accounts::set_password(&pool, &actor(), &username, &password, None).await?;
            println!("password of `{username}` changed; {ended} session(s) ended");
            if generated {
                println!("password: {password}");
            }
        }
        AdminCommand::Disable { username } => {
            accounts::set_disabled(&pool, &actor(), &username, true).await?;
            println!("admin `{username}` disabled; its sessions ended");
        }
        AdminCommand::Enable { username } => {
            accounts::set_disabled(&pool, &actor(), &username, false).await?;
            println!("admin `{username}` enabled");
        }
        AdminCommand::SignOut { username } => {
            let ended = accounts::end_all_sessions(&pool, &actor(), &username).await?;
            println!("{ended} session(s) of `{username}` ended");
        }
    }
    Ok(ExitCode::SUCCESS)
}
