//! First-run defaults: on an appliance with no agents at all, the control plane adds one agent,
//! `assistant`, with a prompt, settings on the local chat model, a routing table that reaches it
//! and a policy that lets administrators and approved users (the pairing flow's `user` role) talk
//! to it, so the first chat after install is answered. Applied once, in one transaction, audited
//! as changes by `system`; a row in `control_defaults` records that they were considered, so an
//! operator who removes or changes the default agent never sees it come back.

use std::path::Path;

use daarion_policy::PolicyDoc;
use daarion_settings::{AgentSettings, LOCAL_PROVIDER, Routing, Setting, SingleSetting};
use serde_json::{Value, json};
use sqlx::{Postgres, Transaction};

use crate::changes::Change;
use crate::principal::{Principal, Scope};

/// The default agent's id.
pub const AGENT: &str = "assistant";
/// Its name, as users see it.
pub const AGENT_NAME: &str = "Assistant";
/// The role the gateway's pairing gives approved Telegram users (a bot's `pairing_role`
/// defaults to it).
pub const APPROVED_ROLE: &str = "user";
/// The row in `control_defaults` for this set.
const NAME: &str = "first_run";
/// The author of every change made here, in versions and in the audit log.
const ACTOR: &str = "system";

/// Whether a control plane applies the first-run defaults at start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Defaults {
    Apply,
    /// For tests that need an empty control plane.
    Skip,
}

/// The default agent's system prompt. The router fills `{{agent_name}}`, `{{user_name}}` and
/// `{{date}}`.
pub const PROMPT: &str = "You are {{agent_name}}, the assistant on this DAARION appliance, talking with {{user_name}}. Today is {{date}}.

Answer in the language the user writes in: Ukrainian, Russian, English or any other. Be helpful and concise: a short, clear answer first, details when asked. If you do not know, say so; never invent facts, names or sources.

Use your tools when they help:
- Memory: look up what this user told you before (search_memory, recall_facts, explore_memory) and keep what they ask you to remember (remember_fact, remember_relation).
- Documents: files the user sent are read into memory. When you answer from one, cite it as the search hit names it (for example \"report.pdf, p. 3\").
- Crews: for a long task of several steps (research, comparing options, drafting), start a crew run (start_crew_run) and tell the user it is running.
- speak for a spoken answer, describe_image for details of a picture the user sent, generate_image when asked to draw.";

/// Everything may be used by the roles that may talk to the default agent.
fn full_grant() -> Value {
    json!({"use": true, "tools": {"allow": ["*"]}, "models": {"allow": ["*"]}, "modes": {"allow": ["*"]}})
}

/// The default agent's policy: administrators and approved users; a stranger (`guest`) is
/// refused by the absence of a rule.
pub fn policy() -> PolicyDoc {
    serde_json::from_value(json!({"roles": {"admin": full_grant(), APPROVED_ROLE: full_grant()}}))
        .unwrap_or_default()
}

/// The top-level `key = "value"` or `key = number` pairs of a manifest, before its first table.
/// The swapper owns the manifest type; the control plane needs only a chat model's id and
/// priority, so it reads those two keys rather than link the swapper's crate.
fn top_level(text: &str) -> impl Iterator<Item = (&str, &str)> {
    text.lines()
        .map(str::trim)
        .take_while(|line| !line.starts_with('['))
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (key, value) = line.split_once('=')?;
            let value = value.trim();
            // A comment after the value ends it, outside quotes.
            let value = match value.strip_prefix('"') {
                Some(rest) => rest.split('"').next()?,
                None => value.split('#').next()?.trim(),
            };
            Some((key.trim(), value))
        })
}

/// The swapper's default chat model: among the manifests of kind `chat`, the highest
/// `priority`, then the first id. `None` when there is none (or no such directory).
pub fn chat_model(manifests: &Path) -> Option<String> {
    let mut found: Vec<(i64, String)> = std::fs::read_dir(manifests)
        .ok()?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|e| e == "toml"))
        .filter_map(|path| std::fs::read_to_string(path).ok())
        .filter_map(|text| {
            let mut id = None;
            let mut chat = false;
            let mut priority = 0;
            for (key, value) in top_level(&text) {
                match key {
                    "id" => id = Some(value.to_owned()),
                    "kind" => chat = value == "chat",
                    "priority" => priority = value.parse().unwrap_or(0),
                    _ => {}
                }
            }
            id.filter(|_| chat).map(|id| (priority, id))
        })
        .collect();
    found.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    found.into_iter().next().map(|(_, id)| id)
}

/// `agents.assistant`: the local chat model when the appliance has one; otherwise the document
/// the router would assume anyway (every default), so the operator sees where to name a model.
pub fn settings(chat_model: Option<&str>) -> Value {
    let models: Vec<String> = chat_model
        .map(|m| format!("{LOCAL_PROVIDER}/{m}"))
        .into_iter()
        .collect();
    json!({"models": models})
}

/// Applies the first-run defaults unless they were considered before; answers whether it
/// added anything now.
pub async fn apply(pool: &sqlx::PgPool, manifests: &Path) -> Result<bool, sqlx::Error> {
    let mut tx = pool.begin().await?;
    // The primary key serialises two control planes starting at once: the second waits for
    // the first's commit, then finds the row.
    let first = sqlx::query(
        "INSERT INTO control_defaults (name, seeded) VALUES ($1, false) ON CONFLICT (name) DO NOTHING",
    )
    .bind(NAME)
    .execute(&mut *tx)
    .await?
    .rows_affected()
        == 1;
    if !first {
        return Ok(false);
    }
    let agents: i64 = sqlx::query_scalar("SELECT count(*) FROM agents")
        .fetch_one(&mut *tx)
        .await?;
    if agents > 0 {
        // An appliance set up before this build: its operator already chose its agents.
        tx.commit().await?;
        return Ok(false);
    }
    let model = chat_model(manifests);
    seed(&mut tx, model.as_deref()).await?;
    sqlx::query("UPDATE control_defaults SET seeded = true, detail = $2 WHERE name = $1")
        .bind(NAME)
        .bind(json!({"agent": AGENT, "chat_model": model}))
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    match &model {
        Some(m) => tracing::info!(agent = AGENT, model = %m, "first run: default agent added"),
        None => tracing::warn!(
            agent = AGENT,
            manifests = %manifests.display(),
            "first run: default agent added without a model (no chat model among the manifests)"
        ),
    }
    Ok(true)
}

async fn seed(tx: &mut Transaction<'_, Postgres>, model: Option<&str>) -> Result<(), sqlx::Error> {
    let system = Principal {
        name: ACTOR.into(),
        scopes: vec![Scope::Admin],
    };
    // Created with its first prompt active, as `POST /agents` then `POST /prompts` leave it.
    sqlx::query(
        "INSERT INTO agents (id, name, description, default_model, active_prompt, revision) \
         VALUES ($1, $2, $3, $4, 1, 2)",
    )
    .bind(AGENT)
    .bind(AGENT_NAME)
    .bind("The appliance's default agent: memory, documents with citations, crew runs.")
    .bind(model)
    .execute(&mut **tx)
    .await?;
    let agent = crate::agents::load(&mut **tx, AGENT, false)
        .await
        .map_err(|e| match e {
            crate::ControlError::Database(e) => e,
            other => sqlx::Error::Protocol(other.to_string()),
        })?;
    Change::new(&system, "agent.create", format!("agent:{AGENT}"))
        .after(serde_json::to_value(&agent).unwrap_or_default())
        .announce("agent", AGENT, 2)
        .record(tx)
        .await?;

    let variables = crate::prompts::placeholders(PROMPT).unwrap_or_default();
    sqlx::query(
        "INSERT INTO prompt_versions (agent_id, version, content, variables, comment, author) \
         VALUES ($1, 1, $2, $3, 'first-run default', $4)",
    )
    .bind(AGENT)
    .bind(PROMPT)
    .bind(&variables)
    .bind(ACTOR)
    .execute(&mut **tx)
    .await?;
    Change::new(&system, "prompt.create", format!("agent:{AGENT}/prompt:1"))
        .before(json!({"active": null}))
        .after(json!({"version": 1, "variables": variables, "comment": "first-run default", "activated": true}))
        .announce("prompt", AGENT, 1)
        .record(tx)
        .await?;

    let document = policy();
    sqlx::query(
        "INSERT INTO policy_versions (agent_id, version, document, comment, author) \
         VALUES ($1, 1, $2, 'first-run default', $3)",
    )
    .bind(AGENT)
    .bind(sqlx::types::Json(&document))
    .bind(ACTOR)
    .execute(&mut **tx)
    .await?;
    Change::new(&system, "policy.update", format!("agent:{AGENT}/policy:1"))
        .before(json!({"version": 0, "document": PolicyDoc::default()}))
        .after(json!({"version": 1, "document": document}))
        .announce("policy", AGENT, 1)
        .record(tx)
        .await?;

    let routing = Routing {
        rules: Vec::new(),
        default_agent: Some(AGENT.to_owned()),
    };
    for (key, value) in [
        (AgentSettings::key(AGENT), settings(model)),
        (
            Routing::KEY.to_owned(),
            serde_json::to_value(&routing).unwrap_or_default(),
        ),
    ] {
        set_config(tx, &system, &key, value).await?;
    }
    Ok(())
}

/// A new version of `key`, as `PUT /config/{key}` writes one.
async fn set_config(
    tx: &mut Transaction<'_, Postgres>,
    system: &Principal,
    key: &str,
    value: Value,
) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('config:' || $1))")
        .bind(key)
        .execute(&mut **tx)
        .await?;
    let before: Option<(i32, Value)> = sqlx::query_as(
        "SELECT version, value FROM config_versions WHERE key = $1 ORDER BY version DESC LIMIT 1",
    )
    .bind(key)
    .fetch_optional(&mut **tx)
    .await?;
    let version = before.as_ref().map_or(0, |b| b.0) + 1;
    sqlx::query(
        "INSERT INTO config_versions (key, version, value, comment, author) \
         VALUES ($1, $2, $3, 'first-run default', $4)",
    )
    .bind(key)
    .bind(version)
    .bind(&value)
    .bind(ACTOR)
    .execute(&mut **tx)
    .await?;
    Change::new(system, "config.set", format!("config:{key}"))
        .before(json!({"version": before.as_ref().map(|b| b.0), "value": before.map(|b| b.1)}))
        .after(json!({"version": version, "value": value}))
        .announce("config", key, i64::from(version))
        .record(tx)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use daarion_policy::{Action, Subject, decide};

    use super::*;

    #[test]
    fn the_chat_model_is_found_among_manifests() {
        let dir = std::env::temp_dir().join(format!("daarion-defaults-{}", uuid::Uuid::new_v4()));
        let manifest = |name: &str, text: &str| std::fs::write(dir.join(name), text).unwrap();
        assert_eq!(chat_model(&dir), None, "no directory");
        std::fs::create_dir_all(&dir).unwrap();
        assert_eq!(chat_model(&dir), None, "empty directory");
        manifest(
            "minilm.toml",
            "id = \"minilm\"\nkind = \"embedding\"\nestimate_mb = 50\n",
        );
        manifest("notes.txt", "id = \"notes\"\nkind = \"chat\"\n");
        assert_eq!(chat_model(&dir), None, "no chat manifest");
        manifest(
            "smollm2.toml",
            "# a comment\nid = \"smollm2\" # inline\nkind = \"chat\"\nestimate_mb = 300\n",
        );
        manifest(
            "big.toml",
            "id = \"big\"\nkind = \"chat\"\n\n[image]\nkind = \"x\"\n",
        );
        assert_eq!(chat_model(&dir).as_deref(), Some("big"), "first id");
        manifest(
            "preferred.toml",
            "id = \"zeta\"\nkind = \"chat\"\npriority = 5\n",
        );
        assert_eq!(
            chat_model(&dir).as_deref(),
            Some("zeta"),
            "highest priority"
        );
        manifest(
            "vision.toml",
            "id = \"aaa\"\nkind = \"vision\"\npriority = 9\n",
        );
        assert_eq!(chat_model(&dir).as_deref(), Some("zeta"), "chat kind only");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_settings_are_valid_agent_settings() {
        for model in [Some("smollm2"), None] {
            let value = settings(model);
            let parsed: AgentSettings = serde_json::from_value(value.clone()).unwrap();
            parsed.validate().unwrap();
            assert_eq!(parsed.models.len(), usize::from(model.is_some()), "{value}");
        }
        assert_eq!(settings(Some("m"))["models"][0], "local/m");
    }

    #[test]
    fn the_policy_admits_admins_and_approved_users_only() {
        let known: Vec<String> = daarion_policy::BUILTIN_ROLES
            .iter()
            .map(|r| r.to_string())
            .collect();
        let doc = policy();
        doc.validate(&known).unwrap();
        let subject = |roles: &[&str]| Subject {
            user_id: "u".into(),
            roles: roles.iter().map(|r| r.to_string()).collect(),
        };
        for (roles, action, allowed) in [
            (&["admin"][..], Action::Use, true),
            (&["user"][..], Action::Use, true),
            (&["user"][..], Action::Mode("private"), true),
            (&["user"][..], Action::Model("local/smollm2"), true),
            (&["user"][..], Action::Tool("search_memory"), true),
            (&["guest"][..], Action::Use, false),
            (&["guest"][..], Action::Model("local/smollm2"), false),
            (&["operator"][..], Action::Use, false),
        ] {
            let decision = decide(&subject(roles), true, &doc, &action);
            assert_eq!(
                decision.allow, allowed,
                "{roles:?} {action:?}: {decision:?}"
            );
        }
    }

    #[test]
    fn the_prompt_is_a_valid_template() {
        let variables = crate::prompts::placeholders(PROMPT).unwrap();
        assert_eq!(variables, ["agent_name", "user_name", "date"]);
        assert!(PROMPT.len() < crate::prompts::MAX_PROMPT_BYTES);
    }
}
