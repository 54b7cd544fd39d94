//! Vectors on the Qdrant server `DAARION_TEST_QDRANT_URL` names (gRPC; `tests/setup.sh` starts
//! one), under a collection prefix of one memory service's own so that parallel tests never
//! share a collection. Under `CI=true` a missing or unreachable server fails the test; outside
//! CI the test falls back to the embedded engine and the skip is recorded.

#[path = "skip.rs"]
mod skip;

use std::time::Duration;

use daarion_vectors::ServerStore;

pub struct Vectors {
    /// `None`: no server here, the embedded engine instead.
    server: Option<(String, ServerStore)>,
    prefix: String,
}

impl Vectors {
    pub async fn new() -> Vectors {
        let prefix = format!("test_{}_", uuid::Uuid::new_v4().simple());
        let needs = "tests/setup.sh starts one, tests/run.sh sets DAARION_TEST_QDRANT_URL";
        let what = "the memory service on a Qdrant server";
        let server = match std::env::var("DAARION_TEST_QDRANT_URL") {
            Err(_) => {
                skip::skipped(what, "DAARION_TEST_QDRANT_URL is not set", needs);
                None
            }
            Ok(url) => {
                match ServerStore::connect(&url, None, &prefix, Duration::from_secs(10)).await {
                    Ok(store) => Some((url, store)),
                    Err(e) => {
                        eprintln!("DAARION_TEST_QDRANT_URL={url}: {e}");
                        let why = format!("no Qdrant server answers at {url}");
                        skip::skipped(what, &why, needs);
                        None
                    }
                }
            }
        };
        Vectors { server, prefix }
    }

    /// Points the memory service at the server, with this test's collection prefix.
    pub fn configure(&self, config: &mut daarion_config::Config) {
        if let Some((url, _)) = &self.server {
            config.memory.qdrant.url = url.clone();
            config.memory.qdrant.collection_prefix = self.prefix.clone();
        }
    }

    /// The server holding this test's collections, when there is one.
    pub fn server(&self) -> Option<&ServerStore> {
        self.server.as_ref().map(|(_, store)| store)
    }

    /// Drops this test's collections from the server.
    pub async fn clean(&self) {
        if let Some((url, store)) = &self.server {
            store
                .drop_collections()
                .await
                .unwrap_or_else(|e| panic!("dropping {}* on {url}: {e}", self.prefix));
        }
    }
}
