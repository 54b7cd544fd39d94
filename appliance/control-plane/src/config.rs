//! `/config/{key}`: typed JSON values with a version history. The key's prefix says its type:
//! `flags.*` feature flags, `routing.*` routing rules, `providers.*` LLM provider settings
//! (secrets only by reference), `agents.<id>` how the router runs an agent, `telegram.<bot>` a
//! bot of the gateway; any other key holds free JSON.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use daarion_http::ErrorEnvelope;
use daarion_policy::{Flag, bucket, flag_enabled};
use daarion_settings::{AgentSettings, ProviderSettings, Routing, Setting, TelegramBot};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::app::App;
use crate::changes::Change;
use crate::error::ControlError;
use crate::principal::{Principal, Scope};

/// Values bigger than this are data, not configuration.
const MAX_VALUE_BYTES: usize = 64 * 1024;

#[derive(Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct ConfigVersion {
    pub key: String,
    pub version: i32,
    pub value: Value,
    pub comment: String,
    pub author: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

const COLUMNS: &str = "key, version, value, comment, author, created_at";

pub fn valid_key(key: &str) -> bool {
    let mut chars = key.chars();
    key.len() <= 128
        && chars
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars.all(|c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '.' || c == '-'
        })
}

/// A field named like a credential (`api_key`, `apikey`, `access_token`, `password`), judged by
/// whole words so `max_tokens` or `keyboard` are not mistaken for one.
fn looks_secret(field: &str) -> bool {
    let f = field.to_ascii_lowercase();
    !f.ends_with("_ref")
        && f.split(|c: char| !c.is_ascii_alphanumeric()).any(|word| {
            ["key", "passwd", "credential"].contains(&word)
                || ["token", "secret", "password", "apikey"]
                    .iter()
                    .any(|s| word.ends_with(s))
        })
}

fn find_secret(value: &Value, path: &str) -> Option<String> {
    match value {
        Value::Object(map) => map.iter().find_map(|(k, v)| {
            let here = format!("{path}.{k}");
            if looks_secret(k) && !v.is_null() {
                Some(here)
            } else {
                find_secret(v, &here)
            }
        }),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, v)| find_secret(v, &format!("{path}[{i}]"))),
        _ => None,
    }
}

/// `value` as the document type its key names; `what` says in the error what it is not.
fn parse<T: Setting>(value: &Value, what: &str) -> Result<T, ControlError> {
    serde_json::from_value(value.clone())
        .map_err(|e| ControlError::invalid("value", format!("not {what}: {e}")))
}

/// Checks a value against the type its key implies; `agents` are the known agent ids.
fn validate(key: &str, value: &Value, agents: &[String]) -> Result<(), ControlError> {
    let invalid = |m: String| ControlError::invalid("value", m);
    if let Some(field) = find_secret(value, "value") {
        return Err(ControlError::invalid(
            "value",
            format!(
                "{field} looks like a secret: reference it as `<name>_ref = \"env:NAME\"` or `\"file:/path\"`"
            ),
        ));
    }
    if Flag::name_in(key).is_some() {
        let flag: Flag = parse(value, "a flag")?;
        flag.validate().map_err(invalid)?;
    } else if Routing::name_in(key).is_some() {
        let routing: Routing = parse(value, "routing rules")?;
        if let Some(agent) = routing.agents().find(|a| !agents.contains(a)) {
            return Err(invalid(format!("routes to unknown agent `{agent}`")));
        }
        if let Some(i) = routing.catch_all() {
            return Err(invalid(format!(
                "rules[{i}] matches everything: use default_agent"
            )));
        }
    } else if ProviderSettings::name_in(key).is_some() {
        let provider: ProviderSettings = parse(value, "a provider")?;
        provider.validate().map_err(invalid)?;
    } else if let Some(agent) = AgentSettings::name_in(key) {
        if !agents.iter().any(|a| a == agent) {
            return Err(invalid(format!("settings for unknown agent `{agent}`")));
        }
        let settings: AgentSettings = parse(value, "agent settings")?;
        settings.validate().map_err(invalid)?;
    } else if TelegramBot::name_in(key).is_some() {
        let bot: TelegramBot = parse(value, "a Telegram bot")?;
        bot.validate().map_err(invalid)?;
        if let Some(agent) = bot.agent.as_ref().filter(|a| !agents.contains(a)) {
            return Err(invalid(format!("unknown agent `{agent}`")));
        }
    }
    Ok(())
}

/// Where a provider or a bot sends its secrets, and which secrets it sends: `None` for keys whose
/// values hold no secret reference. A value that does not parse (a document stored before its
/// type) counts as unknown, so any change to it is a change of route.
fn secret_route(key: &str, value: Option<&Value>) -> Option<Value> {
    let typed = |ok: Option<Value>| Some(ok.unwrap_or(Value::Null));
    if ProviderSettings::name_in(key).is_some() {
        let parsed = value.and_then(|v| serde_json::from_value::<ProviderSettings>(v.clone()).ok());
        typed(parsed.map(|p| json!([p.base_url, p.api_key_ref])))
    } else if TelegramBot::name_in(key).is_some() {
        let parsed = value.and_then(|v| serde_json::from_value::<TelegramBot>(v.clone()).ok());
        typed(parsed.map(|b| json!([b.api_url, b.public_url, b.token_ref, b.webhook_secret_ref])))
    } else {
        None
    }
}

/// Pointing a secret somewhere else (a provider's `base_url`, a bot's `api_url` or webhook
/// `public_url`), or pairing a destination with another secret reference, needs `admin`:
/// otherwise a `config:write` token could have the appliance send a secret to a server of its
/// choosing, and the root token with it before references were confined to the secrets
/// directory.
fn require_route_unchanged(
    principal: &Principal,
    key: &str,
    before: Option<&Value>,
    after: &Value,
) -> Result<(), ControlError> {
    let now = secret_route(key, Some(after));
    if now.is_some() && now != secret_route(key, before) {
        principal.require(Scope::Admin)?;
    }
    Ok(())
}

async fn current(
    executor: impl sqlx::PgExecutor<'_>,
    key: &str,
) -> Result<Option<ConfigVersion>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM config_versions WHERE key = $1 ORDER BY version DESC LIMIT 1"
    ))
    .bind(key)
    .fetch_optional(executor)
    .await
}

fn unknown_key(key: &str) -> ControlError {
    ControlError::UnknownConfig(key.to_owned())
}

#[utoipa::path(get, path = "/config", tag = "config", responses((status = 200, body = [ConfigVersion]), (status = 401, description = "no or wrong credential", body = ErrorEnvelope), (status = 403, description = "missing scope", body = ErrorEnvelope)))]
pub async fn list(
    State(app): State<App>,
    axum::Extension(principal): axum::Extension<Principal>,
) -> Result<Json<Vec<ConfigVersion>>, ControlError> {
    principal.require(Scope::Read)?;
    Ok(Json(
        sqlx::query_as(&format!(
            "SELECT DISTINCT ON (key) {COLUMNS} FROM config_versions ORDER BY key, version DESC"
        ))
        .fetch_all(&app.pool)
        .await?,
    ))
}

#[utoipa::path(get, path = "/config/{key}", tag = "config", params(("key" = String, Path)), responses((status = 200, body = ConfigVersion), (status = 404, body = ErrorEnvelope), (status = 401, description = "no or wrong credential", body = ErrorEnvelope), (status = 403, description = "missing scope", body = ErrorEnvelope)))]
pub async fn get(
    State(app): State<App>,
    axum::Extension(principal): axum::Extension<Principal>,
    Path(key): Path<String>,
) -> Result<Json<ConfigVersion>, ControlError> {
    principal.require(Scope::Read)?;
    current(&app.pool, &key)
        .await?
        .map(Json)
        .ok_or_else(|| unknown_key(&key))
}

#[utoipa::path(get, path = "/config/{key}/versions", tag = "config", params(("key" = String, Path)), responses((status = 200, body = [ConfigVersion]), (status = 404, body = ErrorEnvelope), (status = 401, description = "no or wrong credential", body = ErrorEnvelope), (status = 403, description = "missing scope", body = ErrorEnvelope)))]
pub async fn versions(
    State(app): State<App>,
    axum::Extension(principal): axum::Extension<Principal>,
    Path(key): Path<String>,
) -> Result<Json<Vec<ConfigVersion>>, ControlError> {
    principal.require(Scope::Read)?;
    let all: Vec<ConfigVersion> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM config_versions WHERE key = $1 ORDER BY version"
    ))
    .bind(&key)
    .fetch_all(&app.pool)
    .await?;
    if all.is_empty() {
        return Err(unknown_key(&key));
    }
    Ok(Json(all))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewValue {
    value: Value,
    #[serde(default)]
    comment: String,
}

#[utoipa::path(put, path = "/config/{key}", tag = "config", params(("key" = String, Path, description = "flags.*, routing.*, providers.* are typed")), request_body = NewValue, responses((status = 201, body = ConfigVersion), (status = 422, body = ErrorEnvelope), (status = 401, description = "no or wrong credential", body = ErrorEnvelope), (status = 403, description = "missing scope", body = ErrorEnvelope)))]
pub async fn put(
    State(app): State<App>,
    axum::Extension(principal): axum::Extension<Principal>,
    Path(key): Path<String>,
    Json(new): Json<NewValue>,
) -> Result<impl IntoResponse, ControlError> {
    principal.require(Scope::ConfigWrite)?;
    if !valid_key(&key) {
        return Err(ControlError::invalid(
            "key",
            "1 to 128 characters: lowercase letters, digits, '.', '_' and '-'",
        ));
    }
    if new.value.to_string().len() > MAX_VALUE_BYTES {
        return Err(ControlError::invalid("value", "larger than 64 KiB"));
    }
    let mut tx = app.pool.begin().await?;
    let agents: Vec<String> = sqlx::query_scalar("SELECT id FROM agents")
        .fetch_all(&mut *tx)
        .await?;
    validate(&key, &new.value, &agents)?;
    // Serialise writers of one key so versions stay gapless.
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('config:' || $1))")
        .bind(&key)
        .execute(&mut *tx)
        .await?;
    let before = current(&mut *tx, &key).await?;
    require_route_unchanged(
        &principal,
        &key,
        before.as_ref().map(|b| &b.value),
        &new.value,
    )?;
    let version = before.as_ref().map_or(0, |b| b.version) + 1;
    let created: ConfigVersion = sqlx::query_as(&format!(
        "INSERT INTO config_versions (key, version, value, comment, author) VALUES ($1, $2, $3, $4, $5) RETURNING {COLUMNS}"
    ))
    .bind(&key)
    .bind(version)
    .bind(&new.value)
    .bind(&new.comment)
    .bind(&principal.name)
    .fetch_one(&mut *tx)
    .await?;
    Change::new(&principal, "config.set", format!("config:{key}"))
        .before(json!({"version": before.as_ref().map(|b| b.version), "value": before.map(|b| b.value)}))
        .after(json!({"version": version, "value": new.value}))
        .announce("config", &key, i64::from(version))
        .record(&mut tx)
        .await?;
    tx.commit().await?;
    app.changes.wake();
    Ok((StatusCode::CREATED, Json(created)))
}

#[derive(Debug, Deserialize)]
pub struct FlagQuery {
    user_id: String,
}

/// `GET /flags/{name}?user_id=`: whether `flags.<name>` is on for this user, and why.
#[utoipa::path(get, path = "/flags/{name}", tag = "config", params(("name" = String, Path), ("user_id" = String, Query)), responses((status = 200, description = "enabled, bucket and version"), (status = 404, body = ErrorEnvelope), (status = 401, description = "no or wrong credential", body = ErrorEnvelope), (status = 403, description = "missing scope", body = ErrorEnvelope)))]
pub async fn evaluate_flag(
    State(app): State<App>,
    axum::Extension(principal): axum::Extension<Principal>,
    Path(name): Path<String>,
    Query(query): Query<FlagQuery>,
) -> Result<impl IntoResponse, ControlError> {
    principal.require(Scope::Read)?;
    let key = Flag::key(&name);
    let stored = current(&app.pool, &key)
        .await?
        .ok_or_else(|| unknown_key(&key))?;
    let flag: Flag = serde_json::from_value(stored.value)
        .map_err(|e| ControlError::invalid("value", e.to_string()))?;
    Ok(Json(json!({
        "flag": name,
        "user_id": query.user_id,
        "enabled": flag_enabled(&name, &flag, &query.user_id),
        "bucket": bucket(&name, &query.user_id),
        "version": stored.version,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_refused_anywhere_in_a_value() {
        let agents = vec!["helper".to_owned()];
        let provider =
            json!({"kind": "openai", "base_url": "https://api.example", "api_key": "sk-123"});
        let err = validate("providers.x", &provider, &agents)
            .unwrap_err()
            .to_string();
        assert!(err.contains("value.api_key"), "{err}");
        let nested = json!({"a": [{"password": "x"}]});
        assert!(validate("misc", &nested, &agents).is_err());
        assert!(
            validate(
                "misc",
                &json!({"accessToken": "x", "bot-token": "y"}),
                &agents
            )
            .is_err()
        );
        assert!(validate("misc", &json!({"apikey": "x"}), &agents).is_err());
        assert!(validate("misc", &json!({"max_tokens": 5, "keyboard": "us"}), &agents).is_ok());
        let by_ref = json!({"kind": "openai", "base_url": "https://api.example", "api_key_ref": "env:DEEPSEEK_KEY"});
        assert!(validate("providers.x", &by_ref, &agents).is_ok());
    }

    #[test]
    fn typed_prefixes_are_checked() {
        let agents = vec!["helper".to_owned()];
        assert!(
            validate(
                "flags.x",
                &json!({"enabled": true, "rollout_percent": 101}),
                &agents
            )
            .is_err()
        );
        assert!(
            validate(
                "flags.x",
                &json!({"enabled": true, "rollout_percent": 30}),
                &agents
            )
            .is_ok()
        );
        assert!(validate("flags.x", &json!({"on": true}), &agents).is_err());
        assert!(
            validate(
                "routing.main",
                &json!({"rules": [{"command": "/code", "agent": "coder"}]}),
                &agents
            )
            .is_err(),
            "unknown agent"
        );
        assert!(
            validate(
                "routing.main",
                &json!({"rules": [{"agent": "helper"}]}),
                &agents
            )
            .is_err(),
            "catch-all rule"
        );
        assert!(
            validate(
                "routing.main",
                &json!({"rules": [{"bot": "b", "agent": "helper"}], "default_agent": "helper"}),
                &agents
            )
            .is_ok()
        );
        assert!(
            validate(
                "providers.x",
                &json!({"kind": "grpc", "base_url": "http://x"}),
                &agents
            )
            .is_err()
        );
        assert!(validate("anything.else", &json!([1, 2, 3]), &agents).is_ok());
    }

    #[test]
    fn moving_a_secret_needs_admin() {
        let writer = Principal {
            name: "w".into(),
            scopes: vec![Scope::ConfigWrite],
        };
        let admin = Principal {
            name: "a".into(),
            scopes: vec![Scope::Admin],
        };
        let provider = |url: &str, key: &str| json!({"kind": "openai", "base_url": url, "api_key_ref": key, "models": ["m"]});
        let old = provider("https://api.example", "file:openai");
        let bot = |api: &str| json!({"token_ref": "file:bot", "webhook_secret_ref": "file:hook", "api_url": api});
        let old_bot = bot("https://api.telegram.org");
        let mut more_models = old.clone();
        more_models["models"] = json!(["m", "n"]);
        for (key, before, after, writer_may) in [
            (
                "providers.x",
                Some(&old),
                provider("https://evil.example", "file:openai"),
                false,
            ),
            (
                "providers.x",
                Some(&old),
                provider("https://api.example", "file:admin.token"),
                false,
            ),
            ("providers.x", None, old.clone(), false),
            ("providers.x", Some(&old), more_models, true),
            (
                "telegram.b",
                Some(&old_bot),
                bot("https://evil.example"),
                false,
            ),
            (
                "telegram.b",
                Some(&old_bot),
                {
                    let mut b = old_bot.clone();
                    b["public_url"] = json!("https://evil.example");
                    b
                },
                false,
            ),
            (
                "telegram.b",
                Some(&old_bot),
                {
                    let mut b = old_bot.clone();
                    b["pairing"] = json!(true);
                    b
                },
                true,
            ),
            (
                "misc.x",
                None,
                json!({"base_url": "https://anything"}),
                true,
            ),
        ] {
            let answer = require_route_unchanged(&writer, key, before, &after);
            assert_eq!(answer.is_ok(), writer_may, "{key}: {after}");
            assert!(require_route_unchanged(&admin, key, before, &after).is_ok());
        }
    }

    #[test]
    fn keys() {
        assert!(valid_key("flags.voice_replies"));
        assert!(!valid_key("Flags"));
        assert!(!valid_key(".x"));
        assert!(!valid_key(""));
    }
}
