//! The graph on a Bolt server (Neo4j 5, FalkorDB), when `memory.graph.url` is set.
//!
//! Driver: the `neo4j` crate, not `neo4rs`. neo4rs speaks Bolt 4.x only, and FalkorDB accepts
//! only Bolt 5.x; `neo4j` speaks 4.4 and 5.0–5.8, so one client serves Neo4j 4.4/5 and
//! FalkorDB. Its API is blocking: every query runs on tokio's blocking pool.
//!
//! The model: `(:Entity {id, user, kind, key, name})` nodes, where `user` is the owner's id or
//! `""` for the shared graph (MERGE cannot match on null), and `[:RELATED {id, relation, open,
//! source, created_at, created_by, ended_at, end_reason}]` relationships. Relations are a
//! property, not the relationship type: types cannot be query parameters, and one type lets a
//! single index find any relation by id. Times are Unix milliseconds.
//!
//! Writes are MERGEs, so a retried write (after a lost connection) changes nothing twice;
//! FalkorDB does not undo a rolled-back write, which makes this the only safe shape there.
//! Walks (neighbourhood, path) are breadth-first here, one query per step, so they mean the
//! same on every server and match the PostgreSQL backend exactly.
//!
//! FalkorDB quirks this works around: after a client says GOODBYE the next new connection can
//! hang (the driver keeps a long-lived pool, connects with a short timeout and retries), and
//! errors arrive without their message (each is reported with the operation that failed).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use neo4j::ValueReceive;
use neo4j::driver::auth::AuthToken;
use neo4j::driver::{ConnectionConfig, Driver, DriverConfig, Record, RoutingControl};
use neo4j::retry::ExponentialBackoff;
use neo4j::value::ValueSend;
use time::OffsetDateTime;
use uuid::Uuid;

use super::{
    Edge, GraphError, GraphStore, NewRelation, Node, Path, Related, Subgraph, check, key_of,
};

/// Bumped when the indexes below change; a graph with an older marker gets them created.
const SCHEMA_VERSION: i64 = 1;
const INDEXES: [&str; 3] = [
    "CREATE INDEX FOR (n:Entity) ON (n.id)",
    "CREATE INDEX FOR (n:Entity) ON (n.key)",
    "CREATE INDEX FOR ()-[r:RELATED]-() ON (r.id)",
];
const NODE_FIELDS: [&str; 4] = ["id", "user", "kind", "name"];

type Params = HashMap<String, ValueSend>;

pub struct BoltGraph {
    driver: Arc<Driver>,
    database: Option<Arc<String>>,
    timeout: Duration,
    /// `host:port`, for messages (never the credentials).
    server: String,
}

fn store(what: &str, e: impl std::fmt::Display) -> GraphError {
    GraphError::Store(format!("{what}: {e}"))
}

impl BoltGraph {
    /// Connects, checks the server answers, and creates the indexes on a new graph.
    pub async fn connect(config: &daarion_config::GraphConfig) -> Result<BoltGraph, GraphError> {
        let server = config
            .url
            .split_once("://")
            .map(|(_, rest)| rest.rsplit('@').next().unwrap_or(rest).to_owned())
            .unwrap_or_default();
        let connection = ConnectionConfig::try_from(config.url.as_str())
            .map_err(|e| store(&format!("graph url for {server}"), e))?;
        let auth = if config.user.is_empty() {
            AuthToken::new_none_auth()
        } else {
            let password = daarion_config::read_secret_file(&config.password_file)
                .map_err(|e| {
                    store(
                        &format!("graph password file {}", config.password_file.display()),
                        e,
                    )
                })?
                .unwrap_or_default();
            AuthToken::new_basic_auth(config.user.clone(), password)
        };
        let timeout = Duration::from_secs(config.timeout_secs.max(1));
        let driver = Driver::new(
            connection,
            DriverConfig::new()
                .with_auth(Arc::new(auth))
                // A hung handshake (FalkorDB after a GOODBYE) is given up fast and retried.
                .with_connection_timeout(Duration::from_secs(2).min(timeout))
                .with_connection_acquisition_timeout(timeout)
                .with_telemetry(false),
        );
        let graph = BoltGraph {
            driver: Arc::new(driver),
            database: (!config.database.is_empty()).then(|| Arc::new(config.database.clone())),
            timeout,
            server,
        };
        graph.ensure_schema().await?;
        tracing::info!(server = %graph.server, database = ?config.database, "graph on a Bolt server");
        Ok(graph)
    }

    async fn ensure_schema(&self) -> Result<(), GraphError> {
        let now = now_ms();
        let mut params = Params::new();
        params.insert("version".into(), SCHEMA_VERSION.into());
        params.insert("now".into(), now.into());
        let rows = self
            .run(
                "schema marker",
                "MERGE (m:DaarionSchema {version: $version}) ON CREATE SET m.created_at = $now \
                 RETURN m.created_at AS created_at",
                params,
                RoutingControl::Write,
            )
            .await?;
        let fresh = rows
            .into_iter()
            .next()
            .and_then(|mut r| r.take_value("created_at"))
            .is_some_and(|v| matches!(v, ValueReceive::Integer(t) if t == now));
        if fresh {
            for index in INDEXES {
                // An index already there (an older marker, made by hand) is no reason to stop.
                if let Err(e) = self
                    .run("create index", index, Params::new(), RoutingControl::Write)
                    .await
                {
                    tracing::info!(index, error = %e, "graph index not created");
                }
            }
        }
        Ok(())
    }

    /// Runs one query in its own transaction on the blocking pool, retrying on lost
    /// connections for up to the configured timeout.
    async fn run(
        &self,
        what: &'static str,
        cypher: &str,
        params: Params,
        routing: RoutingControl,
    ) -> Result<Vec<Record>, GraphError> {
        let (driver, database, timeout) =
            (self.driver.clone(), self.database.clone(), self.timeout);
        let cypher = cypher.to_owned();
        let ran = tokio::task::spawn_blocking(move || {
            let query = driver
                .execute_query(cypher)
                .with_parameters(params)
                .with_routing_control(routing);
            let query = match database {
                Some(db) => query.with_database(db),
                None => query.with_default_database(),
            };
            // The driver's error is large; only its message travels back.
            query
                .run_with_retry(ExponentialBackoff::new().with_max_retry_time(timeout))
                .map(|result| result.records)
                .map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| store(what, e))?;
        ran.map_err(|e| store(what, e))
    }

    async fn expand(
        &self,
        frontier: &[String],
        user: &str,
    ) -> Result<Vec<(String, Edge, Node)>, GraphError> {
        let mut params = Params::new();
        params.insert("ids".into(), frontier.to_vec().into());
        params.insert("user".into(), user.into());
        let rows = self
            .run(
                "expand",
                &format!(
                    "MATCH (a:Entity)-[r:RELATED]-(b:Entity) WHERE a.id IN $ids AND r.open = true \
                     AND (b.user = $user OR b.user = '') \
                     RETURN a.id AS at, {}, {} ORDER BY b.id, r.id",
                    edge_columns("r"),
                    node_columns("b")
                ),
                params,
                RoutingControl::Read,
            )
            .await?;
        rows.into_iter()
            .map(|mut row| {
                let at = string(&mut row, "at")?;
                let edge = edge_from(&mut row, "r")?;
                let node = node_from(&mut row, "b")?;
                Ok((at, edge, node))
            })
            .collect()
    }
}

/// The first row, or `NotFound` naming `what`.
fn first(rows: Vec<Record>, what: impl FnOnce() -> String) -> Result<Record, GraphError> {
    rows.into_iter()
        .next()
        .ok_or_else(|| GraphError::NotFound(what()))
}

fn now_ms() -> i64 {
    (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

fn time_of(ms: i64) -> Result<OffsetDateTime, GraphError> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .map_err(|e| store("time", e))
}

fn node_columns(var: &str) -> String {
    NODE_FIELDS
        .iter()
        .map(|f| format!("{var}.{f} AS {var}_{f}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn edge_columns(var: &str) -> String {
    format!(
        "{var}.id AS {var}_id, startNode({var}).id AS {var}_from, endNode({var}).id AS {var}_to, \
         {var}.relation AS {var}_relation, {var}.source AS {var}_source, \
         {var}.created_at AS {var}_created_at, {var}.ended_at AS {var}_ended_at"
    )
}

fn take(row: &mut Record, key: &str) -> Result<ValueReceive, GraphError> {
    row.take_value(key)
        .ok_or_else(|| store("reading a result", format!("no column {key}")))
}

fn string(row: &mut Record, key: &str) -> Result<String, GraphError> {
    match take(row, key)? {
        ValueReceive::String(s) => Ok(s),
        ValueReceive::Null => Ok(String::new()),
        other => Err(store(
            "reading a result",
            format!("{key} is {other:?}, not a string"),
        )),
    }
}

fn uuid(row: &mut Record, key: &str) -> Result<Uuid, GraphError> {
    let raw = string(row, key)?;
    Uuid::parse_str(&raw).map_err(|e| store("reading a result", format!("{key}: {e}")))
}

/// `""` (and null) is "none".
fn optional_uuid(row: &mut Record, key: &str) -> Result<Option<Uuid>, GraphError> {
    let raw = string(row, key)?;
    if raw.is_empty() {
        return Ok(None);
    }
    Uuid::parse_str(&raw)
        .map(Some)
        .map_err(|e| store("reading a result", format!("{key}: {e}")))
}

fn optional_time(row: &mut Record, key: &str) -> Result<Option<OffsetDateTime>, GraphError> {
    match take(row, key)? {
        ValueReceive::Integer(ms) => time_of(ms).map(Some),
        ValueReceive::Null => Ok(None),
        other => Err(store(
            "reading a result",
            format!("{key} is {other:?}, not a time"),
        )),
    }
}

fn node_from(row: &mut Record, var: &str) -> Result<Node, GraphError> {
    Ok(Node {
        id: uuid(row, &format!("{var}_id"))?,
        user_id: optional_uuid(row, &format!("{var}_user"))?,
        kind: string(row, &format!("{var}_kind"))?,
        name: string(row, &format!("{var}_name"))?,
    })
}

fn edge_from(row: &mut Record, var: &str) -> Result<Edge, GraphError> {
    Ok(Edge {
        id: uuid(row, &format!("{var}_id"))?,
        from_node: uuid(row, &format!("{var}_from"))?,
        to_node: uuid(row, &format!("{var}_to"))?,
        relation: string(row, &format!("{var}_relation"))?,
        source_message_id: optional_uuid(row, &format!("{var}_source"))?,
        created_at: optional_time(row, &format!("{var}_created_at"))?
            .ok_or_else(|| store("reading a result", "a relation without created_at"))?,
        ended_at: optional_time(row, &format!("{var}_ended_at"))?,
    })
}

fn user_param(user: Option<Uuid>) -> ValueSend {
    user.map(|u| u.to_string()).unwrap_or_default().into()
}

impl GraphStore for BoltGraph {
    fn relate<'a>(
        &'a self,
        relation: &'a NewRelation,
        by: &'a str,
    ) -> BoxFuture<'a, Result<Related, GraphError>> {
        Box::pin(async move {
            check(relation)?;
            let edge_id = Uuid::now_v7().to_string();
            let mut params = Params::new();
            params.insert("user".into(), user_param(relation.user_id));
            params.insert("from_kind".into(), relation.from.kind.clone().into());
            params.insert("from_key".into(), key_of(&relation.from.name).into());
            params.insert("from_name".into(), relation.from.name.trim().into());
            params.insert("from_id".into(), Uuid::now_v7().to_string().into());
            params.insert("to_kind".into(), relation.to.kind.clone().into());
            params.insert("to_key".into(), key_of(&relation.to.name).into());
            params.insert("to_name".into(), relation.to.name.trim().into());
            params.insert("to_id".into(), Uuid::now_v7().to_string().into());
            params.insert("relation".into(), relation.relation.clone().into());
            params.insert("edge_id".into(), edge_id.clone().into());
            params.insert(
                "source".into(),
                relation
                    .source_message_id
                    .map(|m| m.to_string())
                    .unwrap_or_default()
                    .into(),
            );
            params.insert("now".into(), now_ms().into());
            params.insert("by".into(), by.into());
            let rows = self
                .run(
                    "relate",
                    &format!(
                        "MERGE (a:Entity {{user: $user, kind: $from_kind, key: $from_key}}) \
                         ON CREATE SET a.id = $from_id, a.name = $from_name \
                         MERGE (b:Entity {{user: $user, kind: $to_kind, key: $to_key}}) \
                         ON CREATE SET b.id = $to_id, b.name = $to_name \
                         MERGE (a)-[r:RELATED {{relation: $relation, open: true}}]->(b) \
                         ON CREATE SET r.id = $edge_id, r.source = $source, r.created_at = $now, \
                           r.created_by = $by \
                         RETURN {}, {}, {}",
                        node_columns("a"),
                        node_columns("b"),
                        edge_columns("r")
                    ),
                    params,
                    RoutingControl::Write,
                )
                .await?;
            let mut row = rows
                .into_iter()
                .next()
                .ok_or_else(|| store("relate", "the server returned nothing"))?;
            let from = node_from(&mut row, "a")?;
            let to = node_from(&mut row, "b")?;
            let edge = edge_from(&mut row, "r")?;
            let created = edge.id.to_string() == edge_id;
            Ok(Related {
                from,
                edge,
                to,
                created,
            })
        })
    }

    fn node(&self, id: Uuid) -> BoxFuture<'_, Result<Node, GraphError>> {
        Box::pin(async move {
            let mut params = Params::new();
            params.insert("id".into(), id.to_string().into());
            let rows = self
                .run(
                    "node",
                    &format!("MATCH (n:Entity {{id: $id}}) RETURN {}", node_columns("n")),
                    params,
                    RoutingControl::Read,
                )
                .await?;
            node_from(&mut first(rows, || format!("node {id}"))?, "n")
        })
    }

    fn find<'a>(
        &'a self,
        user: Option<Uuid>,
        prefix: &'a str,
        limit: u32,
    ) -> BoxFuture<'a, Result<Vec<Node>, GraphError>> {
        Box::pin(async move {
            let mut params = Params::new();
            params.insert("user".into(), user_param(user));
            params.insert("prefix".into(), key_of(prefix).into());
            params.insert("limit".into(), i64::from(limit).into());
            let rows = self
                .run(
                    "find",
                    &format!(
                        "MATCH (n:Entity) WHERE (n.user = $user OR n.user = '') \
                         AND n.key STARTS WITH $prefix \
                         RETURN {} ORDER BY n.key LIMIT $limit",
                        node_columns("n")
                    ),
                    params,
                    RoutingControl::Read,
                )
                .await?;
            rows.into_iter()
                .map(|mut row| node_from(&mut row, "n"))
                .collect()
        })
    }

    fn neighbourhood(
        &self,
        node: Uuid,
        depth: u32,
        limit: u32,
    ) -> BoxFuture<'_, Result<Subgraph, GraphError>> {
        Box::pin(async move {
            let start = self.node(node).await?;
            let user = start.user_id.map(|u| u.to_string()).unwrap_or_default();
            // Breadth first, each node at the depth it was first reached.
            let mut reached: HashMap<Uuid, (u32, Node)> = HashMap::new();
            reached.insert(start.id, (0, start.clone()));
            let mut frontier = vec![start.id.to_string()];
            for step in 1..=depth {
                if frontier.is_empty() {
                    break;
                }
                let mut next = Vec::new();
                for (_, _, to) in self.expand(&frontier, &user).await? {
                    if let std::collections::hash_map::Entry::Vacant(slot) = reached.entry(to.id) {
                        next.push(to.id.to_string());
                        slot.insert((step, to));
                    }
                }
                frontier = next;
            }
            let mut order: Vec<(u32, Uuid)> =
                reached.iter().map(|(id, (d, _))| (*d, *id)).collect();
            order.sort();
            order.truncate(limit as usize);
            let kept: Vec<String> = order.iter().map(|(_, id)| id.to_string()).collect();
            let mut nodes: Vec<Node> = order
                .iter()
                .filter_map(|(_, id)| reached.remove(id).map(|(_, n)| n))
                .collect();
            nodes.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
            let mut params = Params::new();
            params.insert("ids".into(), kept.into());
            let rows = self
                .run(
                    "neighbourhood",
                    &format!(
                        "MATCH (a:Entity)-[r:RELATED]->(b:Entity) WHERE a.id IN $ids AND b.id IN $ids \
                         AND r.open = true RETURN {} ORDER BY r.created_at, r.id",
                        edge_columns("r")
                    ),
                    params,
                    RoutingControl::Read,
                )
                .await?;
            let edges = rows
                .into_iter()
                .map(|mut row| edge_from(&mut row, "r"))
                .collect::<Result<_, _>>()?;
            Ok(Subgraph { nodes, edges })
        })
    }

    fn path(
        &self,
        from: Uuid,
        to: Uuid,
        max_depth: u32,
    ) -> BoxFuture<'_, Result<Option<Path>, GraphError>> {
        Box::pin(async move {
            let start = self.node(from).await?;
            let end = self.node(to).await?;
            if end.user_id.is_some() && end.user_id != start.user_id {
                return Ok(None);
            }
            let user = start.user_id.map(|u| u.to_string()).unwrap_or_default();
            // Breadth first with the step that reached each node: the first time `to` is
            // reached, following the steps back gives a shortest chain.
            let mut came_from: HashMap<Uuid, (Uuid, Edge, Node)> = HashMap::new();
            let mut seen: HashSet<Uuid> = HashSet::from([start.id]);
            let mut frontier = vec![start.id.to_string()];
            let mut found = from == to;
            for _ in 0..max_depth {
                if found || frontier.is_empty() {
                    break;
                }
                let mut next = Vec::new();
                for (at, edge, node) in self.expand(&frontier, &user).await? {
                    if !seen.insert(node.id) {
                        continue;
                    }
                    let at = Uuid::parse_str(&at).map_err(|e| store("path", e))?;
                    next.push(node.id.to_string());
                    found |= node.id == to;
                    came_from.insert(node.id, (at, edge, node));
                }
                frontier = next;
            }
            if !found {
                return Ok(None);
            }
            let (mut nodes, mut edges) = (vec![end.clone()], Vec::new());
            let mut at = to;
            while at != from {
                let (previous, edge, _) = came_from
                    .remove(&at)
                    .ok_or_else(|| store("path", "a broken chain"))?;
                edges.push(edge);
                nodes.push(if previous == from {
                    start.clone()
                } else {
                    came_from
                        .get(&previous)
                        .map(|(_, _, n)| n.clone())
                        .ok_or_else(|| store("path", "a broken chain"))?
                });
                at = previous;
            }
            nodes.reverse();
            edges.reverse();
            Ok(Some(Path { nodes, edges }))
        })
    }

    fn end<'a>(&'a self, edge: Uuid, reason: &'a str) -> BoxFuture<'a, Result<Edge, GraphError>> {
        Box::pin(async move {
            let mut params = Params::new();
            params.insert("id".into(), edge.to_string().into());
            params.insert("reason".into(), reason.into());
            params.insert("now".into(), now_ms().into());
            let rows = self
                .run(
                    "end relation",
                    &format!(
                        "MATCH ()-[r:RELATED {{id: $id}}]->() \
                         SET r.ended_at = coalesce(r.ended_at, $now), \
                           r.end_reason = coalesce(r.end_reason, $reason), r.open = false \
                         RETURN {}",
                        edge_columns("r")
                    ),
                    params,
                    RoutingControl::Write,
                )
                .await?;
            edge_from(&mut first(rows, || format!("relation {edge}"))?, "r")
        })
    }

    fn edge_owner(&self, edge: Uuid) -> BoxFuture<'_, Result<Option<Uuid>, GraphError>> {
        Box::pin(async move {
            let mut params = Params::new();
            params.insert("id".into(), edge.to_string().into());
            let rows = self
                .run(
                    "relation owner",
                    "MATCH (a:Entity)-[r:RELATED {id: $id}]->() RETURN a.user AS owner",
                    params,
                    RoutingControl::Read,
                )
                .await?;
            optional_uuid(&mut first(rows, || format!("relation {edge}"))?, "owner")
        })
    }
}
