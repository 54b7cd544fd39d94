//! `/ready`'s checks beyond the bus: memory answers, the blob store answers, and the tools the
//! formats need are installed (a missing one is named with its Debian package).

use daarion_blobs::{BlobStore, Sha256Hex};
use daarion_memory_client::MemoryClient;
use daarion_telemetry::{Check, CheckResult};
use futures::future::BoxFuture;

/// The external tools extraction runs, and the Debian package each comes from.
pub const TOOLS: [(&str, &str); 7] = [
    ("pdfinfo", "poppler-utils"),
    ("pdftotext", "poppler-utils"),
    ("pdftoppm", "poppler-utils"),
    ("tesseract", "tesseract-ocr"),
    ("ffmpeg", "ffmpeg"),
    ("ffprobe", "ffmpeg"),
    ("prlimit", "util-linux"),
];

pub struct MemoryCheck(pub MemoryClient);

impl Check for MemoryCheck {
    fn name(&self) -> &str {
        "memory"
    }
    fn check(&self) -> BoxFuture<'_, CheckResult> {
        Box::pin(async move {
            self.0
                .ping()
                .await
                .map(|()| "answers".to_owned())
                .map_err(|e| e.to_string())
        })
    }
}

pub struct BlobCheck(pub BlobStore);

impl Check for BlobCheck {
    fn name(&self) -> &str {
        "blobs"
    }
    fn check(&self) -> BoxFuture<'_, CheckResult> {
        Box::pin(async move {
            // A key nothing has: the answer (no such blob) proves the store answers.
            let probe = Sha256Hex::parse(&"0".repeat(64)).map_err(|e| e.to_string())?;
            self.0
                .exists(&probe)
                .await
                .map(|_| "answers".to_owned())
                .map_err(|e| e.to_string())
        })
    }
}

/// The tools on `PATH`; fails naming each missing one and its package. With no vision model
/// configured the detail says images get their OCR text only.
pub struct ToolsCheck {
    pub vision: bool,
}

impl Check for ToolsCheck {
    fn name(&self) -> &str {
        "tools"
    }
    fn check(&self) -> BoxFuture<'_, CheckResult> {
        let missing = missing_tools(std::env::var_os("PATH").unwrap_or_default());
        let vision = self.vision;
        Box::pin(async move {
            if !missing.is_empty() {
                return Err(format!("missing: {}", missing.join(", ")));
            }
            Ok(if vision {
                "all present".to_owned()
            } else {
                "all present; no vision model (parser.vision_model): images get OCR text only"
                    .to_owned()
            })
        })
    }
}

/// `tool (package)` for each tool not found as an executable file on `path`.
pub fn missing_tools(path: std::ffi::OsString) -> Vec<String> {
    use std::os::unix::fs::PermissionsExt as _;
    let dirs: Vec<_> = std::env::split_paths(&path).collect();
    TOOLS
        .iter()
        .filter(|(tool, _)| {
            !dirs.iter().any(|d| {
                std::fs::metadata(d.join(tool))
                    .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            })
        })
        .map(|(tool, package)| format!("{tool} ({package})"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_tool_is_named_with_its_package() {
        let dir = std::env::temp_dir().join(format!("parser-tools-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for (tool, _) in TOOLS.iter().filter(|(t, _)| *t != "tesseract") {
            let file = dir.join(tool);
            std::fs::write(&file, "#!/bin/sh\n").unwrap();
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        assert_eq!(
            missing_tools(dir.clone().into_os_string()),
            vec!["tesseract (tesseract-ocr)".to_owned()]
        );
        assert_eq!(missing_tools(std::ffi::OsString::new()).len(), TOOLS.len());
        std::fs::remove_dir_all(dir).unwrap();
    }
}
