//! Long polling, for bots whose `telegram.<bot>.mode` is `polling`: boxes without a public HTTPS
//! address ask Telegram for updates instead of being called. Each update is queued exactly as a
//! webhook call would queue it ([`crate::webhook::enqueue`]) before the offset moves past it, so
//! a crash re-fetches rather than loses it (and the seen-marks drop the repeat).

use std::collections::HashMap;
use std::time::Duration;

use daarion_settings::{TelegramBot, TelegramMode};
use serde_json::{Value, json};
use teloxide_core::requests::{Request, Requester};
use tokio_util::sync::CancellationToken;

use crate::App;

/// Runs until `shutdown`: finds the polling bots every `app.poll_discovery` and keeps one poller
/// per bot (restarted when its settings change).
pub async fn run(app: App, shutdown: CancellationToken) {
    let mut running: HashMap<String, (i64, CancellationToken, tokio::task::JoinHandle<()>)> =
        HashMap::new();
    loop {
        match app.control.configs::<TelegramBot>().await {
            Ok(bots) => {
                let wanted: HashMap<String, i64> = bots
                    .into_iter()
                    .filter(|(_, bot)| bot.value.mode == TelegramMode::Polling)
                    .map(|(name, bot)| (name, bot.version))
                    .collect();
                running.retain(|bot, (version, stop, _)| {
                    let keep = wanted.get(bot) == Some(version);
                    if !keep {
                        tracing::info!(%bot, "stopping long polling");
                        stop.cancel();
                    }
                    keep
                });
                for (bot, version) in wanted {
                    if running.contains_key(&bot) {
                        continue;
                    }
                    tracing::info!(%bot, "starting long polling");
                    let stop = shutdown.child_token();
                    let task = tokio::spawn(poll_bot(app.clone(), bot.clone(), stop.clone()));
                    running.insert(bot, (version, stop, task));
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot list the bots to poll"),
        }
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = tokio::time::sleep(app.poll_discovery) => {}
        }
    }
    for (_, (_, stop, task)) in running {
        stop.cancel();
        let _ = task.await;
    }
}

async fn poll_bot(app: App, name: String, stop: CancellationToken) {
    let bot = match app.bots.get(&app.control, &name).await {
        Ok(b) => b,
        Err(e) => {
            tracing::error!(bot = %name, error = %e, "cannot poll");
            return;
        }
    };
    // Telegram refuses getUpdates while a webhook is set.
    if let Err(e) = bot.api.delete_webhook().send().await {
        tracing::warn!(bot = %name, error = %e, "cannot remove the webhook before polling");
    }
    let timeout = app.poll_timeout.as_secs();
    // The bot's own Bot API client, so polling reaches Telegram exactly as sending does (through
    // the same proxy settings); the calls on the box use `daarion_client::http_client`, which
    // ignores proxies. The long poll outlasts that client's own timeout, so each call sets its own.
    let http = bot.api.client().clone();
    let url = format!(
        "{}/bot{}/getUpdates",
        bot.settings.api_url.trim_end_matches('/'),
        bot.api.token()
    );
    let mut offset: i64 = 0;
    let mut failures: u32 = 0;
    loop {
        let request = http
            .post(&url)
            .timeout(app.poll_timeout + Duration::from_secs(15))
            .json(&json!({"offset": offset, "timeout": timeout}))
            .send();
        let answer = tokio::select! {
            () = stop.cancelled() => return,
            answer = request => answer,
        };
        // The URL holds the bot token: never let it into a log line.
        let batch = match answer {
            Ok(r) => {
                let status = r.status();
                match r.json::<Value>().await {
                    Ok(body) if body["ok"] == true => {
                        Ok(body["result"].as_array().cloned().unwrap_or_default())
                    }
                    Ok(body) => Err(format!(
                        "HTTP {status}: {}",
                        body["description"].as_str().unwrap_or("?")
                    )),
                    Err(e) => Err(e.without_url().to_string()),
                }
            }
            Err(e) => Err(e.without_url().to_string()),
        };
        let updates = match batch {
            Ok(updates) => {
                failures = 0;
                updates
            }
            Err(e) => {
                failures += 1;
                let wait = Duration::from_millis(500 * 2u64.pow(failures.min(6)));
                tracing::warn!(bot = %name, error = %e, retry_in_ms = wait.as_millis() as u64, "getUpdates failed");
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(wait) => continue,
                }
            }
        };
        for update in updates {
            let Some(id) = update["update_id"].as_i64() else {
                continue;
            };
            match crate::webhook::enqueue(&app, &bot.name, id, update).await {
                Ok(_) => offset = offset.max(id + 1),
                Err(e) => {
                    // Not acknowledged to Telegram: it comes again with the next poll.
                    tracing::warn!(bot = %name, error = %e, "cannot queue an update; polling it again");
                    tokio::select! {
                        () = stop.cancelled() => return,
                        () = tokio::time::sleep(Duration::from_secs(1)) => {}
                    }
                    break;
                }
            }
        }
    }
}
