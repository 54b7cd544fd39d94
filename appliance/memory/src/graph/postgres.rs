//! The graph in PostgreSQL: `graph_nodes` and `graph_edges` (migration 0008).

use std::collections::{HashMap, HashSet};

use futures::future::BoxFuture;
use sqlx::PgPool;
use uuid::Uuid;

use super::{
    Edge, GraphError, GraphStore, NewRelation, Node, Path, Related, Subgraph, check, key_of,
};
use crate::rows::Row;

pub struct PgGraph {
    pool: PgPool,
}

impl PgGraph {
    pub fn new(pool: PgPool) -> PgGraph {
        PgGraph { pool }
    }
}

fn store(e: sqlx::Error) -> GraphError {
    match &e {
        sqlx::Error::Database(db) if db.code().as_deref() == Some("23503") => {
            GraphError::Invalid("the user or source message does not exist".into())
        }
        _ => GraphError::Store(e.to_string()),
    }
}

const NODE: &str = "id, user_id, kind, name";
const EDGE: &str = "id, from_node, to_node, relation, source_message_id, created_at, ended_at";

async fn upsert_node(
    tx: &mut sqlx::PgConnection,
    user: Option<Uuid>,
    kind: &str,
    name: &str,
) -> Result<Node, sqlx::Error> {
    // Insert-or-nothing, then read: a concurrent creator of the same node is harmless.
    sqlx::query(
        "INSERT INTO graph_nodes (id, user_id, kind, key, name) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (user_id, kind, key) DO NOTHING",
    )
    .bind(Uuid::now_v7())
    .bind(user)
    .bind(kind)
    .bind(key_of(name))
    .bind(name.trim())
    .execute(&mut *tx)
    .await?;
    sqlx::query_as::<_, Row<Node>>(&format!(
        "SELECT {NODE} FROM graph_nodes WHERE user_id IS NOT DISTINCT FROM $1 AND kind = $2 AND key = $3"
    ))
    .bind(user)
    .bind(kind)
    .bind(key_of(name))
    .fetch_one(&mut *tx)
    .await
    .map(Row::into_inner)
}

/// The shortest chain of open relations from `from` to `to` (at most `max_depth` of them),
/// as its node and relation ids. Breadth first with a visited set, one query per level: an
/// all-paths recursive query grows with the number of simple paths, which a 22-node clique
/// makes astronomical, while this touches each relation at most twice.
async fn bfs(
    pool: &PgPool,
    from: Uuid,
    to: Uuid,
    max_depth: u32,
    user: Option<Uuid>,
) -> Result<Option<(Vec<Uuid>, Vec<Uuid>)>, GraphError> {
    // Each reached node: the node and relation it was reached through.
    let mut reached: HashMap<Uuid, Option<(Uuid, Uuid)>> = HashMap::from([(from, None)]);
    let mut frontier = vec![from];
    let mut depth = 0;
    while !reached.contains_key(&to) && !frontier.is_empty() && depth < max_depth {
        depth += 1;
        let edges: Vec<(Uuid, Uuid, Uuid)> = sqlx::query_as(
            "SELECT id, from_node, to_node FROM graph_edges \
             WHERE ended_at IS NULL AND (from_node = ANY($1) OR to_node = ANY($1)) \
             ORDER BY created_at, id",
        )
        .bind(&frontier)
        .fetch_all(pool)
        .await
        .map_err(store)?;
        let in_frontier: HashSet<Uuid> = frontier.iter().copied().collect();
        let mut candidates = Vec::new();
        for &(edge, a, b) in &edges {
            for (here, there) in [(a, b), (b, a)] {
                if in_frontier.contains(&here) && !reached.contains_key(&there) {
                    candidates.push((there, here, edge));
                }
            }
        }
        let ids: Vec<Uuid> = candidates.iter().map(|c| c.0).collect();
        // Only this user's graph and the shared one.
        let allowed: HashSet<Uuid> = sqlx::query_scalar::<_, Uuid>(
            "SELECT id FROM graph_nodes WHERE id = ANY($1) \
             AND (user_id IS NOT DISTINCT FROM $2 OR user_id IS NULL)",
        )
        .bind(&ids)
        .bind(user)
        .fetch_all(pool)
        .await
        .map_err(store)?
        .into_iter()
        .collect();
        frontier.clear();
        for (there, here, edge) in candidates {
            if allowed.contains(&there) && !reached.contains_key(&there) {
                reached.insert(there, Some((here, edge)));
                frontier.push(there);
            }
        }
    }
    if !reached.contains_key(&to) {
        return Ok(None);
    }
    let (mut nodes, mut edges) = (vec![to], vec![]);
    let mut at = to;
    while let Some(Some((previous, edge))) = reached.get(&at) {
        nodes.push(*previous);
        edges.push(*edge);
        at = *previous;
    }
    nodes.reverse();
    edges.reverse();
    Ok(Some((nodes, edges)))
}

impl GraphStore for PgGraph {
    fn relate<'a>(
        &'a self,
        relation: &'a NewRelation,
        by: &'a str,
    ) -> BoxFuture<'a, Result<Related, GraphError>> {
        Box::pin(async move {
            check(relation)?;
            let mut tx = self.pool.begin().await.map_err(store)?;
            let from = upsert_node(
                &mut tx,
                relation.user_id,
                &relation.from.kind,
                &relation.from.name,
            )
            .await
            .map_err(store)?;
            let to = upsert_node(
                &mut tx,
                relation.user_id,
                &relation.to.kind,
                &relation.to.name,
            )
            .await
            .map_err(store)?;
            let inserted = sqlx::query_as::<_, Row<Edge>>(&format!(
                "INSERT INTO graph_edges (id, from_node, to_node, relation, source_message_id, created_by) \
                 VALUES ($1, $2, $3, $4, $5, $6) \
                 ON CONFLICT (from_node, to_node, relation) WHERE ended_at IS NULL DO NOTHING \
                 RETURNING {EDGE}"
            ))
            .bind(Uuid::now_v7())
            .bind(from.id)
            .bind(to.id)
            .bind(&relation.relation)
            .bind(relation.source_message_id)
            .bind(by)
            .fetch_optional(&mut *tx)
            .await
            .map_err(store)?;
            let (edge, created) = match inserted {
                Some(Row(edge)) => (edge, true),
                None => (
                    sqlx::query_as::<_, Row<Edge>>(&format!(
                        "SELECT {EDGE} FROM graph_edges WHERE from_node = $1 AND to_node = $2 AND relation = $3 AND ended_at IS NULL"
                    ))
                    .bind(from.id)
                    .bind(to.id)
                    .bind(&relation.relation)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(store)?
                    .into_inner(),
                    false,
                ),
            };
            tx.commit().await.map_err(store)?;
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
            sqlx::query_as::<_, Row<Node>>(&format!("SELECT {NODE} FROM graph_nodes WHERE id = $1"))
                .bind(id)
                .fetch_optional(&self.pool)
                .await
                .map_err(store)?
                .map(Row::into_inner)
                .ok_or_else(|| GraphError::NotFound(format!("node {id}")))
        })
    }

    fn find<'a>(
        &'a self,
        user: Option<Uuid>,
        prefix: &'a str,
        limit: u32,
    ) -> BoxFuture<'a, Result<Vec<Node>, GraphError>> {
        Box::pin(async move {
            let pattern = format!(
                "{}%",
                key_of(prefix)
                    .replace('\\', "\\\\")
                    .replace('%', "\\%")
                    .replace('_', "\\_")
            );
            sqlx::query_as::<_, Row<Node>>(&format!(
                "SELECT {NODE} FROM graph_nodes WHERE (user_id IS NOT DISTINCT FROM $1 OR user_id IS NULL) \
                 AND key LIKE $2 ORDER BY key LIMIT $3"
            ))
            .bind(user)
            .bind(pattern)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map(Row::all)
            .map_err(store)
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
            // Open relations, in either direction, staying inside this user's graph and the
            // shared one; UNION (not ALL) stops revisits at the same depth.
            let ids: Vec<Uuid> = sqlx::query_scalar(
                "WITH RECURSIVE walk(node, depth) AS ( \
                   SELECT $1::uuid, 0 \
                   UNION \
                   SELECT CASE WHEN e.from_node = w.node THEN e.to_node ELSE e.from_node END, w.depth + 1 \
                   FROM walk w \
                   JOIN graph_edges e ON (e.from_node = w.node OR e.to_node = w.node) AND e.ended_at IS NULL \
                   JOIN graph_nodes n ON n.id = CASE WHEN e.from_node = w.node THEN e.to_node ELSE e.from_node END \
                   WHERE w.depth < $2 AND (n.user_id IS NOT DISTINCT FROM $3 OR n.user_id IS NULL) \
                 ) \
                 SELECT node FROM (SELECT node, min(depth) AS d FROM walk GROUP BY node) AS reached \
                 ORDER BY d, node LIMIT $4",
            )
            .bind(node)
            .bind(i32::try_from(depth).unwrap_or(i32::MAX))
            .bind(start.user_id)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(store)?;
            let nodes = sqlx::query_as::<_, Row<Node>>(&format!(
                "SELECT {NODE} FROM graph_nodes WHERE id = ANY($1) ORDER BY name"
            ))
            .bind(&ids)
            .fetch_all(&self.pool)
            .await
            .map(Row::all)
            .map_err(store)?;
            let edges = sqlx::query_as::<_, Row<Edge>>(&format!(
                "SELECT {EDGE} FROM graph_edges WHERE ended_at IS NULL AND from_node = ANY($1) AND to_node = ANY($1) \
                 ORDER BY created_at"
            ))
            .bind(&ids)
            .fetch_all(&self.pool)
            .await
            .map(Row::all)
            .map_err(store)?;
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
            let Some((node_ids, edge_ids)) =
                bfs(&self.pool, from, to, max_depth, start.user_id).await?
            else {
                return Ok(None);
            };
            let mut nodes = Vec::with_capacity(node_ids.len());
            for id in &node_ids {
                nodes.push(self.node(*id).await?);
            }
            let mut edges = Vec::with_capacity(edge_ids.len());
            for id in &edge_ids {
                edges.push(
                    sqlx::query_as::<_, Row<Edge>>(&format!(
                        "SELECT {EDGE} FROM graph_edges WHERE id = $1"
                    ))
                    .bind(id)
                    .fetch_one(&self.pool)
                    .await
                    .map_err(store)?
                    .into_inner(),
                );
            }
            Ok(Some(Path { nodes, edges }))
        })
    }

    fn end<'a>(&'a self, edge: Uuid, reason: &'a str) -> BoxFuture<'a, Result<Edge, GraphError>> {
        Box::pin(async move {
            sqlx::query_as::<_, Row<Edge>>(&format!(
                "UPDATE graph_edges SET ended_at = coalesce(ended_at, clock_timestamp()), \
                   end_reason = coalesce(end_reason, $2) WHERE id = $1 RETURNING {EDGE}"
            ))
            .bind(edge)
            .bind(reason)
            .fetch_optional(&self.pool)
            .await
            .map_err(store)?
            .map(Row::into_inner)
            .ok_or_else(|| GraphError::NotFound(format!("relation {edge}")))
        })
    }

    fn edge_owner(&self, edge: Uuid) -> BoxFuture<'_, Result<Option<Uuid>, GraphError>> {
        Box::pin(async move {
            let owner: Option<Option<Uuid>> = sqlx::query_scalar(
                "SELECT n.user_id FROM graph_edges e JOIN graph_nodes n ON n.id = e.from_node WHERE e.id = $1",
            )
            .bind(edge)
            .fetch_optional(&self.pool)
            .await
            .map_err(store)?;
            owner.ok_or_else(|| GraphError::NotFound(format!("relation {edge}")))
        })
    }
}
