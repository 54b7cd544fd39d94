//! `daarion models pull`: a model file downloaded from its manifest's `url`, resumable (a
//! `.part` file continued with an HTTP Range request) and checked against the manifest's
//! sha256 before it takes the model's place; a file whose checksum is wrong is refused and
//! removed.

use std::path::PathBuf;

use futures::StreamExt;
use tokio::io::AsyncWriteExt;

use crate::manifest::{Manifest, sha256_file};

#[derive(Debug, thiserror::Error)]
pub enum PullError {
    #[error("model `{0}` has no url in its manifest")]
    NoUrl(String),
    #[error("model `{0}` is an online voice: there is nothing to download")]
    Online(String),
    #[error("download failed: {0}")]
    Http(String),
    #[error("{0}: {1}")]
    Io(PathBuf, std::io::Error),
    #[error("checksum mismatch: expected {expected}, got {actual}; the download was removed")]
    Checksum { expected: String, actual: String },
}

/// How far a download has come.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    pub done: u64,
    pub total: Option<u64>,
}

#[derive(Debug)]
pub struct Pulled {
    pub path: PathBuf,
    pub bytes: u64,
    /// Bytes that were already there from an interrupted pull.
    pub resumed_from: u64,
    pub sha256: String,
    /// The manifest had a checksum and it matched.
    pub verified: bool,
}

fn part_path(target: &std::path::Path) -> PathBuf {
    let mut name = target.file_name().unwrap_or_default().to_os_string();
    name.push(".part");
    target.with_file_name(name)
}

/// The model's file, then each other file it needs (a vision model's projector, an image
/// model's parts) that the manifest says where to fetch from.
pub async fn download(
    manifest: &Manifest,
    models_dir: &std::path::Path,
    mut on_progress: impl FnMut(Progress),
) -> Result<Vec<Pulled>, PullError> {
    if manifest.online() {
        return Err(PullError::Online(manifest.id.clone()));
    }
    if manifest.url.is_none() {
        return Err(PullError::NoUrl(manifest.id.clone()));
    }
    let mut pulled = Vec::new();
    for file in manifest.files(models_dir) {
        let Some(url) = &file.url else { continue };
        pulled.push(
            fetch(
                url,
                &file.path,
                file.sha256.as_deref(),
                file.size,
                &mut on_progress,
            )
            .await?,
        );
    }
    Ok(pulled)
}

/// One file: resumed from its `.part`, checked against `sha256` before it takes its place.
async fn fetch(
    url: &str,
    target: &std::path::Path,
    sha256_expected: Option<&str>,
    size: Option<u64>,
    on_progress: &mut impl FnMut(Progress),
) -> Result<Pulled, PullError> {
    let target = target.to_owned();
    let io = |path: &std::path::Path| {
        let path = path.to_owned();
        move |e| PullError::Io(path, e)
    };
    if let Some(dir) = target.parent() {
        tokio::fs::create_dir_all(dir).await.map_err(io(dir))?;
    }
    let part = part_path(&target);
    let have = tokio::fs::metadata(&part).await.map_or(0, |m| m.len());
    // Connecting is bounded; a large model's download takes as long as it takes.
    let client = daarion_client::outbound_client(daarion_client::Timeouts {
        connect: std::time::Duration::from_secs(15),
        total: None,
    });
    let mut request = client.get(url);
    if have > 0 {
        request = request.header(reqwest::header::RANGE, format!("bytes={have}-"));
    }
    let response = request
        .send()
        .await
        .map_err(|e| PullError::Http(e.to_string()))?;
    let status = response.status().as_u16();
    let (resumed_from, total) = match status {
        206 => (have, response.content_length().map(|n| n + have)),
        // The part file already holds everything.
        416 if have > 0 => (have, Some(have)),
        200 => (0, response.content_length()),
        s => return Err(PullError::Http(format!("HTTP {s} from {url}"))),
    };
    let total = total.or(size);
    let mut file = tokio::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .append(resumed_from > 0)
        .truncate(resumed_from == 0)
        .open(&part)
        .await
        .map_err(io(&part))?;
    let mut done = resumed_from;
    on_progress(Progress { done, total });
    if status != 416 {
        let mut body = response.bytes_stream();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| PullError::Http(format!("interrupted: {e}")))?;
            file.write_all(&chunk).await.map_err(io(&part))?;
            done += chunk.len() as u64;
            on_progress(Progress { done, total });
        }
    }
    file.flush().await.map_err(io(&part))?;
    drop(file);
    let sha256 = {
        let hashed = part.clone();
        tokio::task::spawn_blocking(move || sha256_file(&hashed))
            .await
            .map_err(|e| PullError::Http(e.to_string()))?
            .map_err(io(&part))?
    };
    if let Some(expected) = sha256_expected
        && !expected.eq_ignore_ascii_case(&sha256)
    {
        let _ = tokio::fs::remove_file(&part).await;
        return Err(PullError::Checksum {
            expected: expected.to_owned(),
            actual: sha256,
        });
    }
    tokio::fs::rename(&part, &target)
        .await
        .map_err(io(&target))?;
    Ok(Pulled {
        path: target,
        bytes: done,
        resumed_from,
        sha256,
        verified: sha256_expected.is_some(),
    })
}
