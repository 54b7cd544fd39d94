//! The attachment pipeline end to end on the real stack (control plane, PostgreSQL, NATS, the
//! memory service, the blob store, the parser, poppler; MiniLM through the swapper when the test
//! models and the built llama.cpp worker are there), for 100 mixed files (PDF, DOCX, XLSX,
//! HTML, Markdown, CSV, text):
//!
//! - latency, one file at a time: from the upload (blob put + `create_attachment`, as ingest
//!   does) to `parsed` and to `indexed`, p50/p99, next to `extract` alone on the same file;
//!   their difference is what the pipeline itself adds (bus, memory API, chunking, storing),
//!   the goal being ≤ 100 ms per document beyond extraction and embedding;
//! - throughput: another 100 files uploaded at once, files/s until every one is done;
//! - the peak RSS of this process (parser, memory and swapper run in it; tools and the
//!   llama.cpp worker are processes of their own).
//!
//! `cargo build -p daarion-llama-worker && cargo bench -p daarion-parser --bench pipeline`
//! (`--profile dev` measures the debug build the tests use).

#[path = "../tests/helpers/pdf.rs"]
mod pdf;

use std::io::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use daarion_blobs::BlobStore;
use daarion_control_plane::testing::Plane;
use daarion_formats::{Format, Limits, detect_file, extract};
use daarion_memory_client::{Attachment, AttachmentState, MemoryClient, NewAttachment};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

const FILES: usize = 100;
const KINDS: [&str; 7] = ["pdf", "docx", "xlsx", "html", "md", "csv", "txt"];
const EMBEDDER: &str = "all-minilm-l6-v2-f16.gguf";
const WORDS: &[&str] = &[
    "invoice",
    "garden",
    "river",
    "budget",
    "квартира",
    "договір",
    "оплата",
    "счёт",
    "отчёт",
    "meeting",
    "doctor",
    "school",
    "ремонт",
    "поставка",
    "region",
    "revenue",
    "contract",
    "ціна",
];

/// Sentence `n` of a document: made-up words, different for every `seed`.
fn sentence(seed: usize, n: usize) -> String {
    let words: Vec<&str> = (0..12)
        .map(|w| WORDS[(seed * 31 + n * 7 + w * 13) % WORDS.len()])
        .collect();
    format!("{seed}-{n}: {}.", words.join(" "))
}

fn zip(entries: &[(&str, String)]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, data) in entries {
        w.start_file(*name, opts).unwrap();
        w.write_all(data.as_bytes()).unwrap();
    }
    w.finish().unwrap().into_inner()
}

/// File `seed` of the mix: its name and bytes (unique, so each is a new attachment).
fn file(seed: usize) -> (String, Vec<u8>) {
    let kind = KINDS[seed % KINDS.len()];
    let lines: Vec<String> = (0..30).map(|n| sentence(seed, n)).collect();
    let bytes = match kind {
        "pdf" => {
            // pdf.rs's pages, with this file's number in a comment after %%EOF.
            let mut b = pdf::text_pdf(1 + seed % 5);
            b.extend_from_slice(format!("% bench file {seed}\n").as_bytes());
            b
        }
        "docx" => {
            let body: String = lines
                .iter()
                .map(|l| format!("<w:p><w:r><w:t>{l}</w:t></w:r></w:p>"))
                .collect();
            zip(&[
                ("[Content_Types].xml", "<Types/>".into()),
                (
                    "word/document.xml",
                    format!(
                        r#"<?xml version="1.0"?><w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>{body}</w:body></w:document>"#
                    ),
                ),
            ])
        }
        "xlsx" => {
            let rows: String = lines
                .iter()
                .enumerate()
                .map(|(r, l)| {
                    format!(
                        r#"<row r="{n}"><c r="A{n}" t="inlineStr"><is><t>{l}</t></is></c><c r="B{n}"><v>{r}.5</v></c></row>"#,
                        n = r + 1
                    )
                })
                .collect();
            zip(&[
                (
                    "[Content_Types].xml",
                    r#"<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/></Types>"#.into(),
                ),
                (
                    "xl/workbook.xml",
                    r#"<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>"#.into(),
                ),
                (
                    "xl/_rels/workbook.xml.rels",
                    r#"<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>"#.into(),
                ),
                (
                    "xl/worksheets/sheet1.xml",
                    format!(
                        r#"<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>{rows}</sheetData></worksheet>"#
                    ),
                ),
            ])
        }
        "html" => format!(
            "<!DOCTYPE html><html><head><title>File {seed}</title><script>var x = 1;</script></head>\
             <body><nav><a href=\"/\">Home</a></nav><main><h1>File {seed}</h1>{}</main>\
             <footer>© 2026</footer></body></html>",
            lines.iter().map(|l| format!("<p>{l}</p>")).collect::<String>()
        )
        .into_bytes(),
        "md" => lines
            .chunks(10)
            .enumerate()
            .map(|(s, part)| format!("## Section {s}\n\n{}\n\n", part.join("\n\n")))
            .collect::<String>()
            .into_bytes(),
        "csv" => std::iter::once("id,text".to_owned())
            .chain(lines.iter().enumerate().map(|(r, l)| format!("{r},\"{l}\"")))
            .collect::<Vec<_>>()
            .join("\n")
            .into_bytes(),
        _ => lines.join("\n\n").into_bytes(),
    };
    (format!("file-{seed:03}.{kind}"), bytes)
}

/// This process's peak resident set (VmHWM), in MiB.
fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kib| kib / 1024.0)
}

/// The `p` quantile (0 to 1) of `values` (sorted here), in milliseconds.
fn ms(values: &[Duration], p: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort();
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize].as_secs_f64() * 1000.0
}

struct Stack {
    plane: Plane,
    memory: MemoryClient,
    blobs: BlobStore,
    user: Uuid,
    embeds: bool,
    stop: CancellationToken,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

fn spawn<E: std::fmt::Debug + Send + 'static>(
    task: impl std::future::Future<Output = Result<(), E>> + Send + 'static,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move { task.await.unwrap() })
}

impl Stack {
    /// The stack the parser tests run on, plus a swapper with MiniLM where it can run.
    async fn start() -> Stack {
        let plane = Plane::start().await;
        let mut config = plane.config.clone();
        let stop = CancellationToken::new();
        let mut tasks = Vec::new();
        let models = std::env::var("DAARION_TEST_MODELS")
            .unwrap_or_else(|_| "/var/cache/daarion/test-models".into());
        let worker = std::env::current_exe()
            .unwrap()
            .parent()
            .and_then(Path::parent)
            .map(|d| d.join("daarion-llama-worker"));
        let embeds = Path::new(&models).join(EMBEDDER).is_file()
            && worker.as_deref().is_some_and(Path::is_file);
        if embeds {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            config.swapper.listen = listener.local_addr().unwrap();
            config.models.embedding_model = "minilm".into();
            let swapper = daarion_swapper::testing::config(
                &plane.config,
                &plane.config.general.data_dir.join("swapper"),
                &[("minilm", "embedding", EMBEDDER, 512)],
            );
            tasks.push(spawn(daarion_swapper::run(swapper, listener, stop.clone())));
        } else {
            eprintln!(
                "no {EMBEDDER} in {models} or no built daarion-llama-worker: measuring to `parsed` only"
            );
            // Nothing listens here: chunks stay unembedded.
            config.swapper.listen = "127.0.0.1:9".parse().unwrap();
        }
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        config.memory.listen = listener.local_addr().unwrap();
        tasks.push(spawn(daarion_memory::run(
            config.clone(),
            listener,
            stop.clone(),
        )));
        let memory = MemoryClient::new(format!("http://{}", config.memory.listen), &plane.root);
        while memory.ping().await.is_err() {
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        let blobs = BlobStore::from_config(&config.ingest.blobs, &config.general.data_dir).unwrap();
        let user = memory.resolve("bench", "pipeline", "Bench").await.unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        tasks.push(spawn(daarion_parser::run(
            config.clone(),
            listener,
            stop.clone(),
        )));
        println!(
            "Parser: {} worker(s), {} CPU(s), embedding: {}",
            config.parser.workers,
            std::thread::available_parallelism().map_or(1, |n| n.get()),
            if embeds {
                "MiniLM through the swapper"
            } else {
                "none (to `parsed` only)"
            }
        );
        Stack {
            plane,
            memory,
            blobs,
            user,
            embeds,
            stop,
            tasks,
        }
    }

    /// What ingest does with an accepted file: the blob stored, the attachment recorded
    /// (memory announces it on the bus).
    async fn upload(&self, name: &str, format: Format, content: Vec<u8>) -> Attachment {
        let size = content.len() as u64;
        let body =
            futures::stream::once(
                async move { Ok::<_, std::io::Error>(bytes::Bytes::from(content)) },
            );
        let stored = self.blobs.put_stream(body, 1 << 30).await.unwrap();
        let created = self
            .memory
            .create_attachment(&NewAttachment {
                user_id: self.user,
                name: name.into(),
                format: format.as_str().into(),
                mime: "application/octet-stream".into(),
                bytes: size,
                sha256: stored.sha256.to_string(),
                origin: None,
                options: Default::default(),
            })
            .await
            .unwrap();
        assert!(created.created, "{name} was there already");
        created.attachment
    }

    /// Whether the attachment is where this bench waits for it: parsed (or further) for
    /// `parsed`, indexed for `indexed`; failed ends both.
    async fn reached(&self, id: Uuid, indexed: bool) -> Option<Attachment> {
        let a = self.memory.attachment(id).await.unwrap();
        let done = match a.state {
            AttachmentState::Failed | AttachmentState::Indexed => true,
            AttachmentState::Parsed => !indexed,
            _ => false,
        };
        done.then_some(a)
    }

    async fn wait(&self, id: Uuid, indexed: bool) -> Attachment {
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            if let Some(a) = self.reached(id, indexed).await {
                return a;
            }
            assert!(Instant::now() < deadline, "{id} never got there");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    async fn stop(self) {
        self.stop.cancel();
        for t in self.tasks {
            t.await.unwrap();
        }
        self.plane.stop().await;
    }
}

/// One file's figures, one at a time through the pipeline.
struct Timed {
    kind: &'static str,
    extract: Duration,
    /// Until memory has recorded it (blob stored, row and outbox written).
    uploaded: Duration,
    parsed: Duration,
    indexed: Option<Duration>,
}

#[tokio::main]
async fn main() {
    let scratch = std::env::temp_dir().join(format!("daarion-pipeline-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).unwrap();
    let stack = Stack::start().await;
    let limits = Limits::default();

    // Warm every path once (tools, the parser's consumer, the embedder's model load).
    let (name, bytes) = file(10_000);
    let warm = stack.upload(&name, Format::Pdf, bytes).await;
    stack.wait(warm.id, stack.embeds).await;

    let mut timed = Vec::new();
    let mut failed = 0;
    for seed in 0..FILES {
        let (name, bytes) = file(seed);
        let path = scratch.join(&name);
        std::fs::write(&path, &bytes).unwrap();
        let format = detect_file(&path, Some(&name)).unwrap();
        let started = Instant::now();
        extract(&path, format, &limits, |_| {}, |_| {})
            .await
            .unwrap();
        let extract_took = started.elapsed();

        let started = Instant::now();
        let a = stack.upload(&name, format, bytes).await;
        let uploaded = started.elapsed();
        let parsed = stack.wait(a.id, false).await;
        let parsed_took = started.elapsed();
        let indexed = if stack.embeds && parsed.state != AttachmentState::Failed {
            let a = stack.wait(a.id, true).await;
            (a.state == AttachmentState::Indexed).then(|| started.elapsed())
        } else {
            None
        };
        if parsed.state == AttachmentState::Failed || (stack.embeds && indexed.is_none()) {
            failed += 1;
            eprintln!("{name} failed: {:?}", parsed.error);
            continue;
        }
        timed.push(Timed {
            kind: KINDS[seed % KINDS.len()],
            extract: extract_took,
            uploaded,
            parsed: parsed_took,
            indexed,
        });
    }
    let rss_sequential = peak_rss_mib();
    eprintln!("one at a time: done; now {FILES} at once");

    // Throughput: another 100 at once, until every one is done.
    let started = Instant::now();
    let mut pending = Vec::new();
    for seed in FILES..2 * FILES {
        let (name, bytes) = file(seed);
        let format = detect_file_bytes(&scratch, &name, &bytes);
        pending.push(stack.upload(&name, format, bytes).await.id);
    }
    let uploaded = started.elapsed();
    let mut parsed_all = None;
    let mut left = pending.clone();
    while !left.is_empty() {
        let mut still = Vec::new();
        for id in left {
            if stack.reached(id, stack.embeds).await.is_none() {
                still.push(id);
            }
        }
        left = still;
        if parsed_all.is_none() {
            let mut all = true;
            for id in &pending {
                all &= stack.reached(*id, false).await.is_some();
            }
            if all {
                parsed_all = Some(started.elapsed());
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let all_done = started.elapsed();
    let parsed_all = parsed_all.unwrap_or(all_done);

    let column = |f: &dyn Fn(&Timed) -> Option<Duration>| -> Vec<Duration> {
        timed.iter().filter_map(f).collect()
    };
    let extract = column(&|t| Some(t.extract));
    let parsed = column(&|t| Some(t.parsed));
    let indexed = column(&|t| t.indexed);
    let upload = column(&|t| Some(t.uploaded));
    let beyond: Vec<Duration> = column(&|t| Some(t.parsed.saturating_sub(t.extract)));
    let parser_beyond: Vec<Duration> =
        column(&|t| Some(t.parsed.saturating_sub(t.uploaded + t.extract)));
    println!();
    println!(
        "{} mixed files ({}), one at a time; {failed} failed",
        timed.len(),
        KINDS.join(", ")
    );
    println!();
    println!("| one at a time | p50 ms | p99 ms |");
    println!("| --- | ---: | ---: |");
    println!(
        "| `extract` alone | {:.1} | {:.1} |",
        ms(&extract, 0.5),
        ms(&extract, 0.99)
    );
    println!(
        "| upload (blob put + recorded in memory) | {:.1} | {:.1} |",
        ms(&upload, 0.5),
        ms(&upload, 0.99)
    );
    println!(
        "| upload → `parsed` | {:.1} | {:.1} |",
        ms(&parsed, 0.5),
        ms(&parsed, 0.99)
    );
    if !indexed.is_empty() {
        println!(
            "| upload → `indexed` (MiniLM) | {:.1} | {:.1} |",
            ms(&indexed, 0.5),
            ms(&indexed, 0.99)
        );
    }
    println!(
        "| pipeline beyond extraction (→ `parsed` − `extract`) | {:.1} | {:.1} |",
        ms(&beyond, 0.5),
        ms(&beyond, 0.99)
    );
    println!(
        "| of it after the upload (recorded → event → parser → `parsed`, − `extract`) | {:.1} | {:.1} |",
        ms(&parser_beyond, 0.5),
        ms(&parser_beyond, 0.99)
    );
    println!();
    println!(
        "| format | files | `extract` p50 ms | → `parsed` p50 ms | beyond extraction p50 ms |"
    );
    println!("| --- | ---: | ---: | ---: | ---: |");
    for kind in KINDS {
        let of: Vec<&Timed> = timed.iter().filter(|t| t.kind == kind).collect();
        if of.is_empty() {
            continue;
        }
        let e: Vec<Duration> = of.iter().map(|t| t.extract).collect();
        let p: Vec<Duration> = of.iter().map(|t| t.parsed).collect();
        let b: Vec<Duration> = of
            .iter()
            .map(|t| t.parsed.saturating_sub(t.extract))
            .collect();
        println!(
            "| {kind} | {} | {:.1} | {:.1} | {:.1} |",
            of.len(),
            ms(&e, 0.5),
            ms(&p, 0.5),
            ms(&b, 0.5)
        );
    }
    println!();
    println!("| {FILES} files at once | seconds | files/s |");
    println!("| --- | ---: | ---: |");
    println!(
        "| uploaded (blob + record) | {:.2} | {:.1} |",
        uploaded.as_secs_f64(),
        FILES as f64 / uploaded.as_secs_f64()
    );
    println!(
        "| all `parsed` | {:.2} | {:.1} |",
        parsed_all.as_secs_f64(),
        FILES as f64 / parsed_all.as_secs_f64()
    );
    if stack.embeds {
        println!(
            "| all `indexed` | {:.2} | {:.1} |",
            all_done.as_secs_f64(),
            FILES as f64 / all_done.as_secs_f64()
        );
    }
    println!();
    println!(
        "Peak RSS of this process (parser + memory + swapper in-process): {rss_sequential:.0} MiB \
         after the one-at-a-time run, {:.0} MiB at the end",
        peak_rss_mib()
    );
    stack.stop().await;
    let _ = std::fs::remove_dir_all(&scratch);
}

/// The format of `bytes` as ingest decides it: from the bytes, written out to be read.
fn detect_file_bytes(dir: &Path, name: &str, bytes: &[u8]) -> Format {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    detect_file(&path, Some(name)).unwrap()
}
