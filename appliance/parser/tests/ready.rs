//! `/ready` names a tool missing from PATH with the Debian package to install (issue #18).
//! PATH is the process's own, so the test runs itself again as a child whose PATH holds every
//! tool but tesseract (the workspace forbids the unsafe `set_var` would need, and a changed
//! PATH would leak into other tests of the same process).

mod helpers;

use helpers::Stack;

const CHILD: &str = "DAARION_PARSER_READY_CHILD";
const TEST: &str = "ready_is_503_and_names_a_missing_tool_with_its_package";

/// A directory of links to each of the parser's tools found on `PATH`, tesseract left out.
fn path_without_tesseract(dir: &std::path::Path) -> Vec<&'static str> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut linked = Vec::new();
    for (tool, _) in daarion_parser::TOOLS {
        if tool == "tesseract" {
            continue;
        }
        if let Some(found) = std::env::split_paths(&path)
            .map(|d| d.join(tool))
            .find(|p| p.is_file())
        {
            std::os::unix::fs::symlink(found, dir.join(tool)).unwrap();
            linked.push(tool);
        }
    }
    linked
}

#[tokio::test]
async fn ready_is_503_and_names_a_missing_tool_with_its_package() {
    if std::env::var_os(CHILD).is_none() {
        let dir = std::env::temp_dir().join(format!(
            "daarion-parser-path-{}",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let linked = path_without_tesseract(&dir);
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([TEST, "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD, linked.join(","))
            .env("PATH", &dir)
            .output()
            .unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        let log = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "the child failed:\n{log}");
        assert!(log.contains("1 passed"), "the child ran no test:\n{log}");
        return;
    }

    // The child: the tools the parent linked are all there is.
    let linked: Vec<String> = std::env::var(CHILD)
        .unwrap()
        .split(',')
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect();
    let stack = Stack::start().await;
    let parser = stack.parser().await;
    let answer = reqwest::get(format!("{}/ready", parser.url)).await.unwrap();
    assert_eq!(answer.status(), 503);
    let ready: serde_json::Value = answer.json().await.unwrap();
    let checks = ready["checks"].as_array().unwrap();
    for check in checks {
        let ok = check["ok"].as_bool().unwrap();
        assert_eq!(ok, check["name"] != "tools", "only the tools fail: {ready}");
    }
    let tools = checks.iter().find(|c| c["name"] == "tools").unwrap();
    let detail = tools["detail"].as_str().unwrap();
    assert!(detail.starts_with("missing: "), "{detail}");
    assert!(detail.contains("tesseract (tesseract-ocr)"), "{detail}");
    for (tool, package) in daarion_parser::TOOLS {
        let named = detail.contains(&format!("{tool} ({package})"));
        assert_eq!(named, !linked.iter().any(|l| l == tool), "{tool}: {detail}");
    }
    parser.stop().await;
    stack.stop().await;
}
