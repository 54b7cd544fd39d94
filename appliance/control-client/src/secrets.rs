//! Secrets referenced from the control plane's provider and bot settings (`api_key_ref`,
//! `token_ref`), resolved where they are used: the control plane stores and announces the
//! reference, never the value.
//!
//! A reference is written by whoever holds `config:write`, and the resolver runs as a service
//! user (or as root, for `daarion telegram set-webhook`). So `file:` references resolve only
//! inside one directory kept for secrets (`general.secrets_dir`, `/etc/daarion/secrets` by default):
//! otherwise a reference to `/etc/daarion/admin.token` would send the appliance's root token to
//! whatever `base_url` the same writer chose.

use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path};

/// Files that are credentials of the appliance itself: never a provider's or a bot's secret,
/// even when someone puts them (or a link to them) in the secrets directory.
const NEVER: [&str; 3] = ["admin.token", "admin-password", "admin.password"];

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SecretError {
    #[error("secret reference `{0}` is not env:NAME or file:NAME (in the secrets directory)")]
    BadReference(String),
    #[error("environment variable {0} is not set")]
    MissingEnv(String),
    #[error("secret file {0} is outside the secrets directory {1}")]
    OutsideDir(String, String),
    #[error("secret file {0} is an appliance credential, never a provider's or a bot's")]
    Forbidden(String),
    #[error("secret file {0} is readable by others (mode {1:o}); make it 0600")]
    TooOpen(String, u32),
    #[error("secret file {0}: {1}")]
    File(String, String),
    #[error("secret from {0} is empty")]
    Empty(String),
}

/// Reads `env:NAME` from the environment or `file:PATH` from a file in `dir` only its owner can
/// read. `PATH` is relative to `dir` or absolute inside it; after following every link the file
/// must still be inside `dir`, and it may not be one of the appliance's own credentials.
pub fn resolve_secret_in(reference: &str, dir: &Path) -> Result<String, SecretError> {
    let value = if let Some(name) = reference.strip_prefix("env:") {
        std::env::var(name).map_err(|_| SecretError::MissingEnv(name.to_owned()))?
    } else if let Some(path) = reference.strip_prefix("file:").filter(|p| !p.is_empty()) {
        read_in(path, dir)?
    } else {
        return Err(SecretError::BadReference(reference.to_owned()));
    };
    let value = value.trim().to_owned();
    if value.is_empty() {
        return Err(SecretError::Empty(reference.to_owned()));
    }
    Ok(value)
}

fn read_in(path: &str, dir: &Path) -> Result<String, SecretError> {
    let outside = || SecretError::OutsideDir(path.to_owned(), dir.display().to_string());
    let given = Path::new(path);
    // `..` is refused outright, even where it would land back inside: a reference says plainly
    // which file it means.
    if given.components().any(|c| c == Component::ParentDir) {
        return Err(outside());
    }
    let root = dir
        .canonicalize()
        .map_err(|e| SecretError::File(dir.display().to_string(), e.to_string()))?;
    let joined = if given.is_absolute() {
        given.to_path_buf()
    } else {
        root.join(given)
    };
    // Every link followed: a link in the directory to a file elsewhere is outside too.
    let real = joined
        .canonicalize()
        .map_err(|e| SecretError::File(path.to_owned(), e.to_string()))?;
    if !real.starts_with(&root) || real == root {
        return Err(outside());
    }
    let named = |p: &Path| {
        p.file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| NEVER.contains(&n))
    };
    if named(&real) || named(&joined) {
        return Err(SecretError::Forbidden(path.to_owned()));
    }
    let meta =
        std::fs::metadata(&real).map_err(|e| SecretError::File(path.to_owned(), e.to_string()))?;
    if !meta.is_file() {
        return Err(SecretError::File(path.to_owned(), "not a file".into()));
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(SecretError::TooOpen(path.to_owned(), mode));
    }
    std::fs::read_to_string(&real).map_err(|e| SecretError::File(path.to_owned(), e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    /// A secrets directory with a private `key`, and a private file `outside` next to it (as
    /// `/etc/daarion/admin.token` is next to `/etc/daarion/secrets`).
    struct Fixture {
        base: PathBuf,
        dir: PathBuf,
    }

    impl Fixture {
        fn new() -> Fixture {
            static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
            let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let base =
                std::env::temp_dir().join(format!("daarion-secret-{}-{n}", std::process::id()));
            let dir = base.join("secrets");
            std::fs::create_dir_all(&dir).unwrap();
            private(&dir.join("key"), "sk-test\n");
            private(&base.join("admin.token"), "root-token\n");
            private(&base.join("outside"), "not-yours\n");
            Fixture { base, dir }
        }

        fn resolve(&self, reference: &str) -> Result<String, SecretError> {
            resolve_secret_in(reference, &self.dir)
        }
    }

    impl Drop for Fixture {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.base);
        }
    }

    fn private(path: &Path, text: &str) {
        std::fs::write(path, text).unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }

    #[test]
    fn a_private_file_in_the_secrets_dir_resolves_by_name_or_absolute_path() {
        let f = Fixture::new();
        assert_eq!(f.resolve("file:key").unwrap(), "sk-test");
        let absolute = format!("file:{}", f.dir.join("key").display());
        assert_eq!(f.resolve(&absolute).unwrap(), "sk-test");
        // A link that stays inside is fine.
        std::os::unix::fs::symlink(f.dir.join("key"), f.dir.join("alias")).unwrap();
        assert_eq!(f.resolve("file:alias").unwrap(), "sk-test");
    }

    #[test]
    fn files_must_be_private() {
        let f = Fixture::new();
        let path = f.dir.join("key");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            f.resolve("file:key"),
            Err(SecretError::TooOpen(_, 0o644))
        ));
    }

    /// The attack of issue #21: a `config:write` token points a provider's key at the root
    /// token (or any root-only file), and the provider sends it to a server of its choosing.
    #[test]
    fn references_that_escape_the_secrets_dir_are_refused() {
        let f = Fixture::new();
        std::os::unix::fs::symlink(f.base.join("outside"), f.dir.join("link-out")).unwrap();
        std::os::unix::fs::symlink(f.base.join("admin.token"), f.dir.join("link-admin")).unwrap();
        private(&f.dir.join("admin.token"), "copied-root-token\n");
        let admin_outside = format!("file:{}", f.base.join("admin.token").display());
        let absolute_outside = format!("file:{}", f.base.join("outside").display());
        let sneaky = format!("file:{}/../outside", f.dir.display());
        for (reference, why) in [
            (admin_outside.as_str(), "the admin token next to the dir"),
            ("file:/etc/daarion/admin.token", "the installed admin token"),
            ("file:/etc/shadow", "any root-only file"),
            (absolute_outside.as_str(), "an absolute path outside"),
            ("file:../outside", "a relative climb"),
            (sneaky.as_str(), "an absolute path that climbs out"),
            ("file:link-out", "a link to a file outside"),
            ("file:link-admin", "a link to the admin token"),
            ("file:admin.token", "an admin token copied inside"),
            ("file:.", "the directory itself"),
        ] {
            let answer = f.resolve(reference);
            assert!(
                matches!(
                    answer,
                    Err(SecretError::OutsideDir(..)
                        | SecretError::Forbidden(_)
                        | SecretError::File(..))
                ),
                "{why}: {reference} gave {answer:?}"
            );
            assert!(
                !format!("{answer:?}").contains("root-token")
                    && !format!("{answer:?}").contains("not-yours"),
                "{why}: the value leaked"
            );
        }
    }

    #[test]
    fn env_and_bad_references() {
        let resolve_secret = |r: &str| resolve_secret_in(r, Path::new("/nonexistent"));
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
            resolve_secret("file:"),
            Err(SecretError::BadReference(_))
        ));
    }
}
