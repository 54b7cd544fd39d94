//! `daarion status | logs | start | stop | restart`: the admin API from the command line; and
//! `daarion telegram approve`, the gateway's pairing API with the same token.

use std::process::ExitCode;

use anyhow::{Context, bail};
use daarion_config::Config;
use serde_json::Value;

struct Admin {
    base: String,
    token: String,
    http: reqwest::Client,
}

impl Admin {
    /// The gateway's API with the admin token.
    fn gateway(config: &Config) -> anyhow::Result<Admin> {
        let mut admin = Admin::new(config)?;
        admin.base = format!("http://{}", config.gateway.dial());
        Ok(admin)
    }

    fn new(config: &Config) -> anyhow::Result<Admin> {
        let path = &config.supervisor.admin_token_file;
        let token = std::fs::read_to_string(path)
            .with_context(|| {
                format!(
                    "reading the admin token from {} (run as root or the daarion user)",
                    path.display()
                )
            })?
            .trim()
            .to_owned();
        let addr = config.supervisor.admin_listen;
        Ok(Admin {
            base: format!("http://{addr}"),
            token,
            // Only connecting is bounded: a restart or a log follow takes as long as it takes.
            http: daarion_client::http_client(daarion_client::Timeouts::streaming()),
        })
    }

    async fn call(&self, method: reqwest::Method, path: &str) -> anyhow::Result<Value> {
        let response = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .with_context(|| format!("is the supervisor running? cannot reach {}", self.base))?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            let message = body["error"]["message"]
                .as_str()
                .unwrap_or("request failed");
            bail!("{message} (HTTP {status})");
        }
        Ok(body)
    }
}

pub async fn status(config: &Config) -> anyhow::Result<ExitCode> {
    let admin = Admin::new(config)?;
    let units = admin.call(reqwest::Method::GET, "/api/services").await?;
    println!(
        "{:<14} {:<9} {:>8} {:>9} {:>8}  LAST EXIT / DETAIL",
        "UNIT", "STATE", "PID", "UPTIME", "RESTARTS"
    );
    let mut all_ready = true;
    for unit in units.as_array().into_iter().flatten() {
        let state = unit["state"].as_str().unwrap_or("?");
        // A unit that is off on this box (monitoring without its binaries) says why in DETAIL.
        all_ready &= state == "ready" || state == "off";
        let uptime = unit["started_at"]
            .as_str()
            .and_then(|t| {
                time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok()
            })
            .filter(|_| unit["pid"].is_number())
            .map(|t| format_duration((time::OffsetDateTime::now_utc() - t).whole_seconds()))
            .unwrap_or_else(|| "-".into());
        println!(
            "{:<14} {:<9} {:>8} {:>9} {:>8}  {}",
            unit["name"].as_str().unwrap_or("?"),
            state,
            unit["pid"]
                .as_u64()
                .map(|p| p.to_string())
                .unwrap_or_else(|| "-".into()),
            uptime,
            unit["restarts"].as_u64().unwrap_or(0),
            unit["detail"]
                .as_str()
                .or(unit["last_exit"].as_str())
                .unwrap_or(""),
        );
    }
    Ok(if all_ready {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(3)
    })
}

pub async fn logs(
    config: &Config,
    unit: &str,
    lines: usize,
    filter: &str,
) -> anyhow::Result<ExitCode> {
    let admin = Admin::new(config)?;
    let path = format!(
        "/api/services/{unit}/logs?lines={lines}&filter={}",
        encode(filter)
    );
    let body = admin.call(reqwest::Method::GET, &path).await?;
    for line in body["lines"].as_array().into_iter().flatten() {
        println!("{}", line["line"].as_str().unwrap_or(""));
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn act(config: &Config, unit: &str, action: &str) -> anyhow::Result<ExitCode> {
    let admin = Admin::new(config)?;
    admin
        .call(
            reqwest::Method::POST,
            &format!("/api/services/{unit}/{action}"),
        )
        .await?;
    println!("{action} requested for {unit}");
    Ok(ExitCode::SUCCESS)
}

pub async fn approve_pairing(config: &Config, code: &str) -> anyhow::Result<ExitCode> {
    let gateway = Admin::gateway(config)?;
    let approved = gateway
        .call(
            reqwest::Method::POST,
            &format!("/v1/pairings/{}/approve", encode(code)),
        )
        .await?;
    println!(
        "approved: user {} now has roles {}",
        approved["user_id"].as_str().unwrap_or("?"),
        approved["roles"]
    );
    Ok(ExitCode::SUCCESS)
}

fn format_duration(secs: i64) -> String {
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m{}s", s / 60, s % 60),
        s if s < 86400 => format!("{}h{}m", s / 3600, (s % 3600) / 60),
        s => format!("{}d{}h", s / 86400, (s % 86400) / 3600),
    }
}

/// Percent-encodes a query value (RFC 3986 unreserved characters pass through).
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(format_duration(5), "5s");
        assert_eq!(format_duration(125), "2m5s");
        assert_eq!(format_duration(7260), "2h1m");
        assert_eq!(format_duration(90000), "1d1h");
    }

    #[test]
    fn query_values_are_encoded() {
        assert_eq!(encode("a b&c"), "a%20b%26c");
        assert_eq!(encode("ready"), "ready");
    }
}
