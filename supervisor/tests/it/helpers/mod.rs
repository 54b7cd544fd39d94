//! Running the real `daarion` binary.

use std::process::{Command, Output};

pub fn daarion() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_daarion"));
    // Never pick up the machine's /etc/daarion file or the caller's overrides.
    cmd.arg("--config").arg("/dev/null");
    for (key, _) in std::env::vars() {
        if key.starts_with("DAARION__") {
            cmd.env_remove(key);
        }
    }
    cmd.env(
        "DAARION__DATABASE__URL",
        std::env::var("DAARION_TEST_DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into()),
    );
    cmd
}

pub fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

pub mod appliance;
