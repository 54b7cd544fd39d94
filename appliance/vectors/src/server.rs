//! A Qdrant server over gRPC (`qdrant-client`), when `memory.qdrant.url` is set: the same
//! collections (named `<prefix><collection>`), the same payload (user, agent, chat, kind) with
//! keyword indexes on the fields searches filter on, and the same filters as the embedded
//! engine. Every write waits until the server has applied it (`wait = true`), so a bus message
//! is acked only after its vector is durable there too.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use qdrant_client::Qdrant;
use qdrant_client::qdrant::point_id::PointIdOptions;
use qdrant_client::qdrant::vectors_config::Config as VectorsConfig;
use qdrant_client::qdrant::{
    Condition, CountPointsBuilder, CreateCollectionBuilder, CreateFieldIndexCollectionBuilder,
    DeletePointsBuilder, Distance, FieldType, Filter, PointId, PointStruct, PointsIdsList,
    SearchPointsBuilder, UpsertPointsBuilder, VectorParamsBuilder,
};
use tokio::sync::Mutex;
use uuid::Uuid;

use crate::{BoxFuture, Collection, Hit, INDEXED, Point, Query, VectorError, VectorStore, payload};

/// A Qdrant server. Cheap to clone.
#[derive(Clone)]
pub struct ServerStore {
    client: Arc<Qdrant>,
    prefix: String,
    /// Each collection's dimension once known (`None`: not created yet). Behind an async
    /// mutex so that two first writers do not both create the collection.
    dims: Arc<Mutex<HashMap<Collection, Option<usize>>>>,
}

fn engine(e: impl std::fmt::Display) -> VectorError {
    VectorError::Engine(e.to_string())
}

impl ServerStore {
    /// Connects and checks the server answers (its health check), so a wrong URL or key is
    /// reported at start, not on the first message.
    pub async fn connect(
        url: &str,
        api_key: Option<String>,
        prefix: &str,
        timeout: Duration,
    ) -> Result<ServerStore, VectorError> {
        let open = |message: String| VectorError::Open {
            path: url.to_owned(),
            message,
        };
        let client = Qdrant::from_url(url)
            .api_key(api_key)
            .timeout(timeout)
            .connect_timeout(timeout)
            .skip_compatibility_check()
            .build()
            .map_err(|e| open(e.to_string()))?;
        client
            .health_check()
            .await
            .map_err(|e| open(format!("the server does not answer: {e}")))?;
        tracing::info!(url, prefix, "vectors on a Qdrant server");
        Ok(ServerStore {
            client: Arc::new(client),
            prefix: prefix.to_owned(),
            dims: Arc::new(Mutex::new(HashMap::new())),
        })
    }

    /// Deletes this prefix's collections (a test's, or everything before a re-index).
    pub async fn drop_collections(&self) -> Result<(), VectorError> {
        let mut dims = self.dims.lock().await;
        for collection in Collection::ALL {
            let name = self.name(collection);
            if self
                .client
                .collection_exists(name.as_str())
                .await
                .map_err(engine)?
            {
                self.client
                    .delete_collection(name.as_str())
                    .await
                    .map_err(engine)?;
            }
        }
        dims.clear();
        Ok(())
    }

    fn name(&self, collection: Collection) -> String {
        format!("{}{}", self.prefix, collection.name())
    }

    /// The collection's dimension, asking the server the first time.
    async fn dim(&self, collection: Collection) -> Result<Option<usize>, VectorError> {
        let mut dims = self.dims.lock().await;
        if let Some(known) = dims.get(&collection) {
            return Ok(*known);
        }
        let dim = self.server_dim(collection).await?;
        // Only a collection that exists is remembered: another writer may create it later.
        if dim.is_some() {
            dims.insert(collection, dim);
        }
        Ok(dim)
    }

    async fn server_dim(&self, collection: Collection) -> Result<Option<usize>, VectorError> {
        let name = self.name(collection);
        if !self
            .client
            .collection_exists(name.as_str())
            .await
            .map_err(engine)?
        {
            return Ok(None);
        }
        let info = self
            .client
            .collection_info(name.as_str())
            .await
            .map_err(engine)?;
        let size = info
            .result
            .and_then(|i| i.config)
            .and_then(|c| c.params)
            .and_then(|p| p.vectors_config)
            .and_then(|v| v.config)
            .and_then(|c| match c {
                VectorsConfig::Params(p) => Some(p.size as usize),
                VectorsConfig::ParamsMap(_) => None,
            })
            .ok_or_else(|| {
                engine(format!(
                    "collection `{name}` has no single unnamed vector: not one of this appliance's"
                ))
            })?;
        Ok(Some(size))
    }

    /// Creates the collection with its payload indexes when it is missing; returns its dimension.
    async fn ensure(&self, collection: Collection, dim: usize) -> Result<usize, VectorError> {
        let mut dims = self.dims.lock().await;
        if let Some(Some(known)) = dims.get(&collection) {
            return Ok(*known);
        }
        let known = match self.server_dim(collection).await? {
            Some(known) => known,
            None => {
                let name = self.name(collection);
                self.client
                    .create_collection(
                        CreateCollectionBuilder::new(name.as_str())
                            .vectors_config(VectorParamsBuilder::new(dim as u64, Distance::Cosine)),
                    )
                    .await
                    .map_err(engine)?;
                for field in INDEXED {
                    self.client
                        .create_field_index(
                            CreateFieldIndexCollectionBuilder::new(
                                name.as_str(),
                                field,
                                FieldType::Keyword,
                            )
                            .wait(true),
                        )
                        .await
                        .map_err(engine)?;
                }
                tracing::info!(collection = %name, dim, "vector collection created");
                dim
            }
        };
        dims.insert(collection, Some(known));
        Ok(known)
    }
}

/// The filter of a search: this user's points; of these kinds when given; an agent's own points
/// and those of no agent when an agent is given.
pub(crate) fn filter(query: &Query) -> Filter {
    let mut must = vec![Condition::matches("user_id", query.user_id.to_string())];
    if !query.kinds.is_empty() {
        must.push(Condition::matches("kind", query.kinds.clone()));
    }
    let should = match &query.agent_id {
        Some(agent) => vec![
            Condition::matches("agent_id", agent.clone()),
            Condition::is_null("agent_id"),
        ],
        None => Vec::new(),
    };
    Filter {
        must,
        should,
        ..Default::default()
    }
}

fn user_filter(user_id: Option<Uuid>) -> Option<Filter> {
    user_id.map(|user| Filter::must([Condition::matches("user_id", user.to_string())]))
}

fn uuid_of(id: Option<PointId>) -> Option<Uuid> {
    match id?.point_id_options? {
        PointIdOptions::Uuid(raw) => Uuid::parse_str(&raw).ok(),
        PointIdOptions::Num(_) => None,
    }
}

impl VectorStore for ServerStore {
    fn upsert(
        &self,
        collection: Collection,
        points: Vec<Point>,
    ) -> BoxFuture<'_, Result<(), VectorError>> {
        Box::pin(async move {
            let Some(dim) = points.first().map(|p| p.vector.len()) else {
                return Ok(());
            };
            let expected = self.ensure(collection, dim).await?;
            if let Some(bad) = points.iter().find(|p| p.vector.len() != expected) {
                return Err(VectorError::Dimension {
                    collection: collection.name(),
                    expected,
                    given: bad.vector.len(),
                });
            }
            let points: Vec<PointStruct> = points
                .iter()
                .map(|p| PointStruct::new(p.id.to_string(), p.vector.clone(), payload(p)))
                .collect();
            self.client
                .upsert_points(UpsertPointsBuilder::new(self.name(collection), points).wait(true))
                .await
                .map_err(engine)?;
            Ok(())
        })
    }

    fn delete(
        &self,
        collection: Collection,
        ids: Vec<Uuid>,
    ) -> BoxFuture<'_, Result<(), VectorError>> {
        Box::pin(async move {
            if ids.is_empty() || self.dim(collection).await?.is_none() {
                return Ok(());
            }
            let ids: Vec<PointId> = ids.iter().map(|id| id.to_string().into()).collect();
            self.client
                .delete_points(
                    DeletePointsBuilder::new(self.name(collection))
                        .points(PointsIdsList { ids })
                        .wait(true),
                )
                .await
                .map_err(engine)?;
            Ok(())
        })
    }

    fn search(
        &self,
        collection: Collection,
        query: Query,
    ) -> BoxFuture<'_, Result<Vec<Hit>, VectorError>> {
        Box::pin(async move {
            let Some(dim) = self.dim(collection).await? else {
                return Ok(Vec::new());
            };
            if query.vector.len() != dim {
                return Err(VectorError::Dimension {
                    collection: collection.name(),
                    expected: dim,
                    given: query.vector.len(),
                });
            }
            let found = self
                .client
                .search_points(
                    SearchPointsBuilder::new(
                        self.name(collection),
                        query.vector.clone(),
                        query.limit as u64,
                    )
                    .filter(filter(&query))
                    .with_payload(true),
                )
                .await
                .map_err(engine)?;
            Ok(found
                .result
                .into_iter()
                .filter_map(|p| {
                    let id = uuid_of(p.id)?;
                    let kind = p
                        .payload
                        .get("kind")
                        .and_then(|k| k.as_str())
                        .map(|k| k.to_owned())
                        .unwrap_or_default();
                    Some(Hit {
                        id,
                        kind,
                        score: p.score,
                    })
                })
                .collect())
        })
    }

    fn count(
        &self,
        collection: Collection,
        user_id: Option<Uuid>,
    ) -> BoxFuture<'_, Result<u64, VectorError>> {
        Box::pin(async move {
            if self.dim(collection).await?.is_none() {
                return Ok(0);
            }
            let mut request = CountPointsBuilder::new(self.name(collection)).exact(true);
            if let Some(filter) = user_filter(user_id) {
                request = request.filter(filter);
            }
            let counted = self.client.count(request).await.map_err(engine)?;
            Ok(counted.result.map(|r| r.count).unwrap_or(0))
        })
    }
}

#[cfg(test)]
mod tests {
    use qdrant_client::qdrant::condition::ConditionOneOf;
    use qdrant_client::qdrant::r#match::MatchValue;

    use super::*;
    use crate::{Scope, payload};

    fn keyword_of(condition: &Condition) -> (String, String) {
        match condition.condition_one_of.as_ref().unwrap() {
            ConditionOneOf::Field(field) => {
                let value = match field
                    .r#match
                    .as_ref()
                    .unwrap()
                    .match_value
                    .as_ref()
                    .unwrap()
                {
                    MatchValue::Keyword(k) => k.clone(),
                    MatchValue::Keywords(k) => k.strings.join("|"),
                    other => panic!("unexpected match {other:?}"),
                };
                (field.key.clone(), value)
            }
            ConditionOneOf::IsNull(null) => (null.key.clone(), "<null>".into()),
            other => panic!("unexpected condition {other:?}"),
        }
    }

    #[test]
    fn a_search_is_confined_to_its_user_kinds_and_agent() {
        let user = Uuid::new_v4();
        let mut query = Query {
            vector: vec![1.0],
            user_id: user,
            agent_id: None,
            kinds: Vec::new(),
            limit: 3,
        };
        let plain = filter(&query);
        assert_eq!(
            plain.must.iter().map(keyword_of).collect::<Vec<_>>(),
            [("user_id".to_owned(), user.to_string())]
        );
        assert!(plain.should.is_empty(), "no agent: every agent's points");

        query.kinds = vec!["fact".into(), "message".into()];
        query.agent_id = Some("helper".into());
        let narrow = filter(&query);
        assert_eq!(
            narrow.must.iter().map(keyword_of).collect::<Vec<_>>(),
            [
                ("user_id".to_owned(), user.to_string()),
                ("kind".to_owned(), "fact|message".to_owned())
            ]
        );
        assert_eq!(
            narrow.should.iter().map(keyword_of).collect::<Vec<_>>(),
            [
                ("agent_id".to_owned(), "helper".to_owned()),
                ("agent_id".to_owned(), "<null>".to_owned())
            ],
            "the agent's own points or those of no agent"
        );
    }

    #[test]
    fn points_carry_their_scope_and_ids_read_back() {
        let point = Point {
            id: Uuid::new_v4(),
            kind: "chunk".into(),
            scope: Scope {
                user_id: Uuid::new_v4(),
                agent_id: None,
                chat_id: Some("42".into()),
            },
            vector: vec![0.5, 0.5],
        };
        let payload = payload(&point);
        assert_eq!(payload["user_id"], point.scope.user_id.to_string());
        assert_eq!(payload["agent_id"], serde_json::Value::Null);
        assert_eq!(payload["chat_id"], "42");
        assert_eq!(payload["kind"], "chunk");
        let id: PointId = point.id.to_string().into();
        assert_eq!(uuid_of(Some(id)), Some(point.id));
        assert_eq!(uuid_of(Some(PointId::from(7u64))), None);
        assert_eq!(user_filter(None), None);
    }
}
