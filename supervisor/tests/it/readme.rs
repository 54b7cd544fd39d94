//! The README's first steps, run as written against a whole appliance: the router example's
//! shell commands (between `<!-- readme-test:router -->` and `<!-- /readme-test -->`) with this
//! appliance's token and ports, and a cloud provider replaced by a scripted one; then the
//! default agent answering a web chat message out of the box.

use std::net::SocketAddr;
use std::time::Duration;

use axum::response::IntoResponse;

use crate::helpers::appliance::Appliance;

/// What the scripted cloud model says.
const CLOUD_ANSWER: &str = "Hello from the scripted cloud model";

/// The shell commands of the README's blocks called `name`, in order: the indented lines
/// between the markers.
fn readme_commands(readme: &str, name: &str) -> String {
    let open = format!("<!-- readme-test:{name} -->");
    let mut script = String::new();
    let mut rest = readme;
    while let Some(start) = rest.find(&open) {
        let after = &rest[start + open.len()..];
        let end = after
            .find("<!-- /readme-test -->")
            .expect("every readme-test block is closed");
        for line in after[..end].lines() {
            if let Some(command) = line.strip_prefix("    ") {
                script.push_str(command);
                script.push('\n');
            }
        }
        rest = &after[end..];
    }
    script
}

/// An OpenAI-compatible server that streams one answer to every chat completion.
async fn scripted_cloud() -> SocketAddr {
    async fn answer() -> axum::response::Response {
        let chunks = [
            serde_json::json!({"choices": [{"index": 0, "delta": {"role": "assistant", "content": CLOUD_ANSWER}, "finish_reason": null}]}),
            serde_json::json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}),
            serde_json::json!({"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 5}}),
        ];
        let mut body: String = chunks.iter().map(|c| format!("data: {c}\n\n")).collect();
        body.push_str("data: [DONE]\n\n");
        (
            [(axum::http::header::CONTENT_TYPE, "text/event-stream")],
            body,
        )
            .into_response()
    }
    let app = axum::Router::new().route("/v1/chat/completions", axum::routing::post(answer));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

fn listen(app: &Appliance, key: &str) -> String {
    app.env
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| panic!("{key} is set by the harness"))
}

/// The README's commands as this appliance runs them.
fn localised(script: &str, app: &Appliance, cloud: SocketAddr) -> String {
    let mut script = script
        .replace(
            "TOKEN=$(sudo cat /etc/daarion/admin.token)",
            &format!("TOKEN=$(cat {})", app.dir.join("admin.token").display()),
        )
        .replace("https://api.deepseek.com/v1", &format!("http://{cloud}/v1"));
    for (port, key) in [
        ("9200", "DAARION__CONTROL_PLANE__LISTEN"),
        ("9102", "DAARION__ROUTER__LISTEN"),
        ("9300", "DAARION__GATEWAY__LISTEN"),
    ] {
        script = script.replace(&format!("127.0.0.1:{port}"), &listen(app, key));
    }
    script
}

/// Runs `script` with bash; answers its output, failing on a non-zero exit.
fn bash(script: &str) -> String {
    let output = std::process::Command::new("bash")
        .args(["-euo", "pipefail", "-c", script])
        .env("NO_PROXY", "127.0.0.1")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{script}\n→ {text}");
    text
}

// Multi-threaded: the README's commands run as a blocking child process while the scripted cloud
// model, served on this runtime, must answer them.
#[tokio::test(flavor = "multi_thread")]
async fn the_readme_router_example_and_the_default_agent_answer() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    let script = readme_commands(&readme, "router");
    for step in [
        "/agents",
        "/prompts/helper",
        "config/agents.helper",
        "providers.deepseek",
        "/v1/chat/completions",
    ] {
        assert!(
            script.contains(step),
            "the README's example has {step}:\n{script}"
        );
    }

    let cloud = scripted_cloud().await;
    let mut app = Appliance::new().await;
    app.with_swapper();
    app.set("DEEPSEEK_API_KEY", "sk-scripted");
    app.start();
    app.wait_all_ready(Duration::from_secs(180)).await;

    // The README as written: create the agent, give it a prompt and a chain, talk to it.
    let output = bash(&localised(&script, &app, cloud));
    assert!(
        output.contains(CLOUD_ANSWER),
        "the example ends with the cloud model's answer:\n{output}\nlog:\n{}",
        app.log()
    );
    assert!(!output.contains("not allowed"), "{output}");

    // Out of the box: the default agent answers the web chat as the README shows it, on the
    // local chat model (no agent named: routing.main sends it to `assistant`).
    let web = format!(
        "curl -sS -N -H \"Authorization: Bearer $(cat {})\" -H 'content-type: application/json' \
         -d '{{\"text\": \"Hi!\"}}' {}/v1/chat",
        app.dir.join("admin.token").display(),
        listen(&app, "DAARION__GATEWAY__LISTEN"),
    );
    let answer = bash(&web);
    assert!(
        answer.contains("event: message"),
        "{answer}\nlog:\n{}",
        app.log()
    );
    for refusal in ["event: refused", "event: error", "no routing rule"] {
        assert!(!answer.contains(refusal), "{answer}");
    }
    app.cleanup().await;
}

#[test]
fn readme_blocks_are_read_in_order() {
    let readme = "x\n<!-- readme-test:a -->\n\n    one \\\n      two\n\n<!-- /readme-test -->\n    not me\n<!-- readme-test:b -->\n    other\n<!-- /readme-test -->\n<!-- readme-test:a -->\n    three\n<!-- /readme-test -->\n";
    assert_eq!(readme_commands(readme, "a"), "one \\\n  two\nthree\n");
    assert_eq!(readme_commands(readme, "b"), "other\n");
    assert_eq!(readme_commands(readme, "c"), "");
}
