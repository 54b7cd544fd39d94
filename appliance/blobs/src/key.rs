//! Blob keys: a SHA-256 in lowercase hex, laid out as `sha256/ab/cd/<hex>` so that no
//! directory holds more than a few hundred entries on a box with millions of files.

use object_store::path::Path;

use crate::BlobError;

/// A checked SHA-256 in lowercase hex: safe to put in a path.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Sha256Hex(String);

impl Sha256Hex {
    pub fn parse(text: &str) -> Result<Sha256Hex, BlobError> {
        if text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            Ok(Sha256Hex(text.to_owned()))
        } else {
            Err(BlobError::BadKey(text.chars().take(80).collect()))
        }
    }

    pub(crate) fn from_digest(digest: &[u8]) -> Sha256Hex {
        Sha256Hex(digest.iter().map(|b| format!("{b:02x}")).collect())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Sha256Hex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where a blob lives in the store.
pub fn object_path(sha: &Sha256Hex) -> Path {
    let hex = sha.as_str();
    Path::from(format!("sha256/{}/{}/{hex}", &hex[..2], &hex[2..4]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_lowercase_sha256_hex_is_a_key() {
        let good = "ab".repeat(32);
        for (text, ok) in [
            (good.as_str(), true),
            ("AB", false),
            ("../../etc/passwd", false),
            (&"AB".repeat(32), false),
            (&"g".repeat(64), false),
            (&"a".repeat(65), false),
        ] {
            assert_eq!(Sha256Hex::parse(text).is_ok(), ok, "{text}");
        }
        let sha = Sha256Hex::parse(&good).unwrap();
        assert_eq!(object_path(&sha).as_ref(), format!("sha256/ab/ab/{good}"));
    }
}
