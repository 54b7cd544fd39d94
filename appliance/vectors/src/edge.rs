//! The embedded backend: one Qdrant Edge shard per collection under `dir/<collection>`.
//!
//! A shard is driven from one thread at a time (its `flush` asserts that no one else holds its
//! locks), so each sits behind a mutex and every call runs on the blocking pool. Each write is
//! flushed (WAL and segments) before it returns: the caller acks a bus message after it. After
//! every `OPTIMIZE_EVERY` written points the shard's optimizers run in the background (merging
//! small segments, building the HNSW index), off the request path.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use qdrant_edge::{
    Condition, CountRequest, CreateIndex, DEFAULT_VECTOR_NAME, Distance, EdgeConfigBuilder,
    EdgeShard, EdgeVectorParamsBuilder, FieldCondition, FieldIndexOperations, Filter, JsonPath,
    Match, NamedQuery, PayloadFieldSchema, PayloadSchemaType, PointId, PointInsertOperations,
    PointOperations, PointStruct, QueryEnum, QueryRequest, ScoringQuery, UpdateOperation,
    ValueVariants, WithPayloadInterface, WithVector,
};
use uuid::Uuid;

use crate::{BoxFuture, Collection, Hit, INDEXED, Point, Query, VectorError, VectorStore, payload};

const OPTIMIZE_EVERY: u64 = 2_000;

struct Slot {
    shard: EdgeShard,
    dim: usize,
}

struct Shard {
    path: PathBuf,
    collection: Collection,
    /// `None` until the first point tells the dimension (or an existing shard is opened).
    slot: Mutex<Option<Slot>>,
    written: AtomicU64,
    optimizing: AtomicBool,
}

/// Qdrant's embedded engine. Cheap to clone.
#[derive(Clone)]
pub struct EdgeStore {
    shards: Arc<HashMap<Collection, Arc<Shard>>>,
}

fn engine(e: impl std::fmt::Display) -> VectorError {
    VectorError::Engine(e.to_string())
}

fn path(field: &str) -> JsonPath {
    JsonPath::try_from(field).expect("a plain field name is a JSON path")
}

fn keyword(field: &str, value: &str) -> Condition {
    Condition::Field(FieldCondition::new_match(
        path(field),
        Match::new_value(ValueVariants::String(value.to_owned())),
    ))
}

impl EdgeStore {
    /// Opens the shards under `dir`, creating the directory; shards that exist are loaded.
    pub fn open(dir: &Path) -> Result<EdgeStore, VectorError> {
        let open_err = |path: &Path, e: &dyn std::fmt::Display| VectorError::Open {
            path: path.display().to_string(),
            message: e.to_string(),
        };
        std::fs::create_dir_all(dir).map_err(|e| open_err(dir, &e))?;
        let mut shards = HashMap::new();
        for collection in Collection::ALL {
            let path = dir.join(collection.name());
            let slot = if path.join("edge_config.json").exists() || path.join("segments").exists() {
                let shard = EdgeShard::load(&path, None).map_err(|e| open_err(&path, &e))?;
                let dim = shard
                    .config()
                    .vectors
                    .get(DEFAULT_VECTOR_NAME)
                    .map(|v| v.size)
                    .ok_or_else(|| open_err(&path, &"the shard has no default vector"))?;
                tracing::info!(
                    collection = collection.name(),
                    dim,
                    points = shard.info().points_count,
                    "vector shard loaded"
                );
                Some(Slot { shard, dim })
            } else {
                None
            };
            shards.insert(
                collection,
                Arc::new(Shard {
                    path,
                    collection,
                    slot: Mutex::new(slot),
                    written: AtomicU64::new(0),
                    optimizing: AtomicBool::new(false),
                }),
            );
        }
        Ok(EdgeStore {
            shards: Arc::new(shards),
        })
    }

    /// Waits for background optimizations to finish (before the files are opened again, or
    /// at shutdown so none is cut short).
    pub async fn idle(&self) {
        while self
            .shards
            .values()
            .any(|s| s.optimizing.load(Ordering::Acquire))
        {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// Runs every shard's optimizers now, waiting for them (after a bulk load).
    pub async fn optimize(&self) -> Result<(), VectorError> {
        self.idle().await;
        for shard in self.shards.values().cloned() {
            blocking(move || {
                let slot = shard.slot.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(slot) = slot.as_ref() {
                    slot.shard.optimize().map_err(engine)?;
                    slot.shard.flush();
                }
                shard.written.store(0, Ordering::Relaxed);
                Ok(())
            })
            .await?;
        }
        Ok(())
    }

    fn shard(&self, collection: Collection) -> Arc<Shard> {
        self.shards[&collection].clone()
    }
}

impl Shard {
    fn create(&self, dim: usize) -> Result<Slot, VectorError> {
        std::fs::create_dir_all(&self.path).map_err(engine)?;
        let config = EdgeConfigBuilder::new()
            .on_disk_payload(false)
            .vector(
                DEFAULT_VECTOR_NAME,
                EdgeVectorParamsBuilder::new(dim, Distance::Cosine).build(),
            )
            .build();
        let shard = EdgeShard::new(&self.path, config).map_err(engine)?;
        for field in INDEXED {
            shard
                .update(UpdateOperation::FieldIndexOperation(
                    FieldIndexOperations::CreateIndex(CreateIndex {
                        field_name: path(field),
                        field_schema: Some(PayloadFieldSchema::FieldType(
                            PayloadSchemaType::Keyword,
                        )),
                    }),
                ))
                .map_err(engine)?;
        }
        tracing::info!(
            collection = self.collection.name(),
            dim,
            "vector shard created"
        );
        Ok(Slot { shard, dim })
    }

    fn upsert(&self, points: Vec<Point>) -> Result<(), VectorError> {
        let Some(dim) = points.first().map(|p| p.vector.len()) else {
            return Ok(());
        };
        let mut slot = self.slot.lock().unwrap_or_else(|e| e.into_inner());
        if slot.is_none() {
            *slot = Some(self.create(dim)?);
        }
        let slot = slot.as_ref().expect("created above");
        if let Some(bad) = points.iter().find(|p| p.vector.len() != slot.dim) {
            return Err(VectorError::Dimension {
                collection: self.collection.name(),
                expected: slot.dim,
                given: bad.vector.len(),
            });
        }
        let count = points.len() as u64;
        let persisted = points
            .into_iter()
            .map(|p| {
                let payload = serde_json::Value::Object(payload(&p));
                PointStruct::new(PointId::Uuid(p.id), p.vector, payload).into()
            })
            .collect();
        slot.shard
            .update(UpdateOperation::PointOperation(
                PointOperations::UpsertPoints(PointInsertOperations::PointsList(persisted)),
            ))
            .map_err(engine)?;
        slot.shard.flush();
        self.written.fetch_add(count, Ordering::Relaxed);
        Ok(())
    }

    fn delete(&self, ids: Vec<Uuid>) -> Result<(), VectorError> {
        let slot = self.slot.lock().unwrap_or_else(|e| e.into_inner());
        let Some(slot) = slot.as_ref() else {
            return Ok(());
        };
        slot.shard
            .update(UpdateOperation::PointOperation(
                PointOperations::DeletePoints {
                    ids: ids.into_iter().map(PointId::Uuid).collect(),
                },
            ))
            .map_err(engine)?;
        slot.shard.flush();
        Ok(())
    }

    fn search(&self, query: Query) -> Result<Vec<Hit>, VectorError> {
        let slot = self.slot.lock().unwrap_or_else(|e| e.into_inner());
        let Some(slot) = slot.as_ref() else {
            return Ok(Vec::new());
        };
        if query.vector.len() != slot.dim {
            return Err(VectorError::Dimension {
                collection: self.collection.name(),
                expected: slot.dim,
                given: query.vector.len(),
            });
        }
        let mut must = vec![keyword("user_id", &query.user_id.to_string())];
        if !query.kinds.is_empty() {
            must.push(Condition::Field(FieldCondition::new_match(
                path("kind"),
                Match::from(query.kinds.clone()),
            )));
        }
        // An agent sees its own points and those that belong to no agent.
        let should = query.agent_id.as_deref().map(|agent| {
            vec![
                keyword("agent_id", agent),
                Condition::IsNull(path("agent_id").into()),
            ]
        });
        let filter = Filter {
            should,
            min_should: None,
            must: Some(must),
            must_not: None,
        };
        let found = slot
            .shard
            .query(QueryRequest {
                prefetches: vec![],
                query: Some(ScoringQuery::Vector(QueryEnum::Nearest(NamedQuery {
                    query: query.vector.into(),
                    using: None,
                }))),
                filter: Some(filter),
                score_threshold: None,
                limit: query.limit,
                offset: 0,
                params: None,
                with_vector: WithVector::Bool(false),
                with_payload: WithPayloadInterface::Bool(true),
            })
            .map_err(engine)?;
        Ok(found
            .into_iter()
            .filter_map(|p| {
                let PointId::Uuid(id) = p.id else {
                    return None;
                };
                let kind = p
                    .payload
                    .as_ref()
                    .and_then(|payload| payload.0.get("kind"))
                    .and_then(|k| k.as_str())
                    .unwrap_or("")
                    .to_owned();
                Some(Hit {
                    id,
                    kind,
                    score: p.score,
                })
            })
            .collect())
    }

    fn count(&self, user_id: Option<Uuid>) -> Result<u64, VectorError> {
        let slot = self.slot.lock().unwrap_or_else(|e| e.into_inner());
        let Some(slot) = slot.as_ref() else {
            return Ok(0);
        };
        let filter = user_id.map(|user| Filter {
            should: None,
            min_should: None,
            must: Some(vec![keyword("user_id", &user.to_string())]),
            must_not: None,
        });
        slot.shard
            .count(CountRequest {
                filter,
                exact: true,
            })
            .map(|n| n as u64)
            .map_err(engine)
    }

    /// Runs the optimizers when enough has been written since the last run; never two at once.
    fn maybe_optimize(self: &Arc<Self>) {
        if self.written.load(Ordering::Relaxed) < OPTIMIZE_EVERY
            || self.optimizing.swap(true, Ordering::AcqRel)
        {
            return;
        }
        self.written.store(0, Ordering::Relaxed);
        let shard = self.clone();
        tokio::task::spawn_blocking(move || {
            let started = std::time::Instant::now();
            let slot = shard.slot.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(slot) = slot.as_ref() {
                match slot.shard.optimize() {
                    Ok(changed) => {
                        slot.shard.flush();
                        tracing::info!(
                            collection = shard.collection.name(),
                            changed,
                            ms = started.elapsed().as_millis() as u64,
                            "vector shard optimized"
                        );
                    }
                    Err(e) => {
                        tracing::warn!(collection = shard.collection.name(), error = %e, "vector shard optimization failed")
                    }
                }
            }
            shard.optimizing.store(false, Ordering::Release);
        });
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, VectorError> + Send + 'static,
) -> Result<T, VectorError> {
    tokio::task::spawn_blocking(f).await.map_err(engine)?
}

impl VectorStore for EdgeStore {
    fn upsert(
        &self,
        collection: Collection,
        points: Vec<Point>,
    ) -> BoxFuture<'_, Result<(), VectorError>> {
        let shard = self.shard(collection);
        Box::pin(async move {
            let writer = shard.clone();
            blocking(move || writer.upsert(points)).await?;
            shard.maybe_optimize();
            Ok(())
        })
    }

    fn delete(
        &self,
        collection: Collection,
        ids: Vec<Uuid>,
    ) -> BoxFuture<'_, Result<(), VectorError>> {
        let shard = self.shard(collection);
        Box::pin(blocking(move || shard.delete(ids)))
    }

    fn search(
        &self,
        collection: Collection,
        query: Query,
    ) -> BoxFuture<'_, Result<Vec<Hit>, VectorError>> {
        let shard = self.shard(collection);
        Box::pin(blocking(move || shard.search(query)))
    }

    fn count(
        &self,
        collection: Collection,
        user_id: Option<Uuid>,
    ) -> BoxFuture<'_, Result<u64, VectorError>> {
        let shard = self.shard(collection);
        Box::pin(blocking(move || shard.count(user_id)))
    }
}
