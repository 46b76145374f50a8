//! Where an archive's objects go: an S3 bucket (or any S3-compatible server)
//! or a local folder, behind one small interface with the errors a writer
//! branches on.
//!
//! Keys are built from [`PathPart`]s, each percent-encoded on its own, so no
//! topic, group or date text can add a `/` or climb out of the prefix.

use std::path::Path as FsPath;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::TryStreamExt as _;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::{Path, PathPart};
use object_store::{
    ClientOptions, ObjectStore, ObjectStoreExt as _, PutMode, PutOptions, PutPayload, RetryConfig,
};

use crate::config::ArchiveConfig;

/// What went wrong with a bucket operation.
#[derive(Debug, thiserror::Error)]
pub enum BucketError {
    /// A create-only write found the key taken: someone else wrote first.
    #[error("`{0}` already exists")]
    Exists(String),
    /// The bucket cannot be used as configured (bad URL, missing folder).
    #[error("{0}")]
    Unusable(String),
    /// The server or the filesystem failed; a later try may succeed.
    #[error("{key}: {source}")]
    Failed {
        key: String,
        #[source]
        source: object_store::Error,
    },
}

/// One archive's bucket and prefix.
#[derive(Clone)]
pub struct Bucket {
    store: Arc<dyn ObjectStore>,
    prefix: Vec<String>,
    /// `s3://...` or `file://...`, for messages.
    url: String,
}

impl std::fmt::Debug for Bucket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Bucket({})", self.url)
    }
}

/// A time any single request may take before it is failed and retried.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

impl Bucket {
    /// Opens the archive's bucket. `base` resolves a relative `file://` path.
    /// S3 credentials and region come from the `AWS_*` environment (never
    /// the configuration file); `endpoint` and `region` may be given there.
    pub fn open(a: &ArchiveConfig, base: &FsPath) -> Result<Bucket, BucketError> {
        let (scheme, rest) = a
            .url
            .split_once("://")
            .ok_or_else(|| BucketError::Unusable(format!("`{}` is not a URL", a.url)))?;
        let (store, prefix): (Arc<dyn ObjectStore>, &str) = match scheme {
            "s3" => {
                let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
                let mut b = AmazonS3Builder::from_env()
                    .with_bucket_name(bucket)
                    .with_client_options(
                        ClientOptions::new()
                            .with_timeout(REQUEST_TIMEOUT)
                            .with_connect_timeout(Duration::from_secs(5)),
                    )
                    // A failing request is retried briefly here; the writer
                    // retries for as long as it takes above that.
                    .with_retry(RetryConfig {
                        max_retries: 2,
                        retry_timeout: Duration::from_secs(20),
                        ..RetryConfig::default()
                    });
                if let Some(e) = &a.endpoint {
                    b = b.with_endpoint(e).with_allow_http(e.starts_with("http://"));
                } else if std::env::var("AWS_ENDPOINT_URL")
                    .or_else(|_| std::env::var("AWS_ENDPOINT"))
                    .is_ok_and(|e| e.starts_with("http://"))
                {
                    b = b.with_allow_http(true);
                }
                if let Some(r) = &a.region {
                    b = b.with_region(r);
                }
                let s3 = b
                    .build()
                    .map_err(|e| BucketError::Unusable(format!("cannot use `{}`: {e}", a.url)))?;
                (Arc::new(s3), prefix)
            }
            "file" => {
                let dir = base.join(rest);
                std::fs::create_dir_all(&dir).map_err(|e| {
                    BucketError::Unusable(format!("cannot create {}: {e}", dir.display()))
                })?;
                let fs = LocalFileSystem::new_with_prefix(&dir).map_err(|e| {
                    BucketError::Unusable(format!("cannot use {}: {e}", dir.display()))
                })?;
                (Arc::new(fs), "")
            }
            other => {
                return Err(BucketError::Unusable(format!(
                    "`{other}://` is not supported: use s3:// or file://"
                )))
            }
        };
        Ok(Bucket {
            store,
            prefix: prefix
                .split('/')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            url: a.url.clone(),
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// The key of `parts` under the prefix, each part encoded on its own.
    pub fn key<'a>(&self, parts: impl IntoIterator<Item = &'a str>) -> Path {
        let prefix: Vec<PathPart<'static>> = self
            .prefix
            .iter()
            .map(|p| PathPart::from(p.clone()))
            .collect();
        prefix
            .into_iter()
            .chain(parts.into_iter().map(|p| PathPart::from(p.to_owned())))
            .collect()
    }

    /// A key relative to the prefix, as readers and listings show it.
    pub fn relative(&self, key: &Path) -> String {
        key.parts()
            .skip(self.prefix.len())
            .map(|p| p.as_ref().to_owned())
            .collect::<Vec<_>>()
            .join("/")
    }

    fn failed(key: &Path, source: object_store::Error) -> BucketError {
        BucketError::Failed {
            key: key.to_string(),
            source,
        }
    }

    /// Writes `bytes` at `key`, replacing what is there, atomically.
    pub async fn put(&self, key: &Path, bytes: Bytes) -> Result<(), BucketError> {
        self.store
            .put(key, PutPayload::from(bytes))
            .await
            .map(drop)
            .map_err(|e| Self::failed(key, e))
    }

    /// Writes `bytes` at `key` only if nothing is there: [`BucketError::Exists`]
    /// otherwise (S3's `If-None-Match: *`; a hard link on a filesystem).
    pub async fn create(&self, key: &Path, bytes: Bytes) -> Result<(), BucketError> {
        let opts = PutOptions {
            mode: PutMode::Create,
            ..PutOptions::default()
        };
        match self
            .store
            .put_opts(key, PutPayload::from(bytes), opts)
            .await
        {
            Ok(_) => Ok(()),
            Err(object_store::Error::AlreadyExists { .. })
            | Err(object_store::Error::Precondition { .. }) => {
                Err(BucketError::Exists(key.to_string()))
            }
            Err(e) => Err(Self::failed(key, e)),
        }
    }

    /// The object at `key`, or `None` if there is none.
    pub async fn get(&self, key: &Path) -> Result<Option<Bytes>, BucketError> {
        match self.store.get(key).await {
            Ok(r) => r.bytes().await.map(Some).map_err(|e| Self::failed(key, e)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(Self::failed(key, e)),
        }
    }

    /// Every key under `prefix` (recursively), with its size.
    pub async fn list(&self, prefix: &Path) -> Result<Vec<(Path, u64)>, BucketError> {
        self.store
            .list(Some(prefix))
            .map_ok(|m| (m.location, m.size))
            .try_collect()
            .await
            .map_err(|e| Self::failed(prefix, e))
    }

    /// Deletes `key`; a missing key is not an error.
    pub async fn delete(&self, key: &Path) -> Result<(), BucketError> {
        match self.store.delete(key).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(Self::failed(key, e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local(dir: &FsPath) -> Bucket {
        let a: ArchiveConfig =
            toml::from_str(&format!("url = \"file://{}\"", dir.display())).unwrap();
        Bucket::open(&a, FsPath::new("/")).unwrap()
    }

    #[tokio::test]
    async fn create_only_writes_once_and_put_replaces() {
        let dir = tempdir();
        let b = local(&dir);
        let k = b.key(["_weir", "log", "00000000000000000001.json"]);
        b.create(&k, Bytes::from_static(b"one")).await.unwrap();
        match b.create(&k, Bytes::from_static(b"two")).await {
            Err(BucketError::Exists(_)) => {}
            other => panic!("a second create must find the key taken: {other:?}"),
        }
        assert_eq!(b.get(&k).await.unwrap().unwrap(), "one");
        b.put(&k, Bytes::from_static(b"three")).await.unwrap();
        assert_eq!(b.get(&k).await.unwrap().unwrap(), "three");
        assert_eq!(b.list(&b.key(["_weir"])).await.unwrap().len(), 1);
        b.delete(&k).await.unwrap();
        b.delete(&k).await.unwrap();
        assert!(b.get(&k).await.unwrap().is_none());
    }

    #[test]
    fn a_part_cannot_add_segments_or_climb_out() {
        let dir = tempdir();
        let b = local(&dir);
        let k = b.key(["..", "a/b", "c"]);
        assert_eq!(k.parts().count(), 3, "{k}");
        assert!(!b.relative(&k).starts_with("../"), "{k}");
    }

    fn tempdir() -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!(
            "weir-bucket-{}-{}",
            std::process::id(),
            rand::random::<u64>()
        ));
        std::fs::create_dir_all(&d).unwrap();
        d
    }
}
