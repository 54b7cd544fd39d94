use std::io::Write;
use std::path::Path;

use super::*;

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn file(text: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(text.as_bytes()).unwrap();
    f
}

#[test]
fn shipped_default_loads_and_validates() {
    let config = Config::load_with_env(Source::Explicit(Path::new("/dev/null")), env(&[])).unwrap();
    assert_eq!(config.gateway.listen.port(), 9300);
    assert_eq!(config.control_plane.listen.port(), 9200);
    assert_eq!(config.router.listen.port(), 9102);
    assert_eq!(config.swapper.listen.port(), 8890);
    assert_eq!(config.memory.listen.port(), 8000);
    assert_eq!(config.bus.url, "nats://127.0.0.1:4222");
    assert_eq!(config.telemetry.log_format, LogFormat::Auto);
    // Every service has a section; the ones in this build are on.
    assert!(config.memory.enabled);
    assert!(
        config.memory.qdrant.url.is_empty() && config.memory.graph.url.is_empty(),
        "the embedded stores by default"
    );
    let addrs: std::collections::HashSet<_> = ServiceName::ALL
        .iter()
        .map(|n| config.service(*n).listen)
        .collect();
    assert_eq!(
        addrs.len(),
        ServiceName::ALL.len(),
        "default ports do not clash"
    );
}

#[test]
fn file_overrides_default_and_env_overrides_file() {
    let f = file(
        "[bus]\nmax_deliveries = 7\nprefix = \"fromfile\"\n[gateway]\nlisten = \"0.0.0.0:9301\"\n",
    );
    let config = Config::load_with_env(
        Source::Explicit(f.path()),
        env(&[
            ("DAARION__BUS__PREFIX", "fromenv"),
            ("DAARION__HTTP__REQUEST_TIMEOUT_SECS", "9"),
            ("DAARION__DATABASE__URL", "postgres://u:p@db:5432/x"),
            ("UNRELATED", "ignored"),
        ]),
    )
    .unwrap();
    assert_eq!(config.bus.max_deliveries, 7, "file layer");
    assert_eq!(config.bus.prefix, "fromenv", "env beats file");
    assert_eq!(config.gateway.listen.to_string(), "0.0.0.0:9301");
    assert_eq!(
        config.http.request_timeout_secs, 9,
        "env value typed as integer"
    );
    assert_eq!(config.database.url, "postgres://u:p@db:5432/x");
    // Keys not mentioned keep their defaults.
    assert_eq!(config.bus.ack_wait_secs, 30);
}

#[test]
fn missing_default_file_is_fine_but_explicit_one_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("daarion.toml");
    let config = Config::load_from(
        &missing,
        Source::Default,
        env(&[("DAARION__BUS__PREFIX", "fromenv")]),
    )
    .expect("no default file means defaults only");
    let defaults = Config::defaults();
    assert_eq!(config.bus.max_deliveries, defaults.bus.max_deliveries);
    assert_eq!(config.gateway.listen, defaults.gateway.listen);
    assert_eq!(
        config.bus.prefix, "fromenv",
        "the environment still applies"
    );
    // The same place, once a file is there, is read: the missing case above was not luck.
    std::fs::write(&missing, "[bus]\nmax_deliveries = 7\n").unwrap();
    let config = Config::load_from(&missing, Source::Default, env(&[])).unwrap();
    assert_eq!(config.bus.max_deliveries, 7, "the default file is a layer");
    // Unreadable is not missing: a directory in its place is an error naming it.
    let err = Config::load_from(dir.path(), Source::Default, env(&[])).unwrap_err();
    assert!(matches!(err, ConfigError::Read { .. }), "{err}");

    let err = Config::load_with_env(
        Source::Explicit(Path::new("/nonexistent/daarion.toml")),
        env(&[]),
    )
    .unwrap_err();
    assert!(matches!(err, ConfigError::Read { .. }), "{err}");
    assert!(err.to_string().contains("/nonexistent/daarion.toml"));
}

#[test]
fn unknown_key_is_named() {
    let f = file("[bus]\nmax_delivery = 3\n");
    let err = Config::load_with_env(Source::Explicit(f.path()), env(&[])).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("bus"), "{text}");
    assert!(text.contains("max_delivery"), "{text}");
}

#[test]
fn wrong_type_names_the_key() {
    let err = Config::load_with_env(
        Source::Explicit(Path::new("/dev/null")),
        env(&[("DAARION__BUS__ACK_WAIT_SECS", "soon")]),
    )
    .unwrap_err();
    assert_eq!(err.keys(), vec!["bus.ack_wait_secs"], "{err}");
}

#[test]
fn bad_listen_address_names_the_key() {
    let err = Config::load_with_env(
        Source::Explicit(Path::new("/dev/null")),
        env(&[("DAARION__ROUTER__LISTEN", "not-an-address")]),
    )
    .unwrap_err();
    assert_eq!(err.keys(), vec!["router.listen"], "{err}");
}

#[test]
fn validation_reports_every_problem_with_its_key() {
    let err = Config::load_with_env(
        Source::Explicit(Path::new("/dev/null")),
        env(&[
            ("DAARION__DATABASE__URL", "mysql://x"),
            ("DAARION__BUS__MAX_DELIVERIES", "0"),
            ("DAARION__BUS__PREFIX", "bad.prefix"),
            ("DAARION__GATEWAY__LISTEN", "127.0.0.1:9200"),
            ("DAARION__GATEWAY__ENABLED", "true"),
            ("DAARION__CONTROL_PLANE__ENABLED", "true"),
        ]),
    )
    .unwrap_err();
    let mut keys = err.keys();
    keys.sort();
    assert_eq!(
        keys,
        vec![
            "bus.max_deliveries",
            "bus.prefix",
            "database.url",
            "gateway.listen"
        ],
        "{err}"
    );
    assert!(
        err.to_string().contains("already used by control-plane"),
        "{err}"
    );
}

#[test]
fn disabled_services_may_share_a_port() {
    let config = Config::load_with_env(
        Source::Explicit(Path::new("/dev/null")),
        env(&[
            ("DAARION__GATEWAY__LISTEN", "127.0.0.1:9200"),
            ("DAARION__GATEWAY__ENABLED", "false"),
        ]),
    )
    .unwrap();
    assert!(!config.gateway.enabled);
}

#[test]
fn syntax_error_names_the_file() {
    let f = file("[bus\n");
    let err = Config::load_with_env(Source::Explicit(f.path()), env(&[])).unwrap_err();
    assert!(
        err.to_string().contains(&f.path().display().to_string()),
        "{err}"
    );
}

#[test]
fn malformed_env_var_is_rejected() {
    let err = Config::load_with_env(
        Source::Explicit(Path::new("/dev/null")),
        env(&[("DAARION__BUS____URL", "nats://x")]),
    )
    .unwrap_err();
    assert!(matches!(err, ConfigError::Env { .. }), "{err}");
}

#[test]
fn secrets_are_redacted_in_debug_output() {
    let config = Config::load_with_env(
        Source::Explicit(Path::new("/dev/null")),
        env(&[
            (
                "DAARION__DATABASE__URL",
                "postgres://daarion:hunter2@db/daarion",
            ),
            ("DAARION__REDIS__URL", "redis://:hunter2@127.0.0.1/0"),
        ]),
    )
    .unwrap();
    let shown = format!("{config:?}");
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(
        shown.contains("postgres://daarion:***@db/daarion"),
        "{shown}"
    );
}

#[test]
fn service_names_round_trip() {
    for name in ServiceName::ALL {
        assert_eq!(name.as_str().parse::<ServiceName>().unwrap(), name);
        assert_eq!(name.section().parse::<ServiceName>().unwrap(), name);
    }
    assert!(
        "nope"
            .parse::<ServiceName>()
            .unwrap_err()
            .contains("known:")
    );
}

#[test]
fn unspecified_listen_is_dialled_on_loopback() {
    let mut service = Config::defaults().gateway;
    service.listen = "0.0.0.0:9300".parse().unwrap();
    assert_eq!(service.dial().to_string(), "127.0.0.1:9300");
    service.listen = "10.1.2.3:9300".parse().unwrap();
    assert_eq!(service.dial().to_string(), "10.1.2.3:9300");
}

#[test]
fn memory_backends_are_checked_and_nested_env_reaches_them() {
    let config = Config::load_with_env(
        Source::Explicit(Path::new("/dev/null")),
        env(&[
            ("DAARION__MEMORY__GRAPH__URL", "bolt://127.0.0.1:7687"),
            ("DAARION__MEMORY__QDRANT__URL", "http://127.0.0.1:6334"),
        ]),
    )
    .unwrap();
    assert_eq!(config.memory.graph.url, "bolt://127.0.0.1:7687");
    assert_eq!(config.memory.qdrant.url, "http://127.0.0.1:6334");

    let err = Config::load_with_env(
        Source::Explicit(Path::new("/dev/null")),
        env(&[
            ("DAARION__MEMORY__GRAPH__URL", "http://127.0.0.1:7687"),
            ("DAARION__MEMORY__GRAPH__USER", "neo4j"),
            ("DAARION__MEMORY__QDRANT__URL", "qdrant:6334"),
            ("DAARION__MEMORY__SESSION_STATE_DEFAULT_TTL_SECS", "0"),
        ]),
    )
    .unwrap_err()
    .to_string();
    for key in [
        "memory.graph.url",
        "memory.graph.password_file",
        "memory.qdrant.url",
        "memory.session_state_default_ttl_secs",
    ] {
        assert!(err.contains(key), "{key} named in: {err}");
    }
}

#[test]
fn ingest_defaults_to_the_local_blob_store_and_its_keys_are_checked() {
    let config = Config::load_with_env(Source::Explicit(Path::new("/dev/null")), env(&[])).unwrap();
    assert_eq!(config.ingest.max_bytes, 50 * 1024 * 1024);
    assert!(!config.ingest.blobs.is_s3());
    assert!(config.ingest.blobs.dir.as_os_str().is_empty());
    assert_eq!(config.ingest.dial().port(), 8100);

    let err = Config::load_with_env(
        Source::Explicit(Path::new("/dev/null")),
        env(&[
            ("DAARION__INGEST__MAX_BYTES", "0"),
            ("DAARION__INGEST__BLOBS__DIR", "relative/blobs"),
            ("DAARION__INGEST__BLOBS__S3_ENDPOINT", "minio:9000"),
            ("DAARION__INGEST__BLOBS__S3_BUCKET", "files"),
            ("DAARION__INGEST__BLOBS__S3_REGION", ""),
            (
                "DAARION__INGEST__BLOBS__S3_ACCESS_KEY_FILE",
                "/etc/daarion/s3.key",
            ),
        ]),
    )
    .unwrap_err()
    .to_string();
    for key in [
        "ingest.max_bytes",
        "ingest.blobs.dir",
        "ingest.blobs.s3_endpoint",
        "ingest.blobs.s3_region",
        "ingest.blobs.s3_secret_key_file",
    ] {
        assert!(err.contains(key), "{key} named in: {err}");
    }
}

#[test]
fn redis_password_file_goes_into_every_connection_url() {
    let secret = file("p@ss/w:rd\n");
    let cases = [
        (
            "redis://127.0.0.1:6379/0",
            "redis://:p%40ss%2Fw%3Ard@127.0.0.1:6379/0",
        ),
        (
            "redis://daarion@127.0.0.1/1",
            "redis://daarion:p%40ss%2Fw%3Ard@127.0.0.1/1",
        ),
        // A password written in the URL is the operator's choice.
        ("redis://u:given@127.0.0.1/0", "redis://u:given@127.0.0.1/0"),
        (
            "redis+unix:///run/redis.sock",
            "redis+unix:///run/redis.sock?pass=p%40ss%2Fw%3Ard",
        ),
    ];
    for (url, want) in cases {
        let redis = RedisConfig {
            url: url.into(),
            key_prefix: "daarion:".into(),
            password_file: secret.path().to_owned(),
        };
        assert_eq!(redis.connection_url().unwrap(), want, "{url}");
    }
    let open = RedisConfig {
        url: "redis://127.0.0.1/0".into(),
        key_prefix: String::new(),
        password_file: Default::default(),
    };
    assert_eq!(open.connection_url().unwrap(), "redis://127.0.0.1/0");
}

#[test]
fn credential_paths_must_be_absolute() {
    let err = Config::load_with_env(
        Source::Explicit(Path::new("/dev/null")),
        env(&[
            ("DAARION__BUS__CREDENTIALS_DIR", "nats"),
            ("DAARION__REDIS__PASSWORD_FILE", "redis.pass"),
        ]),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("bus.credentials_dir"), "{err}");
    assert!(err.contains("redis.password_file"), "{err}");
}

#[test]
fn loading_puts_the_redis_password_into_the_url() {
    let secret = file("s3cret\n");
    let path = secret.path().display().to_string();
    let config = Config::load_with_env(
        Source::Explicit(Path::new("/dev/null")),
        env(&[("DAARION__REDIS__PASSWORD_FILE", &path)]),
    )
    .unwrap();
    assert_eq!(config.redis.url, "redis://:s3cret@127.0.0.1:6379/0");
    assert!(!format!("{config:?}").contains("s3cret"));
    let missing = Config::load_with_env(
        Source::Explicit(Path::new("/dev/null")),
        env(&[("DAARION__REDIS__PASSWORD_FILE", "/nonexistent/redis.pass")]),
    )
    .unwrap_err()
    .to_string();
    assert!(missing.contains("/nonexistent/redis.pass"), "{missing}");
}
