//! Checks that serde cannot express: ranges, URL schemes, port clashes.

use std::collections::HashMap;

use crate::{Config, ConfigError, ServiceName};

impl Config {
    /// Every problem at once, each naming its key, so an operator fixes the file in one pass.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut errors = Vec::new();
        let mut check = |ok: bool, key: &str, message: &str| {
            if !ok {
                errors.push(ConfigError::invalid(key, message));
            }
        };

        check(
            self.general.data_dir.is_absolute(),
            "general.data_dir",
            "must be an absolute path",
        );
        check(
            self.general.models_dir.is_absolute(),
            "general.models_dir",
            "must be an absolute path",
        );
        check(
            self.general.secrets_dir.is_absolute(),
            "general.secrets_dir",
            "must be an absolute path",
        );
        check(
            self.bus
                .credentials()
                .is_none_or(std::path::Path::is_absolute),
            "bus.credentials_dir",
            "must be empty or an absolute path",
        );
        check(
            self.redis.password_file.as_os_str().is_empty()
                || self.redis.password_file.is_absolute(),
            "redis.password_file",
            "must be empty or an absolute path",
        );
        check(
            tracing_level_ok(&self.telemetry.log_level),
            "telemetry.log_level",
            "must be a level (error, warn, info, debug, trace) or target=level directives",
        );
        check(
            has_scheme(&self.database.url, &["postgres", "postgresql"]),
            "database.url",
            "must start with postgres:// or postgresql://",
        );
        check(
            self.database.max_connections >= 1,
            "database.max_connections",
            "must be at least 1",
        );
        check(
            self.database.connect_timeout_secs >= 1,
            "database.connect_timeout_secs",
            "must be at least 1",
        );
        check(
            self.database.statement_timeout_ms >= 1,
            "database.statement_timeout_ms",
            "must be at least 1",
        );
        check(
            has_scheme(&self.redis.url, &["redis", "rediss", "redis+unix", "unix"]),
            "redis.url",
            "must start with redis://, rediss:// or unix://",
        );
        check(
            has_scheme(&self.bus.url, &["nats", "tls"]),
            "bus.url",
            "must start with nats:// or tls://",
        );
        check(
            self.bus
                .prefix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'),
            "bus.prefix",
            "may only contain letters, digits, '_' and '-' (it becomes part of stream names)",
        );
        check(
            (1..=1000).contains(&self.bus.max_deliveries),
            "bus.max_deliveries",
            "must be between 1 and 1000",
        );
        check(
            self.bus.ack_wait_secs >= 1,
            "bus.ack_wait_secs",
            "must be at least 1",
        );
        check(
            self.bus.duplicate_window_secs >= 1,
            "bus.duplicate_window_secs",
            "must be at least 1",
        );
        check(
            self.bus.max_age_days >= 1,
            "bus.max_age_days",
            "must be at least 1",
        );
        check(
            self.http.request_timeout_secs >= 1,
            "http.request_timeout_secs",
            "must be at least 1",
        );
        check(
            self.http.body_limit_bytes >= 1024,
            "http.body_limit_bytes",
            "must be at least 1024",
        );

        check(
            self.models.queue_limit >= 1,
            "models.queue_limit",
            "must be at least 1",
        );
        let sup = &self.supervisor;
        check(
            sup.ready_timeout_secs >= 1,
            "supervisor.ready_timeout_secs",
            "must be at least 1",
        );
        check(
            sup.health_interval_secs >= 1,
            "supervisor.health_interval_secs",
            "must be at least 1",
        );
        check(
            sup.health_failures >= 1,
            "supervisor.health_failures",
            "must be at least 1",
        );
        check(
            sup.max_restarts >= 1,
            "supervisor.max_restarts",
            "must be at least 1",
        );
        check(
            sup.backoff_initial_ms >= 1 && sup.backoff_initial_ms <= sup.backoff_max_ms,
            "supervisor.backoff_initial_ms",
            "must be at least 1 and at most supervisor.backoff_max_ms",
        );
        check(
            sup.log_ring_lines >= 10,
            "supervisor.log_ring_lines",
            "must be at least 10",
        );

        let memory = &self.memory;
        check(
            memory.qdrant.url.is_empty() || has_scheme(&memory.qdrant.url, &["http", "https"]),
            "memory.qdrant.url",
            "must be empty (the embedded engine) or start with http:// or https:// (gRPC, port 6334)",
        );
        check(
            memory
                .qdrant
                .collection_prefix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'),
            "memory.qdrant.collection_prefix",
            "letters, digits, '_' and '-' only",
        );
        check(
            memory.graph.url.is_empty()
                || has_scheme(
                    &memory.graph.url,
                    &[
                        "bolt",
                        "bolt+s",
                        "bolt+ssc",
                        "neo4j",
                        "neo4j+s",
                        "neo4j+ssc",
                    ],
                ),
            "memory.graph.url",
            "must be empty (the graph in PostgreSQL) or a bolt:// or neo4j:// URL",
        );
        check(
            memory.graph.user.is_empty() || !memory.graph.password_file.as_os_str().is_empty(),
            "memory.graph.password_file",
            "must name the password file when memory.graph.user is set",
        );
        for (key, secs) in [
            ("memory.qdrant.timeout_secs", memory.qdrant.timeout_secs),
            ("memory.graph.timeout_secs", memory.graph.timeout_secs),
        ] {
            check(secs >= 1, key, "must be at least 1");
        }
        check(
            memory.session_state_default_ttl_secs >= 1
                && memory.session_state_default_ttl_secs <= memory.session_state_max_ttl_secs,
            "memory.session_state_default_ttl_secs",
            "must be at least 1 and at most memory.session_state_max_ttl_secs",
        );

        let ingest = &self.ingest;
        check(
            ingest.max_bytes >= 1,
            "ingest.max_bytes",
            "must be at least 1",
        );
        let blobs = &ingest.blobs;
        check(
            blobs.dir.as_os_str().is_empty() || blobs.dir.is_absolute(),
            "ingest.blobs.dir",
            "must be empty (general.data_dir/blobs) or an absolute path",
        );
        check(
            blobs.s3_endpoint.is_empty() || has_scheme(&blobs.s3_endpoint, &["http", "https"]),
            "ingest.blobs.s3_endpoint",
            "must be empty (AWS) or start with http:// or https://",
        );
        check(
            !blobs.is_s3() || !blobs.s3_region.is_empty(),
            "ingest.blobs.s3_region",
            "must be set when ingest.blobs.s3_bucket is",
        );
        // One key without the other would sign with half a credential.
        check(
            blobs.s3_access_key_file.as_os_str().is_empty()
                == blobs.s3_secret_key_file.as_os_str().is_empty(),
            "ingest.blobs.s3_secret_key_file",
            "s3_access_key_file and s3_secret_key_file are set together or not at all",
        );

        let parser = &self.parser;
        check(
            (1..=64).contains(&parser.workers),
            "parser.workers",
            "must be 1 to 64",
        );
        check(
            parser.max_pages >= 1,
            "parser.max_pages",
            "must be at least 1",
        );
        check(
            !parser.ocr_languages.is_empty()
                && parser.ocr_languages.split('+').all(|l| {
                    !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                }),
            "parser.ocr_languages",
            "must be tesseract language codes joined by + (e.g. ukr+rus+eng)",
        );
        check(
            parser.tool_timeout_secs >= 1,
            "parser.tool_timeout_secs",
            "must be at least 1",
        );
        check(
            parser.tool_memory_mb >= 64,
            "parser.tool_memory_mb",
            "must be at least 64",
        );

        let worker = &self.crews_worker;
        check(
            (1..=256).contains(&worker.concurrency),
            "crews_worker.concurrency",
            "must be 1 to 256",
        );
        check(
            (1..=worker.concurrency.max(1)).contains(&worker.per_user),
            "crews_worker.per_user",
            "must be 1 to crews_worker.concurrency",
        );
        check(
            worker.context_tokens >= 100,
            "crews_worker.context_tokens",
            "must be at least 100",
        );
        check(
            (6..=3600).contains(&worker.lease_secs),
            "crews_worker.lease_secs",
            "must be 6 to 3600",
        );
        check(
            worker.max_delegation_depth >= 1,
            "crews_worker.max_delegation_depth",
            "must be at least 1",
        );
        let budget = &self.crews.budget;
        check(
            budget.max_steps >= 1,
            "crews.budget.max_steps",
            "must be at least 1 (every run has a step limit)",
        );
        check(
            budget.max_wall_secs >= 1,
            "crews.budget.max_wall_secs",
            "must be at least 1 (every run has a time limit)",
        );
        check(
            budget.max_cost >= 0.0 && budget.max_gpu_seconds >= 0.0,
            "crews.budget",
            "limits cannot be negative",
        );
        let monitoring = &self.monitoring;
        check(
            monitoring.retention_days >= 1,
            "monitoring.retention_days",
            "must be at least 1",
        );
        check(
            (1..=300).contains(&monitoring.scrape_interval_secs),
            "monitoring.scrape_interval_secs",
            "must be 1 to 300",
        );

        let mut by_addr: HashMap<_, &str> = HashMap::new();
        if monitoring.enabled {
            by_addr.insert(monitoring.prometheus_listen, "monitoring.prometheus_listen");
            if let Some(other) = by_addr.insert(
                monitoring.alertmanager_listen,
                "monitoring.alertmanager_listen",
            ) {
                errors.push(ConfigError::invalid(
                    "monitoring.alertmanager_listen",
                    format!(
                        "{} is already used by {other}",
                        monitoring.alertmanager_listen
                    ),
                ));
            }
        }
        by_addr.insert(self.supervisor.admin_listen, "the supervisor admin API");
        for name in ServiceName::ALL {
            let service = self.service(name);
            if !service.enabled {
                continue;
            }
            let key = format!("{}.listen", name.section());
            if service.listen.port() == 0 {
                errors.push(ConfigError::invalid(&key, "port 0 is not allowed"));
            } else if let Some(other) = by_addr.insert(service.listen, name.as_str()) {
                errors.push(ConfigError::invalid(
                    &key,
                    format!("{} is already used by {other}", service.listen),
                ));
            }
        }

        match errors.len() {
            0 => Ok(()),
            1 => Err(errors.remove(0)),
            _ => Err(ConfigError::Many(errors)),
        }
    }
}

fn has_scheme(url: &str, schemes: &[&str]) -> bool {
    url.split_once("://")
        .is_some_and(|(scheme, rest)| schemes.contains(&scheme) && !rest.is_empty())
}

fn tracing_level_ok(filter: &str) -> bool {
    const LEVELS: [&str; 6] = ["error", "warn", "info", "debug", "trace", "off"];
    !filter.trim().is_empty()
        && filter.split(',').all(|directive| {
            let level = directive.rsplit('=').next().unwrap_or("").trim();
            LEVELS.contains(&level.to_ascii_lowercase().as_str()) || !directive.contains('=')
        })
}
