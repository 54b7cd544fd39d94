//! One `attachment.created`: the record read from memory, the file from the blob store, its
//! type checked again, its text read and stored section by section, then `parsed` (or `failed`
//! with the reason).
//!
//! Handling the same event twice is handling it once: an event of an earlier attempt, or for
//! an attachment gone or already finished, is acked and dropped; sections land on their
//! ordinals, so a document read again after a crash adds no chunk twice.

use std::path::{Path, PathBuf};
use std::time::Instant;

use daarion_blobs::{BlobError, Sha256Hex};
use daarion_bus::events::AttachmentCreated;
use daarion_bus::{Envelope, HandlerError};
use daarion_formats::{ExtractError, Format, Kind, Limits, Progress};
use daarion_memory_client::{
    Attachment, AttachmentState, MemoryError, ParseDone, ParseFailed, ParseOptions, Section,
};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::jobs::{Job, Tracked};
use crate::metrics::{ATTACHMENTS, PAGE_SECONDS, PAGES};
use crate::write::{Writer, locator};
use crate::{App, media};

/// Why reading an attachment stopped short of `parsed`.
#[derive(Debug)]
pub enum Stop {
    /// No longer this handler's to finish: a later attempt, deleted, or finished elsewhere.
    Stale(String),
    /// It cannot be read; memory is told why, for a person.
    Failed { reason: String, permanent: bool },
    /// Worth trying again later (memory, the swapper or the blob store down; the parser
    /// stopping).
    Transient(String),
}

impl Stop {
    /// Memory's answer to a parser call: 404 (deleted) and 409 (another attempt, or no longer
    /// being read) mean someone else decided; other refusals are a contract break this retry
    /// will not fix; no answer is worth retrying.
    pub fn memory(e: MemoryError) -> Stop {
        match e.status() {
            Some(404 | 409) => Stop::Stale(e.to_string()),
            Some(_) => Stop::Failed {
                reason: format!("the text could not be stored: {e}"),
                permanent: true,
            },
            None => Stop::Transient(e.to_string()),
        }
    }

    pub fn extract(e: ExtractError) -> Stop {
        if e.permanent() {
            Stop::Failed {
                reason: e.to_string(),
                permanent: true,
            }
        } else {
            Stop::Transient(e.to_string())
        }
    }

    fn failed(reason: impl Into<String>) -> Stop {
        Stop::Failed {
            reason: reason.into(),
            permanent: true,
        }
    }
}

/// The `parser-pipeline` handler.
pub async fn on_created(
    app: App,
    shutdown: CancellationToken,
    envelope: Envelope<AttachmentCreated>,
) -> Result<(), HandlerError> {
    let delivery = envelope.delivery;
    let event = envelope.payload;
    let id = event.attachment_id;
    let attempt = i32::try_from(event.attempt).unwrap_or(i32::MAX);
    let record = match app.memory.attachment(id).await {
        Ok(record) => record,
        Err(e) if e.status() == Some(404) => {
            tracing::info!(attachment = %id, "attachment gone; nothing to read");
            ATTACHMENTS
                .with_label_values(&["skipped", &event.format])
                .inc();
            return Ok(());
        }
        Err(e) if e.status().is_none() => return Err(HandlerError::Transient(e.to_string())),
        Err(e) => return Err(HandlerError::Permanent(e.to_string())),
    };
    let format = record.format.clone();
    if record.attempt != attempt
        || matches!(
            record.state,
            AttachmentState::Parsed | AttachmentState::Indexed | AttachmentState::Failed
        )
    {
        tracing::info!(
            attachment = %id, attempt, current = record.attempt, state = record.state.as_str(),
            "not this event's to read (another attempt, or finished); dropped"
        );
        ATTACHMENTS.with_label_values(&["skipped", &format]).inc();
        return Ok(());
    }
    let tracked = app.jobs.start(Job {
        attachment_id: id,
        user_id: record.user_id,
        name: record.name.clone(),
        format: format.clone(),
        attempt,
        done: 0,
        total: None,
        started_at: time::OffsetDateTime::now_utc(),
    });
    let started = Instant::now();
    let outcome = read(&app, &record, &tracked, &shutdown).await;
    drop(tracked);
    match outcome {
        Ok(pages) => {
            ATTACHMENTS.with_label_values(&["parsed", &format]).inc();
            PAGES.with_label_values(&[&format]).inc_by(u64::from(pages));
            PAGE_SECONDS.observe(started.elapsed().as_secs_f64() / f64::from(pages.max(1)));
            tracing::info!(attachment = %id, pages, "parsed");
            Ok(())
        }
        Err(Stop::Stale(why)) => {
            tracing::info!(attachment = %id, %why, "stopped: no longer ours to read");
            ATTACHMENTS.with_label_values(&["skipped", &format]).inc();
            Ok(())
        }
        // The last try: the message goes to the dead letters, so the record must say it
        // failed (retryable from the UI once the cause is fixed), or it would stay `parsing`.
        Err(Stop::Transient(why)) if delivery.last => {
            let reason = format!("gave up after {} tries: {why}", delivery.count);
            fail(&app, id, attempt, &format, reason, false).await?;
            Err(HandlerError::Transient(why))
        }
        Err(Stop::Transient(why)) => {
            ATTACHMENTS.with_label_values(&["retried", &format]).inc();
            Err(HandlerError::Transient(why))
        }
        Err(Stop::Failed { reason, permanent }) => {
            fail(&app, id, attempt, &format, reason, permanent).await
        }
    }
}

/// Records why the attachment cannot be read. The record says why, for the person and the UI,
/// so the message is then acked rather than dead-lettered: the dead-letter stream is for what
/// nobody has recorded.
async fn fail(
    app: &App,
    id: uuid::Uuid,
    attempt: i32,
    format: &str,
    reason: String,
    permanent: bool,
) -> Result<(), HandlerError> {
    tracing::warn!(attachment = %id, %reason, permanent, "cannot be read");
    ATTACHMENTS.with_label_values(&["failed", format]).inc();
    let failed = ParseFailed {
        attempt,
        reason,
        permanent,
    };
    match app.memory.attachment_failed(id, &failed).await {
        Ok(_) => Ok(()),
        Err(e) if matches!(e.status(), Some(404 | 409)) => Ok(()),
        Err(e) if e.status().is_none() => Err(HandlerError::Transient(e.to_string())),
        Err(e) => Err(HandlerError::Permanent(e.to_string())),
    }
}

/// A directory of this handler's own, removed with everything in it when dropped.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Reads the attachment and stores its text; the pages read.
async fn read(
    app: &App,
    record: &Attachment,
    tracked: &Tracked,
    shutdown: &CancellationToken,
) -> Result<u32, Stop> {
    let scratch = Scratch(app.work_dir.join(Uuid::new_v4().simple().to_string()));
    tokio::fs::create_dir_all(&scratch.0)
        .await
        .map_err(|e| Stop::Transient(format!("{}: {e}", scratch.0.display())))?;
    let path = fetch(app, &record.sha256, &scratch.0).await?;
    let format = {
        let (path, name) = (path.clone(), record.name.clone());
        tokio::task::spawn_blocking(move || daarion_formats::detect_file(&path, Some(&name)))
            .await
            .map_err(|e| Stop::failed(format!("the type check crashed: {e}")))?
            .map_err(|e| match e {
                daarion_formats::DetectError::Io(e) => Stop::Transient(e.to_string()),
                e => Stop::failed(e.to_string()),
            })?
    };
    let limits = app.limits(&record.options);
    let mut writer = Writer::new(app.memory.clone(), record.id, record.attempt);
    writer.progress(0, None, true).await?;
    let pages = match format.kind() {
        Kind::Audio | Kind::Video => {
            media::transcribe(app, &path, format, &limits, &scratch.0, &mut writer).await?
        }
        Kind::Image => {
            // A photo without words may still be worth describing.
            let ocr_pages =
                document(&path, format, &limits, tracked, shutdown, &mut writer, true).await?;
            let described = media::describe(app, &path, format, &mut writer).await?;
            if ocr_pages == 0 && !described {
                return Err(Stop::failed(ExtractError::NoText.to_string()));
            }
            1
        }
        Kind::Document | Kind::Spreadsheet => {
            document(
                &path,
                format,
                &limits,
                tracked,
                shutdown,
                &mut writer,
                false,
            )
            .await?
        }
    };
    writer.flush().await?;
    if writer.count() == 0 {
        return Err(Stop::failed(ExtractError::NoText.to_string()));
    }
    writer.progress(pages, Some(pages), true).await?;
    let done = ParseDone {
        attempt: record.attempt,
        pages,
    };
    app.memory
        .attachment_parsed(record.id, &done)
        .await
        .map_err(Stop::memory)?;
    Ok(pages)
}

/// The blob as a local file: the store's own when blobs are local, else a copy in `scratch`.
async fn fetch(app: &App, sha256: &str, scratch: &Path) -> Result<PathBuf, Stop> {
    let sha = Sha256Hex::parse(sha256).map_err(|e| Stop::failed(e.to_string()))?;
    if let Some(path) = app.blobs.path(&sha)
        && tokio::fs::try_exists(&path).await.unwrap_or(false)
    {
        return Ok(path);
    }
    let copy = scratch.join("blob");
    match app.blobs.get_to_file(&sha, &copy).await {
        Ok(_) => Ok(copy),
        Err(BlobError::NotFound(_)) => Err(Stop::failed(
            "the file's content is missing from the blob store; send it again",
        )),
        Err(e) => Err(Stop::Transient(e.to_string())),
    }
}

enum Read {
    Progress(Progress),
    Section(daarion_formats::Section),
}

/// Aborts the extraction when the handler stops early (shutdown, memory gone): its tools are
/// killed with it.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Extracts a document in a task of its own (a panic there fails this attachment, never the
/// service), storing sections as they come and reporting progress; the pages read (0 for "no
/// text found" when `text_optional`).
#[allow(clippy::too_many_arguments)]
async fn document(
    path: &Path,
    format: Format,
    limits: &Limits,
    tracked: &Tracked,
    shutdown: &CancellationToken,
    writer: &mut Writer,
    text_optional: bool,
) -> Result<u32, Stop> {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let task = {
        let (path, limits) = (path.to_owned(), limits.clone());
        let sections = tx.clone();
        AbortOnDrop(tokio::spawn(async move {
            daarion_formats::extract(
                &path,
                format,
                &limits,
                move |p| {
                    let _ = tx.send(Read::Progress(p));
                },
                move |s| {
                    let _ = sections.send(Read::Section(s));
                },
            )
            .await
        }))
    };
    let mut sheets = Vec::new();
    let mut last = Progress {
        done: 0,
        total: None,
    };
    let mut tick = tokio::time::interval(crate::write::BATCH_AGE);
    loop {
        tokio::select! {
            biased;
            () = shutdown.cancelled() => {
                // What is stored stays; whoever reads it next skips over it by ordinal.
                return Err(Stop::Transient("the parser is stopping; the rest is read after it restarts".into()));
            }
            read = rx.recv() => match read {
                Some(Read::Section(s)) => {
                    writer.push(Section {
                        locator: locator(s.locator, &mut sheets),
                        headings: s.headings,
                        text: s.text,
                        ocr: s.ocr,
                    }).await?;
                }
                Some(Read::Progress(p)) => {
                    last = p;
                    tracked.progress(p.done, p.total);
                    writer.progress(p.done, p.total, false).await?;
                }
                None => break,
            },
            _ = tick.tick() => writer.flush_if_due().await?,
        }
    }
    let mut task = task;
    let summary = match (&mut task.0).await {
        Ok(Ok(summary)) => summary,
        Ok(Err(ExtractError::NoText)) if text_optional => return Ok(0),
        Ok(Err(e)) => return Err(Stop::extract(e)),
        Err(e) if e.is_panic() => {
            tracing::error!(error = %e, "extraction panicked");
            return Err(Stop::failed(format!(
                "the parser crashed reading this {format} file"
            )));
        }
        Err(e) => return Err(Stop::Transient(e.to_string())),
    };
    for warning in &summary.warnings {
        tracing::info!(%warning, "extraction");
    }
    Ok(if summary.pages > 0 {
        summary.pages
    } else {
        last.total.unwrap_or(last.done).max(1)
    })
}

/// The limits for one attachment: the configured ones, its own OCR languages if it asks.
pub fn limits(config: &daarion_config::ParserConfig, options: &ParseOptions) -> Limits {
    let languages = if options.ocr_languages.is_empty() {
        config.ocr_languages.split('+').map(str::to_owned).collect()
    } else {
        options.ocr_languages.clone()
    };
    Limits {
        max_pages: config.max_pages,
        tool_timeout: std::time::Duration::from_secs(config.tool_timeout_secs),
        tool_memory_bytes: config.tool_memory_mb << 20,
        ocr_languages: languages,
        force_ocr: options.force_ocr,
        ..Limits::default()
    }
}
