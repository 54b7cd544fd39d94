//! The blob store on an S3-compatible server: moto's S3 server from PyPI (`moto[server]`, in the
//! tests' venv made by tests/setup.sh), spoken to with the real `object_store` client — the same
//! calls as on MinIO, Garage or AWS. Multipart uploads (8 MiB parts), reads, the limit, one
//! copy per content, deletes.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use daarion_blobs::{BlobError, BlobStore};
use daarion_config::BlobsConfig;
use futures::stream;
use sha2::{Digest, Sha256};

/// moto's server, stopped when dropped.
struct Moto {
    child: Child,
    endpoint: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn moto() -> Option<Moto> {
    let venv = std::env::var_os("DAARION_TEST_PYTHON")
        .map_or_else(|| PathBuf::from("/var/cache/daarion/pyenv"), PathBuf::from);
    let server = venv.join("bin/moto_server");
    if !server.exists() {
        let ci = std::env::var("CI").is_ok_and(|v| v == "true");
        assert!(
            !ci,
            "{} is missing: tests/setup.sh installs moto[server] into the tests' venv",
            server.display()
        );
        eprintln!(
            "skipped: no {} (tests/setup.sh installs it)",
            server.display()
        );
        return None;
    }
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(&server)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let moto = Moto {
        child,
        endpoint: format!("http://127.0.0.1:{port}"),
    };
    let started = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "moto did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    Some(moto)
}

/// Creates a bucket (object_store does not); moto takes an unsigned request.
fn create_bucket(endpoint: &str, bucket: &str) {
    let host = endpoint.trim_start_matches("http://");
    let mut s = TcpStream::connect(host).unwrap();
    write!(
        s,
        "PUT /{bucket} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

fn store(moto: &Moto, bucket: &str, dir: &std::path::Path) -> BlobStore {
    create_bucket(&moto.endpoint, bucket);
    for (file, value) in [("access", "testing-key"), ("secret", "testing-secret")] {
        std::fs::write(dir.join(file), value).unwrap();
    }
    let config = BlobsConfig {
        dir: PathBuf::new(),
        s3_bucket: bucket.into(),
        s3_endpoint: moto.endpoint.clone(),
        s3_region: "us-east-1".into(),
        s3_access_key_file: dir.join("access"),
        s3_secret_key_file: dir.join("secret"),
    };
    BlobStore::from_config(&config, dir).unwrap()
}

/// `n` chunks of 1 MiB, each its own pattern.
fn body(n: usize) -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> {
    stream::iter((0..n).map(|i| Ok(Bytes::from(vec![(i * 7 % 251) as u8; 1 << 20]))))
}

fn sha_of_file(path: &std::path::Path) -> String {
    let bytes = std::fs::read(path).unwrap();
    Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_s3_bucket_holds_each_content_once_streams_it_both_ways_and_deletes_it() {
    let Some(moto) = moto() else { return };
    let dir = std::env::temp_dir().join(format!("daarion-s3-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let store = store(&moto, "daarion-blobs", &dir);

    // 20 MiB: three parts of a multipart upload.
    let stored = store.put_stream(body(20), 64 << 20).await.unwrap();
    assert_eq!((stored.bytes, stored.created), (20 << 20, true));
    let sha = stored.sha256.clone();
    assert_eq!(sha_of_file(stored.path()), sha.as_str());
    drop(stored);
    assert!(store.exists(&sha).await.unwrap());

    let again = store.put_stream(body(20), 64 << 20).await.unwrap();
    assert!(!again.created, "the same content is stored once");
    drop(again);

    let back = dir.join("back");
    assert_eq!(store.get_to_file(&sha, &back).await.unwrap(), 20 << 20);
    assert_eq!(sha_of_file(&back), sha.as_str());

    // Past the limit: refused, and nothing of it in the bucket.
    let refused = store.put_stream(body(3), 2 << 20).await;
    assert!(
        matches!(refused, Err(BlobError::TooLarge { .. })),
        "{refused:?}"
    );
    let three = {
        let mut h = Sha256::new();
        for i in 0..3 {
            h.update(vec![(i * 7 % 251) as u8; 1 << 20]);
        }
        h.finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    let three = daarion_blobs::Sha256Hex::parse(&three).unwrap();
    assert!(!store.exists(&three).await.unwrap());

    store.delete(&sha).await.unwrap();
    assert!(!store.exists(&sha).await.unwrap());
    store.delete(&sha).await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
