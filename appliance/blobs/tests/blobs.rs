//! The blob store on a real local directory: streaming, the limit, one copy per content.

use std::path::PathBuf;

use bytes::Bytes;
use daarion_blobs::{BlobError, BlobStore, Sha256Hex};
use futures::stream;
use sha2::{Digest, Sha256};

fn root() -> PathBuf {
    std::env::temp_dir().join(format!("daarion-blobs-{}", uuid::Uuid::new_v4().simple()))
}

/// `n` chunks of 1 MiB, each its own pattern, as a body stream.
fn body(n: usize) -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> {
    stream::iter((0..n).map(|i| Ok(Bytes::from(vec![(i % 251) as u8; 1 << 20]))))
}

fn sha_of(n: usize) -> String {
    let mut h = Sha256::new();
    for i in 0..n {
        h.update(vec![(i % 251) as u8; 1 << 20]);
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Files left in the store's temporary directory.
fn temporaries(root: &std::path::Path) -> usize {
    std::fs::read_dir(root.join("tmp")).unwrap().count()
}

#[tokio::test]
async fn a_big_body_streams_in_and_reads_back() {
    let root = root();
    let store = BlobStore::local(&root).unwrap();
    let stored = store.put_stream(body(64), 64 << 20).await.unwrap();
    assert_eq!(stored.bytes, 64 << 20);
    assert_eq!(stored.sha256.as_str(), sha_of(64));
    assert!(stored.created);
    let hex = stored.sha256.as_str();
    let expected = root.join(format!("sha256/{}/{}/{hex}", &hex[..2], &hex[2..4]));
    assert_eq!(stored.path(), expected);
    assert_eq!(store.path(&stored.sha256).unwrap(), expected);
    assert_eq!(std::fs::metadata(&expected).unwrap().len(), 64 << 20);
    assert_eq!(temporaries(&root), 0);

    let copy = root.join("copy");
    assert_eq!(
        store.get_to_file(&stored.sha256, &copy).await.unwrap(),
        64 << 20
    );
    assert_eq!(
        std::fs::read(&copy).unwrap(),
        std::fs::read(&expected).unwrap()
    );
}

#[tokio::test]
async fn the_limit_refuses_one_byte_more_and_keeps_nothing() {
    for (size, limit, fits) in [(10, 10, true), (11, 10, false), (0, 10, true)] {
        let root = root();
        let store = BlobStore::local(&root).unwrap();
        let chunks =
            stream::iter((0..size).map(|i| Ok::<_, std::io::Error>(Bytes::from(vec![i as u8]))));
        let got = store.put_stream(chunks, limit).await;
        match got {
            Ok(stored) => {
                assert!(fits, "{size} > {limit} was stored");
                assert_eq!(stored.bytes, size);
            }
            Err(BlobError::TooLarge { limit: l }) => {
                assert!(!fits, "{size} <= {limit} was refused");
                assert_eq!(l, limit);
                assert!(!root.join("sha256").exists(), "a refused body left a blob");
            }
            Err(other) => panic!("{other}"),
        }
        assert_eq!(
            temporaries(&root),
            0,
            "{size}/{limit} left a temporary file"
        );
    }
}

#[tokio::test]
async fn a_body_cut_off_keeps_nothing() {
    let root = root();
    let store = BlobStore::local(&root).unwrap();
    let chunks = stream::iter([
        Ok(Bytes::from_static(b"half a file")),
        Err(std::io::Error::other("connection reset")),
    ]);
    let err = store.put_stream(chunks, 1 << 20).await.unwrap_err();
    assert!(matches!(err, BlobError::Body(_)), "{err}");
    assert_eq!(temporaries(&root), 0);
    assert!(!root.join("sha256").exists());
}

#[tokio::test]
async fn the_same_content_is_stored_once_and_deleted_once() {
    let root = root();
    let store = BlobStore::local(&root).unwrap();
    let first = store.put_stream(body(2), 4 << 20).await.unwrap();
    let second = store.put_stream(body(2), 4 << 20).await.unwrap();
    assert!(first.created);
    assert!(!second.created);
    assert_eq!(first.sha256, second.sha256);
    assert_eq!(temporaries(&root), 0);
    assert!(store.exists(&first.sha256).await.unwrap());

    store.delete(&first.sha256).await.unwrap();
    assert!(!store.exists(&first.sha256).await.unwrap());
    assert!(!first.path().exists());
    // Gone already: not an error.
    store.delete(&first.sha256).await.unwrap();
    let missing = store.open(&first.sha256).await.err().unwrap();
    assert!(matches!(missing, BlobError::NotFound(_)), "{missing}");
}

#[tokio::test]
async fn concurrent_puts_of_the_same_content_leave_one_whole_blob() {
    let root = root();
    let store = BlobStore::local(&root).unwrap();
    let puts = (0..8).map(|_| {
        let store = store.clone();
        tokio::spawn(async move { store.put_stream(body(4), 8 << 20).await.unwrap() })
    });
    let stored = futures::future::join_all(puts).await;
    let expected = sha_of(4);
    for s in &stored {
        let s = s.as_ref().unwrap();
        assert_eq!(s.sha256.as_str(), expected);
        assert_eq!(std::fs::metadata(s.path()).unwrap().len(), 4 << 20);
    }
    let sha = Sha256Hex::parse(&expected).unwrap();
    let mut h = Sha256::new();
    h.update(std::fs::read(store.path(&sha).unwrap()).unwrap());
    let on_disk: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(on_disk, expected);
    assert_eq!(temporaries(&root), 0);
    let dir = store.path(&sha).unwrap();
    assert_eq!(std::fs::read_dir(dir.parent().unwrap()).unwrap().count(), 1);
}
