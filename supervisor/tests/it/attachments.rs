//! Files through the installed shape of the appliance: ingest and the parser as units of the
//! supervisor, the parser killed with SIGKILL in the middle of a long document.

use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::appliance::Appliance;

/// Read by OCR (`force_ocr`), about half a second a page: long enough to be killed midway.
const PAGES: usize = 16;

fn page(k: usize) -> String {
    format!("Page {k} of the annual report: the warehouse in district {k} was audited")
}

async fn attachment(app: &Appliance, id: &str) -> Value {
    app.get(&format!("/api/ingest/v1/attachments/{id}"))
        .await
        .json()
        .await
        .unwrap()
}

async fn until(
    app: &Appliance,
    id: &str,
    within: Duration,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let started = Instant::now();
    loop {
        let a = attachment(app, id).await;
        if done(&a) {
            return a;
        }
        assert!(
            started.elapsed() < within,
            "attachment never got there: {a}\nlog:\n{}",
            app.log()
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_parser_killed_mid_document_finishes_it_after_its_restart_nothing_lost_or_doubled() {
    let mut app = Appliance::new().await;
    app.with_ingest();
    // A message whose handler died is redelivered after ack_wait: short here.
    app.set("DAARION__BUS__ACK_WAIT_SECS", "4");
    app.start();
    app.wait_all_ready(Duration::from_secs(120)).await;

    let user = app
        .root(
            Method::POST,
            "/api/memory/v1/identities/resolve",
            json!({"channel": "telegram", "external_id": "kill-9", "display_name": "Kill Nine"}),
        )
        .await["user_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let texts: Vec<String> = (1..=PAGES).map(page).collect();
    let pdf =
        daarion_formats::testing::text_pdf(&texts.iter().map(String::as_str).collect::<Vec<_>>());
    let uploaded: Value = reqwest::Client::new()
        .post(format!(
            "{}/api/ingest/v1/attachments?user_id={user}",
            app.admin
        ))
        .bearer_auth(app.token())
        .header("x-daarion-file-name", "annual-report.pdf")
        .body(pdf)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = uploaded["id"].as_str().expect("an attachment").to_owned();
    // Its text layer is read in a blink; read again, page by page through OCR.
    app.root(
        Method::POST,
        &format!("/api/ingest/v1/attachments/{id}/retry"),
        json!({"options": {"force_ocr": true}}),
    )
    .await;

    until(&app, &id, Duration::from_secs(60), |a| {
        a["attempt"] == 2
            && a["state"] == "parsing"
            && a["progress"]["done"].as_u64().is_some_and(|d| d >= 3)
    })
    .await;
    let parser = app.unit("parser").await;
    let old = parser["pid"].as_i64().unwrap() as i32;
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(old), Signal::SIGKILL).unwrap();
    let killed_at = attachment(&app, &id).await;
    assert_ne!(
        killed_at["state"], "parsed",
        "killed before the end: {killed_at}"
    );
    app.wait_unit("parser", Duration::from_secs(60), |u| {
        u["state"] == "ready" && u["pid"].as_i64().is_some_and(|p| p as i32 != old)
    })
    .await;

    let read = until(&app, &id, Duration::from_secs(180), |a| {
        a["attempt"] == 2 && (a["state"] == "parsed" || a["state"] == "failed")
    })
    .await;
    assert_eq!(
        (&read["state"], &read["attempt"], &read["pages"]),
        (&json!("parsed"), &json!(2), &json!(PAGES)),
        "{read}"
    );
    let document = app
        .root(
            Method::GET,
            &format!(
                "/api/memory/v1/documents/{}",
                read["document_id"].as_str().unwrap()
            ),
            Value::Null,
        )
        .await;
    let chunks = document["chunks"].as_array().unwrap();
    assert_eq!(chunks.len(), PAGES, "one chunk per page, none twice");
    let mut pages: Vec<u64> = chunks
        .iter()
        .map(|c| c["locator"]["page"].as_u64().expect("a page locator"))
        .collect();
    pages.sort_unstable();
    pages.dedup();
    assert_eq!(pages.len(), PAGES, "every page once");
    for c in chunks {
        // OCR's reading of the page's line (a word may come out differently).
        assert!(
            c["content"].as_str().unwrap().contains("annual report"),
            "{c}"
        );
    }
    app.cleanup().await;
}
