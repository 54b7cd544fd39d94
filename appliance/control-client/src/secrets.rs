//! Secrets referenced from the control plane's provider settings (`api_key_ref`), resolved
//! where they are used: the control plane stores and announces the reference, never the value.

use std::os::unix::fs::PermissionsExt;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SecretError {
    #[error("secret reference `{0}` is not env:NAME or file:/absolute/path")]
    BadReference(String),
    #[error("environment variable {0} is not set")]
    MissingEnv(String),
    #[error("secret file {0} is readable by others (mode {1:o}); make it 0600")]
    TooOpen(String, u32),
    #[error("secret file {0}: {1}")]
    File(String, String),
    #[error("secret from {0} is empty")]
    Empty(String),
}

/// Reads `env:NAME` from the environment or `file:/path` from a file only its owner can read.
pub fn resolve_secret(reference: &str) -> Result<String, SecretError> {
    let value = if let Some(name) = reference.strip_prefix("env:") {
        std::env::var(name).map_err(|_| SecretError::MissingEnv(name.to_owned()))?
    } else if let Some(path) = reference
        .strip_prefix("file:")
        .filter(|p| p.starts_with('/'))
    {
        let meta = std::fs::metadata(path)
            .map_err(|e| SecretError::File(path.to_owned(), e.to_string()))?;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(SecretError::TooOpen(path.to_owned(), mode));
        }
        std::fs::read_to_string(path)
            .map_err(|e| SecretError::File(path.to_owned(), e.to_string()))?
    } else {
        return Err(SecretError::BadReference(reference.to_owned()));
    };
    let value = value.trim().to_owned();
    if value.is_empty() {
        return Err(SecretError::Empty(reference.to_owned()));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_must_be_private() {
        let dir = std::env::temp_dir().join(format!("daarion-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("key");
        std::fs::write(&path, "sk-test\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let reference = format!("file:{}", path.display());
        assert!(matches!(
            resolve_secret(&reference),
            Err(SecretError::TooOpen(_, 0o644))
        ));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(resolve_secret(&reference).unwrap(), "sk-test");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn env_and_bad_references() {
        let path = std::env::var("PATH").unwrap();
        assert_eq!(resolve_secret("env:PATH").unwrap(), path.trim());
        assert_eq!(
            resolve_secret("env:DAARION_NO_SUCH_SECRET_VAR"),
            Err(SecretError::MissingEnv("DAARION_NO_SUCH_SECRET_VAR".into()))
        );
        assert!(matches!(
            resolve_secret("sk-live"),
            Err(SecretError::BadReference(_))
        ));
        assert!(matches!(
            resolve_secret("file:relative"),
            Err(SecretError::BadReference(_))
        ));
    }
}
