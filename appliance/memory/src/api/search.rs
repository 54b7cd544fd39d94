//! Hybrid search over a user's messages, current facts, document chunks and knowledge graph:
//! full-text (PostgreSQL), by meaning (embeddings in the vector store) and the relations of the
//! entities the query names, fused by reciprocal rank; each hit says how it matched and why.

use axum::Json;
use axum::extract::{Query, State};
use daarion_memory_client::search::{Citation, Hit, SearchQuery};
use uuid::Uuid;

use super::auth::Caller;
use super::error::ApiError;
#[allow(unused_imports)]
use super::openapi::ErrorEnvelope;
use crate::App;
use crate::rows::Row;

/// Reciprocal-rank fusion's constant: damps the weight of the very first ranks.
const RRF_K: f32 = 60.0;

/// Merges ranked lists (each named by how it matched) by reciprocal rank: a hit found more
/// than one way rises above one found once.
pub fn fuse(lists: Vec<(Vec<Hit>, &'static str)>, limit: usize) -> Vec<Hit> {
    let mut merged: Vec<Hit> = Vec::new();
    for (list, how) in lists {
        for (rank, hit) in list.into_iter().enumerate() {
            let add = 1.0 / (RRF_K + rank as f32 + 1.0);
            match merged
                .iter_mut()
                .find(|m| m.id == hit.id && m.kind == hit.kind)
            {
                Some(seen) => {
                    seen.score += add;
                    seen.matched_by.push(how.to_owned());
                    seen.similarity = seen.similarity.or(hit.similarity);
                }
                None => merged.push(Hit {
                    score: add,
                    matched_by: vec![how.to_owned()],
                    ..hit
                }),
            }
        }
    }
    merged.sort_by(|a, b| b.score.total_cmp(&a.score));
    merged.truncate(limit);
    merged
}

/// Hits by meaning: the query's embedding against the user's vectors, hydrated from the rows
/// (facts only while current). Empty, with a warning, when embeddings are unavailable: search
/// still answers with its full-text half.
async fn by_meaning(app: &App, user_id: Uuid, q: &str, limit: usize) -> Vec<Hit> {
    let Some(embedder) = &app.embedder else {
        return Vec::new();
    };
    let vector = match embedder.embed(&[q.to_owned()]).await {
        Ok(mut v) => v.remove(0),
        Err(e) => {
            tracing::warn!(error = %e, "search: no query embedding; full-text only");
            return Vec::new();
        }
    };
    // Conversation memory and document chunks live in two collections; both are asked and
    // their hits, cosine similarities on one scale, merged.
    let mut found = Vec::new();
    for collection in [
        daarion_vectors::Collection::Messages,
        daarion_vectors::Collection::Chunks,
    ] {
        let query = daarion_vectors::Query {
            vector: vector.clone(),
            user_id,
            agent_id: None,
            kinds: Vec::new(),
            limit,
        };
        match app.vectors.search(collection, query).await {
            Ok(hits) => found.extend(hits),
            Err(e) => {
                tracing::warn!(error = %e, collection = collection.name(), "search: vector store; full-text only there");
            }
        }
    }
    found.sort_by(|a, b| b.score.total_cmp(&a.score));
    found.truncate(limit);
    let ids: Vec<Uuid> = found.iter().map(|h| h.id).collect();
    let rows: Vec<(String, Uuid, String)> = match sqlx::query_as(
        "SELECT 'fact', id, content FROM facts WHERE id = ANY($1) AND user_id = $2 AND valid_to IS NULL AND NOT forgotten \
         UNION ALL SELECT 'message', id, content FROM messages WHERE id = ANY($1) AND user_id = $2 \
         UNION ALL SELECT 'chunk', c.id, c.content FROM chunks c JOIN documents d ON d.id = c.document_id \
             WHERE c.id = ANY($1) AND c.user_id = $2 AND d.ready",
    )
    .bind(&ids)
    .bind(user_id)
    .fetch_all(&app.pool)
    .await
    {
        Ok(rows) => rows,
        Err(e) => {
            tracing::warn!(error = %e, "search: hydrating vector hits");
            return Vec::new();
        }
    };
    found
        .into_iter()
        .filter_map(|hit| {
            let (kind, id, content) = rows.iter().find(|(_, id, _)| *id == hit.id)?.clone();
            let why: String = content.chars().take(80).collect();
            Some(Hit {
                kind,
                id,
                content,
                score: hit.score,
                why,
                matched_by: Vec::new(),
                similarity: Some(hit.score),
                citation: None,
            })
        })
        .collect()
}

/// The query's words that may name an entity: three letters or more, at most six of them.
pub fn entity_words(q: &str) -> Vec<String> {
    let mut words: Vec<String> = Vec::new();
    for word in q.split(|c: char| !c.is_alphanumeric()) {
        let word = word.to_lowercase();
        if word.chars().count() >= 3 && !words.contains(&word) {
            words.push(word);
        }
        if words.len() == 6 {
            break;
        }
    }
    words
}

/// Hits from the knowledge graph: the open relations one step from an entity of this user (or
/// the shared graph) that the query names, as "from relation to" sentences.
async fn by_graph(app: &App, user_id: Uuid, q: &str, limit: usize) -> Vec<Hit> {
    let mut hits: Vec<Hit> = Vec::new();
    let mut seen_nodes: Vec<Uuid> = Vec::new();
    for word in entity_words(q) {
        let nodes = match app.graph.find(Some(user_id), &word, 3).await {
            Ok(nodes) => nodes,
            Err(e) => {
                tracing::warn!(error = %e, "search: graph; words and meaning only");
                return hits;
            }
        };
        for node in nodes
            .into_iter()
            // A word names the entity when it is the entity's name or one of its words.
            .filter(|n| {
                crate::graph::key_of(&n.name)
                    .split_whitespace()
                    .any(|w| w == word)
            })
        {
            if seen_nodes.contains(&node.id) {
                continue;
            }
            seen_nodes.push(node.id);
            let Ok(around) = app.graph.neighbourhood(node.id, 1, 50).await else {
                continue;
            };
            let name = |id: Uuid| {
                around
                    .nodes
                    .iter()
                    .find(|n| n.id == id)
                    .map_or_else(String::new, |n| n.name.clone())
            };
            for edge in around.edges.iter().filter(|e| e.ended_at.is_none()) {
                if hits.iter().any(|h| h.id == edge.id) {
                    continue;
                }
                let content = format!(
                    "{} {} {}",
                    name(edge.from_node),
                    edge.relation.replace('_', " "),
                    name(edge.to_node)
                );
                hits.push(Hit {
                    kind: "relation".into(),
                    id: edge.id,
                    content,
                    score: 0.0,
                    why: format!("the graph around “{}”", node.name),
                    matched_by: Vec::new(),
                    similarity: None,
                    citation: None,
                });
            }
        }
        if hits.len() >= limit {
            break;
        }
    }
    hits.truncate(limit);
    hits
}

#[utoipa::path(get, path = "/v1/search", tag = "search", params(SearchQuery), responses((status = 200, body = [Hit]), (status = 422, body = ErrorEnvelope), (status = 401, description = "no or wrong credential", body = ErrorEnvelope), (status = 403, description = "missing scope or another user", body = ErrorEnvelope)))]
pub async fn search(
    State(app): State<App>,
    axum::Extension(caller): axum::Extension<Caller>,
    Query(query): Query<SearchQuery>,
) -> Result<Json<Vec<Hit>>, ApiError> {
    caller.read(query.user_id)?;
    let q = query.q.trim();
    if q.is_empty() || q.len() > 1000 {
        return Err(ApiError::invalid("q", "1 to 1000 characters"));
    }
    let limit = query.limit.clamp(1, 100);
    let (by_words, by_meaning, by_graph) = tokio::join!(
        sqlx::query_as::<_, Row<Hit>>(
            "WITH query AS (SELECT websearch_to_tsquery('simple', $2) AS tsq) \
             SELECT kind, id, content, score, why FROM ( \
               SELECT 'fact' AS kind, f.id, f.content, (ts_rank(f.search, query.tsq) * 2)::float4 AS score, \
                      ts_headline('simple', f.content, query.tsq, 'MaxFragments=1,MaxWords=12,MinWords=3') AS why \
               FROM facts f, query WHERE f.user_id = $1 AND f.valid_to IS NULL AND NOT f.forgotten AND f.search @@ query.tsq \
               UNION ALL \
               SELECT 'message', m.id, m.content, ts_rank(m.search, query.tsq)::float4, \
                      ts_headline('simple', m.content, query.tsq, 'MaxFragments=1,MaxWords=12,MinWords=3') \
               FROM messages m, query WHERE m.user_id = $1 AND m.search @@ query.tsq \
               UNION ALL \
               SELECT 'chunk', c.id, c.content, ts_rank(c.search, query.tsq)::float4, \
                      ts_headline('simple', c.content, query.tsq, 'MaxFragments=1,MaxWords=12,MinWords=3') \
               FROM chunks c JOIN documents d ON d.id = c.document_id, query \
               WHERE c.user_id = $1 AND d.ready AND c.search @@ query.tsq \
             ) hits ORDER BY score DESC LIMIT $3",
        )
        .bind(query.user_id)
        .bind(q)
        .bind(limit * 2)
        .fetch_all(&app.pool),
        by_meaning(&app, query.user_id, q, (limit * 2) as usize),
        by_graph(&app, query.user_id, q, limit as usize),
    );
    let mut hits = fuse(
        vec![
            (Row::all(by_words?), "words"),
            (by_meaning, "meaning"),
            (by_graph, "graph"),
        ],
        limit as usize,
    );
    cite(&app, &mut hits).await?;
    Ok(Json(hits))
}

/// Each chunk hit's citation: its document (the file's name, for an attachment) and where in
/// it the text was.
async fn cite(app: &App, hits: &mut [Hit]) -> Result<(), ApiError> {
    let ids: Vec<Uuid> = hits
        .iter()
        .filter(|h| h.kind == "chunk")
        .map(|h| h.id)
        .collect();
    if ids.is_empty() {
        return Ok(());
    }
    type Source = (
        Uuid,
        Uuid,
        String,
        Option<Uuid>,
        Option<serde_json::Value>,
        Option<Vec<String>>,
    );
    let sources: Vec<Source> = sqlx::query_as(
        "SELECT c.id, d.id, coalesce(a.name, d.title), d.attachment_id, c.locator, c.headings \
         FROM chunks c JOIN documents d ON d.id = c.document_id \
         LEFT JOIN attachments a ON a.id = d.attachment_id WHERE c.id = ANY($1)",
    )
    .bind(&ids)
    .fetch_all(&app.pool)
    .await?;
    for hit in hits.iter_mut().filter(|h| h.kind == "chunk") {
        if let Some((_, document_id, title, attachment_id, locator, headings)) =
            sources.iter().find(|s| s.0 == hit.id).cloned()
        {
            hit.citation = Some(Citation {
                document_id,
                title,
                attachment_id,
                // Written by this service from the contract's type; unreadable means absent.
                locator: locator.and_then(|l| serde_json::from_value(l).ok()),
                headings: headings.unwrap_or_default(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(id: u128, kind: &str, similarity: Option<f32>) -> Hit {
        Hit {
            kind: kind.into(),
            id: Uuid::from_u128(id),
            content: String::new(),
            score: 0.0,
            why: String::new(),
            matched_by: Vec::new(),
            similarity,
            citation: None,
        }
    }

    #[test]
    fn found_both_ways_ranks_first_and_says_so() {
        let words = vec![hit(1, "message", None), hit(2, "fact", None)];
        let meaning = vec![hit(3, "fact", Some(0.9)), hit(2, "fact", Some(0.7))];
        let fused = fuse(vec![(words, "words"), (meaning, "meaning")], 10);
        assert_eq!(fused[0].id, Uuid::from_u128(2));
        assert_eq!(fused[0].matched_by, ["words", "meaning"]);
        assert_eq!(fused[0].similarity, Some(0.7));
        assert_eq!(fused.len(), 3);
        // Rank 1 by words and rank 1 by meaning tie; both outrank rank 2 found once.
        assert!(fused[1].score > 0.0 && fused[1].matched_by.len() == 1);
    }

    #[test]
    fn the_limit_holds_and_the_same_id_of_another_kind_is_another_hit() {
        let words = vec![hit(1, "message", None)];
        let meaning = vec![hit(1, "fact", Some(0.5))];
        assert_eq!(
            fuse(
                vec![(words.clone(), "words"), (meaning.clone(), "meaning")],
                10
            )
            .len(),
            2
        );
        assert_eq!(
            fuse(vec![(words, "words"), (meaning, "meaning")], 1).len(),
            1
        );
    }

    #[test]
    fn entity_words_are_long_distinct_and_few() {
        assert_eq!(
            entity_words("Where does Olena live? olena, in Kyiv!"),
            ["where", "does", "olena", "live", "kyiv"]
        );
        assert_eq!(entity_words("a b cd"), Vec::<String>::new());
        assert_eq!(entity_words("one two three four five six seven").len(), 6);
    }
}
