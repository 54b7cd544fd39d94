//! [`BlobStore`]: puts by streaming, reads, deletes; local disk or an S3-compatible bucket.

use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use daarion_config::{BlobsConfig, read_secret_file};
use futures::{Stream, StreamExt, TryStreamExt};
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::{ObjectStore, ObjectStoreExt, WriteMultipart};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::BlobError;
use crate::key::{Sha256Hex, object_path};

/// How much of a temporary file one upload part carries to a bucket.
const PART: usize = 8 * 1024 * 1024;

/// The content-addressed store. Cheap to clone.
#[derive(Clone)]
pub struct BlobStore {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for BlobStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobStore")
            .field("store", &self.inner.store.to_string())
            .field("tmp", &self.inner.tmp)
            .finish()
    }
}

struct Inner {
    store: Arc<dyn ObjectStore>,
    /// The local root when blobs are files on this box (rename into place, serve the file).
    root: Option<PathBuf>,
    /// Temporary files while a put streams; on the same filesystem as `root` for the rename.
    tmp: PathBuf,
}

/// A stored blob: its key, its size, whether this put added it, and a local file with its
/// content (the blob itself on the local disk; a temporary copy, removed when this is dropped,
/// when the blobs are in a bucket), for the caller to inspect without downloading it again.
#[derive(Debug)]
pub struct Stored {
    pub sha256: Sha256Hex,
    pub bytes: u64,
    /// False when the store already had this content.
    pub created: bool,
    local: LocalCopy,
}

impl Stored {
    pub fn path(&self) -> &FsPath {
        &self.local.path
    }
}

#[derive(Debug)]
struct LocalCopy {
    path: PathBuf,
    temporary: bool,
}

impl LocalCopy {
    fn temporary(path: PathBuf) -> LocalCopy {
        LocalCopy {
            path,
            temporary: true,
        }
    }

    /// The file is where it belongs now: no longer ours to remove.
    fn keep(mut self) -> PathBuf {
        self.temporary = false;
        std::mem::take(&mut self.path)
    }
}

impl Drop for LocalCopy {
    fn drop(&mut self) {
        if self.temporary {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

fn store_error(e: object_store::Error) -> BlobError {
    BlobError::Store(e.to_string())
}

impl BlobStore {
    /// From `[ingest.blobs]`; `data_dir` is `general.data_dir` (the default root is its
    /// `blobs`).
    pub fn from_config(config: &BlobsConfig, data_dir: &FsPath) -> Result<BlobStore, BlobError> {
        let root = if config.dir.as_os_str().is_empty() {
            data_dir.join("blobs")
        } else {
            config.dir.clone()
        };
        if !config.is_s3() {
            return BlobStore::local(&root);
        }
        let mut builder = if config.s3_access_key_file.as_os_str().is_empty() {
            AmazonS3Builder::from_env()
        } else {
            let read = |path: &FsPath| {
                read_secret_file(path)
                    .map_err(|e| BlobError::Store(format!("{}: {e}", path.display())))
                    .map(Option::unwrap_or_default)
            };
            AmazonS3Builder::new()
                .with_access_key_id(read(&config.s3_access_key_file)?)
                .with_secret_access_key(read(&config.s3_secret_key_file)?)
        };
        builder = builder
            .with_bucket_name(&config.s3_bucket)
            .with_region(&config.s3_region);
        if !config.s3_endpoint.is_empty() {
            builder = builder
                .with_endpoint(&config.s3_endpoint)
                .with_allow_http(config.s3_endpoint.starts_with("http://"));
        }
        let store = builder.build().map_err(store_error)?;
        BlobStore::new(Arc::new(store), None, root.join("tmp"))
    }

    /// Files under `root` (`sha256/…` and `tmp/`).
    pub fn local(root: &FsPath) -> Result<BlobStore, BlobError> {
        std::fs::create_dir_all(root)?;
        let store = LocalFileSystem::new_with_prefix(root).map_err(store_error)?;
        BlobStore::new(Arc::new(store), Some(root.to_owned()), root.join("tmp"))
    }

    /// Any object store (a bucket, or one a test builds); temporary files go to `tmp`.
    pub fn new(
        store: Arc<dyn ObjectStore>,
        root: Option<PathBuf>,
        tmp: PathBuf,
    ) -> Result<BlobStore, BlobError> {
        std::fs::create_dir_all(&tmp)?;
        Ok(BlobStore {
            inner: Arc::new(Inner { store, root, tmp }),
        })
    }

    /// Streams `body` in, refusing it at `limit + 1` bytes (nothing is kept then).
    pub async fn put_stream<S, E>(&self, body: S, limit: u64) -> Result<Stored, BlobError>
    where
        S: Stream<Item = Result<Bytes, E>>,
        E: std::fmt::Display,
    {
        let temp = LocalCopy::temporary(
            self.inner
                .tmp
                .join(format!("{}.part", uuid::Uuid::new_v4().simple())),
        );
        let mut file = tokio::fs::File::create(&temp.path).await?;
        let mut hasher = Sha256::new();
        let mut bytes: u64 = 0;
        let mut body = std::pin::pin!(body);
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| BlobError::Body(e.to_string()))?;
            bytes += chunk.len() as u64;
            if bytes > limit {
                return Err(BlobError::TooLarge { limit });
            }
            hasher.update(&chunk);
            file.write_all(&chunk).await?;
        }
        file.flush().await?;
        file.sync_all().await?;
        drop(file);
        let sha256 = Sha256Hex::from_digest(&hasher.finalize());
        let location = object_path(&sha256);
        match &self.inner.root {
            Some(root) => {
                let path = root.join(location.as_ref());
                let created = !tokio::fs::try_exists(&path).await?;
                if created {
                    let dir = path.parent().expect("a blob path has a directory");
                    tokio::fs::create_dir_all(dir).await?;
                    tokio::fs::rename(&temp.path, &path).await?;
                    temp.keep();
                    // The rename is durable only once its directory is.
                    tokio::fs::File::open(dir).await?.sync_all().await?;
                }
                Ok(Stored {
                    sha256,
                    bytes,
                    created,
                    local: LocalCopy {
                        path,
                        temporary: false,
                    },
                })
            }
            None => {
                let created = !self.exists(&sha256).await?;
                if created {
                    self.upload(&temp.path, &location).await?;
                }
                Ok(Stored {
                    sha256,
                    bytes,
                    created,
                    local: temp,
                })
            }
        }
    }

    /// A file to a bucket in parts, never all of it in memory.
    async fn upload(&self, from: &FsPath, to: &object_store::path::Path) -> Result<(), BlobError> {
        let upload = self
            .inner
            .store
            .put_multipart(to)
            .await
            .map_err(store_error)?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, PART);
        let mut file = tokio::fs::File::open(from).await?;
        let mut buffer = vec![0u8; 1024 * 1024];
        loop {
            let n = match file.read(&mut buffer).await {
                Ok(n) => n,
                Err(e) => {
                    let _ = writer.abort().await;
                    return Err(e.into());
                }
            };
            if n == 0 {
                break;
            }
            // Backpressure: at most a few parts in flight.
            writer.wait_for_capacity(4).await.map_err(store_error)?;
            writer.write(&buffer[..n]);
        }
        writer.finish().await.map_err(store_error)?;
        Ok(())
    }

    pub async fn exists(&self, sha: &Sha256Hex) -> Result<bool, BlobError> {
        match self.inner.store.head(&object_path(sha)).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(store_error(e)),
        }
    }

    /// The blob's file on this box, when blobs are local files.
    pub fn path(&self, sha: &Sha256Hex) -> Option<PathBuf> {
        self.inner
            .root
            .as_ref()
            .map(|root| root.join(object_path(sha).as_ref()))
    }

    /// The content as a stream of chunks.
    pub async fn open(
        &self,
        sha: &Sha256Hex,
    ) -> Result<impl Stream<Item = Result<Bytes, BlobError>> + Send + 'static, BlobError> {
        match self.inner.store.get(&object_path(sha)).await {
            Ok(got) => Ok(got.into_stream().map_err(store_error)),
            Err(object_store::Error::NotFound { .. }) => Err(BlobError::NotFound(sha.to_string())),
            Err(e) => Err(store_error(e)),
        }
    }

    /// Copies the content to `path` (a parser without the store's disk).
    pub async fn get_to_file(&self, sha: &Sha256Hex, path: &FsPath) -> Result<u64, BlobError> {
        let mut stream = std::pin::pin!(self.open(sha).await?);
        let mut file = tokio::fs::File::create(path).await?;
        let mut bytes = 0u64;
        while let Some(chunk) = stream.try_next().await? {
            bytes += chunk.len() as u64;
            file.write_all(&chunk).await?;
        }
        file.flush().await?;
        file.sync_all().await?;
        Ok(bytes)
    }

    /// Removes the blob; one already gone is no error.
    pub async fn delete(&self, sha: &Sha256Hex) -> Result<(), BlobError> {
        match self.inner.store.delete(&object_path(sha)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(store_error(e)),
        }
    }
}
