//! The bundled nats-server's configuration file: where it listens, its JetStream store, and,
//! with `bus.credentials_dir` set, a user per service with only its own subjects (see
//! `daarion_bus::auth`). Rewritten at every start, so a password file replaced by the operator
//! takes effect on the next `daarion up`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use daarion_bus::{Naming, auth};
use daarion_config::Config;

/// Writes `<store>/server.conf` (0600: it holds every service's password) and returns its path.
pub fn write(config: &Config, addr: SocketAddr, store: &Path) -> anyhow::Result<PathBuf> {
    let authorization = match config.bus.credentials() {
        Some(dir) => {
            let passwords = auth::ensure_passwords(dir).with_context(|| {
                format!(
                    "NATS credentials in {} (bus.credentials_dir)",
                    dir.display()
                )
            })?;
            auth::authorization(&Naming::new(config.bus.prefix.clone()), &passwords)
        }
        None => {
            tracing::warn!(
                "bus.credentials_dir is empty: the bundled NATS accepts anyone on this box (daarion doctor warns)"
            );
            String::new()
        }
    };
    let text = format!(
        "# Written by `daarion up` at every start; edits are lost.\n\
         server_name: \"daarion\"\n\
         listen: {listen}\n\
         jetstream {{\n  store_dir: {store}\n}}\n\
         {authorization}",
        listen = quoted(&addr.to_string()),
        store = quoted(&store.display().to_string()),
    );
    let path = store.join("server.conf");
    let _ = std::fs::remove_file(&path);
    daarion_bus::auth::write_private(&path, text.trim_end())
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

fn quoted(s: &str) -> String {
    serde_json::to_string(s).expect("a string serialises")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn the_file_is_private_and_names_every_user_when_credentials_are_set() {
        let dir = std::env::temp_dir().join(format!("daarion-natsconf-{}", uuid::Uuid::new_v4()));
        let store = dir.join("nats");
        std::fs::create_dir_all(&store).unwrap();
        let mut config = Config::defaults();
        config.bus.credentials_dir = dir.join("credentials");
        let addr: SocketAddr = "127.0.0.1:4222".parse().unwrap();
        let path = write(&config, addr, &store).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert!(text.contains("listen: \"127.0.0.1:4222\""), "{text}");
        for user in auth::users() {
            let password = auth::read_password(&config.bus.credentials_dir, user).unwrap();
            assert!(
                text.contains(&format!("user: \"{user}\", password: \"{password}\"")),
                "{user}"
            );
        }
        // Rewritten, not appended to, on the next start; and without credentials, no users.
        config.bus.credentials_dir = PathBuf::new();
        let text = std::fs::read_to_string(write(&config, addr, &store).unwrap()).unwrap();
        assert!(!text.contains("authorization"), "{text}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
