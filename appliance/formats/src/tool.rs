//! External tools, run contained: each is an async subprocess with a wall-time limit, an
//! address-space and CPU limit (`prlimit`, util-linux; the workspace forbids the unsafe code a
//! `pre_exec` setrlimit would need), no network where `unshare --net` is allowed, stdout capped
//! and stderr kept short for the reason. A tool that crashes or is killed fails the file.

use std::ffi::{OsStr, OsString};
use std::process::Stdio;
use std::sync::OnceLock;

use tokio::io::AsyncReadExt;
use tokio::process::Command;

use crate::{ExtractError, Limits};

/// What a finished tool left: its stdout (capped) and whether it hit the cap.
#[derive(Debug)]
pub(crate) struct Output {
    pub stdout: Vec<u8>,
}

/// Most stdout any tool may hand back: a page of text is kilobytes; 64 MiB is far past that.
const STDOUT_CAP: usize = 64 << 20;
/// Stderr kept for a failure reason: the last line or two is what says why.
const STDERR_CAP: usize = 16 << 10;

/// The Debian package that ships each tool, for the "not installed" reason.
pub(crate) fn package_of(tool: &str) -> &'static str {
    match tool {
        "pdfinfo" | "pdftotext" | "pdftoppm" => "poppler-utils",
        "tesseract" => "tesseract-ocr",
        "ffmpeg" | "ffprobe" => "ffmpeg",
        "prlimit" | "unshare" => "util-linux",
        _ => "unknown",
    }
}

/// Whether `unshare --net` works here (root, or user namespaces allowed); probed once.
fn can_unshare() -> bool {
    static CAN: OnceLock<bool> = OnceLock::new();
    *CAN.get_or_init(|| {
        std::process::Command::new("unshare")
            .args(["--net", "--", "true"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
}

fn has_prlimit() -> bool {
    static HAS: OnceLock<bool> = OnceLock::new();
    *HAS.get_or_init(|| {
        std::process::Command::new("prlimit")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
}

/// Warnings about containment that could not be applied; said once per extraction.
pub(crate) fn containment_warnings() -> Vec<String> {
    let mut w = Vec::new();
    if !can_unshare() {
        w.push("tools run with network access: `unshare --net` is not permitted here".to_owned());
    }
    if !has_prlimit() {
        w.push("tools run without memory limits: `prlimit` (util-linux) is missing".to_owned());
    }
    w
}

/// Runs `tool args…` contained by `limits`. A non-zero exit is an error carrying stderr's tail.
pub(crate) async fn run<I, S>(
    tool: &'static str,
    args: I,
    limits: &Limits,
) -> Result<Output, ExtractError>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    // The wrappers chain: unshare --net -- prlimit --as=… --cpu=… -- tool args…
    let mut argv: Vec<OsString> = Vec::new();
    if can_unshare() {
        argv.extend(["unshare", "--net", "--"].map(OsString::from));
    }
    if has_prlimit() {
        let cpu = limits.tool_timeout.as_secs().max(1) + 1;
        argv.push("prlimit".into());
        argv.push(format!("--as={}", limits.tool_memory_bytes).into());
        argv.push(format!("--cpu={cpu}").into());
        argv.push("--".into());
    }
    argv.push(tool.into());
    argv.extend(args.into_iter().map(|a| a.as_ref().to_owned()));
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        // Tesseract would otherwise start a thread per core for every page of every file.
        .env("OMP_THREAD_LIMIT", "1");
    require(tool)?;
    let mut child = cmd.spawn().map_err(|e| spawn_error(tool, e))?;
    let mut stdout = child.stdout.take().expect("piped");
    let mut stderr = child.stderr.take().expect("piped");
    let work = async {
        let mut out = Vec::new();
        let mut err = Vec::new();
        let read_out = async {
            (&mut stdout)
                .take(STDOUT_CAP as u64 + 1)
                .read_to_end(&mut out)
                .await
        };
        let read_err = async {
            let r = (&mut stderr)
                .take(STDERR_CAP as u64)
                .read_to_end(&mut err)
                .await;
            // Drain the rest so a chatty tool never blocks on a full pipe.
            let _ = tokio::io::copy(&mut stderr, &mut tokio::io::sink()).await;
            r
        };
        let (a, b) = tokio::join!(read_out, read_err);
        a?;
        b?;
        let status = child.wait().await?;
        Ok::<_, std::io::Error>((status, out, err))
    };
    let (status, stdout, stderr) = match tokio::time::timeout(limits.tool_timeout, work).await {
        Ok(r) => r?,
        // Dropping `work` drops the child, and kill_on_drop kills it.
        Err(_) => {
            return Err(ExtractError::Timeout {
                tool,
                limit: limits.tool_timeout,
            });
        }
    };
    if stdout.len() > STDOUT_CAP {
        return Err(ExtractError::ToolFailed {
            tool,
            reason: format!("printed more than {} MiB", STDOUT_CAP >> 20),
        });
    }
    if !status.success() {
        let text = String::from_utf8_lossy(&stderr);
        let tail: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        let tail = tail[tail.len().saturating_sub(2)..].join("; ");
        let how = match status.code() {
            Some(c) => format!("exit {c}"),
            None => "killed (out of memory or CPU time?)".to_owned(),
        };
        return Err(ExtractError::ToolFailed {
            tool,
            reason: if tail.is_empty() {
                how
            } else {
                format!("{how}: {tail}")
            },
        });
    }
    Ok(Output { stdout })
}

fn spawn_error(tool: &'static str, e: std::io::Error) -> ExtractError {
    if e.kind() == std::io::ErrorKind::NotFound {
        ExtractError::MissingTool {
            tool,
            package: package_of(tool),
        }
    } else {
        ExtractError::Io(e)
    }
}

/// Whether `tool` is on PATH, checked before a run so "not installed" names the tool and not
/// the wrapper that would otherwise fail to exec it.
pub(crate) fn require(tool: &'static str) -> Result<(), ExtractError> {
    let found = std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()));
    if found {
        Ok(())
    } else {
        Err(ExtractError::MissingTool {
            tool,
            package: package_of(tool),
        })
    }
}
