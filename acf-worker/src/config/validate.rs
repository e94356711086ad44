//! Rules that types alone cannot express. Every message starts with the key and states what is accepted.

use super::error::ConfigError;
use super::sections::{BrainKind, Settings, StoreBackend};

/// Collects rule violations so one run reports all of them.
#[derive(Default)]
struct Problems(Vec<String>);

impl Problems {
    fn range<T: PartialOrd + std::fmt::Display + Copy>(
        &mut self,
        key: &str,
        value: T,
        min: T,
        max: T,
    ) {
        if value < min || value > max {
            self.0.push(format!(
                "`{key}` = {value} is out of range; accepted: {min} to {max}"
            ));
        }
    }

    fn check(&mut self, ok: bool, key: &str, rule: impl FnOnce() -> String) {
        if !ok {
            self.0.push(format!("`{key}` {}", rule()));
        }
    }
}

/// Checks every cross-field and range rule.
pub(crate) fn validate(settings: &Settings) -> Result<(), ConfigError> {
    let mut p = Problems::default();

    let hatchet = &settings.jobs.hatchet;
    p.check(
        hatchet.server_url.starts_with("http://") || hatchet.server_url.starts_with("https://"),
        "jobs.hatchet.server_url",
        || {
            format!(
                "= `{}` is invalid; accepted: an http:// or https:// URL",
                hatchet.server_url
            )
        },
    );
    p.range(
        "jobs.hatchet.worker_concurrency",
        hatchet.worker_concurrency,
        1,
        100,
    );
    if let Some(attempts) = hatchet.retry_max_attempts {
        p.range("jobs.hatchet.retry_max_attempts", attempts, 1, 10);
    }
    if let Some(seconds) = hatchet.retry_backoff_seconds {
        p.range("jobs.hatchet.retry_backoff_seconds", seconds, 1, 3600);
    }
    p.check(
        hatchet
            .api_key
            .as_ref()
            .is_none_or(|key| !key.expose().trim().is_empty()),
        "jobs.hatchet.api_key",
        || "is empty; accepted: a non-empty token, or leave it unset".to_owned(),
    );

    let store = &settings.storage.session;
    if store.backend == StoreBackend::Redis {
        let url = store.connection_url.expose();
        // A Redis Cluster's seed nodes must each be a TCP URL; one server may also be a Unix socket.
        let valid = match crate::stores::cluster_nodes(url) {
            Some(nodes) => {
                !nodes.is_empty()
                    && nodes.iter().all(|node| {
                        ["redis://", "rediss://"]
                            .iter()
                            .any(|scheme| node.starts_with(scheme))
                    })
            }
            None => ["redis://", "rediss://", "unix://", "redis+unix://"]
                .iter()
                .any(|scheme| url.starts_with(scheme)),
        };
        p.check(valid, "storage.session.connection_url", || {
            format!(
                "= `{}` is invalid; accepted: a redis://, rediss:// or unix:// URL, or a Redis Cluster's \
                 nodes (comma-separated redis:// URLs, or redis+cluster://host:port,host:port)",
                store.connection_url.redacted()
            )
        });
    }
    p.range("storage.session.pool_size", store.pool_size, 1, 1000);
    p.range(
        "storage.session.pool_timeout_seconds",
        store.pool_timeout_seconds,
        1,
        3600,
    );
    p.check(
        !store.key_prefix.is_empty() && !store.key_prefix.chars().any(char::is_whitespace),
        "storage.session.key_prefix",
        || {
            format!(
                "= `{}` is invalid; accepted: a non-empty prefix without spaces",
                store.key_prefix
            )
        },
    );
    for (key, value) in [
        (
            "storage.session.session_ttl_seconds",
            store.session_ttl_seconds,
        ),
        (
            "storage.session.message_ttl_seconds",
            store.message_ttl_seconds,
        ),
        (
            "storage.session.record_ttl_seconds",
            store.record_ttl_seconds,
        ),
        ("storage.session.inbox_ttl_seconds", store.inbox_ttl_seconds),
    ] {
        p.range(key, value, 1, 31_536_000);
    }
    p.check(
        !store.response_stream.trim().is_empty(),
        "storage.session.response_stream",
        || "is empty; accepted: a stream name".to_owned(),
    );
    p.range(
        "storage.session.response_stream_max_len",
        store.response_stream_max_len,
        1,
        u64::MAX,
    );
    p.range(
        "storage.session.cadence.max_samples",
        store.cadence.max_samples,
        1,
        10_000,
    );
    p.range(
        "storage.session.cadence.max_gap_ms",
        store.cadence.max_gap_ms,
        1,
        3_600_000,
    );

    let lock = &settings.session.lock;
    p.range("session.lock.ttl_ms", lock.ttl_ms, 100, 3_600_000);
    p.range(
        "session.lock.blocking_timeout_ms",
        lock.blocking_timeout_ms,
        0,
        600_000,
    );
    p.check(
        lock.heartbeat_interval_ms >= 1 && lock.heartbeat_interval_ms < lock.ttl_ms,
        "session.lock.heartbeat_interval_ms",
        || {
            format!(
                "= {} is invalid; accepted: 1 to session.lock.ttl_ms - 1 ({})",
                lock.heartbeat_interval_ms,
                lock.ttl_ms.saturating_sub(1)
            )
        },
    );

    let acc = &settings.accumulation;
    p.range("accumulation.max_wait_ms", acc.max_wait_ms, 0, 60_000);
    p.range(
        "accumulation.min_wait_ms",
        acc.min_wait_ms,
        0,
        acc.max_wait_ms,
    );
    for (channel, wait) in &acc.channel_defaults {
        p.range(
            &format!("accumulation.channel_defaults.{channel}"),
            *wait,
            0,
            60_000,
        );
    }
    p.range(
        "accumulation.max_messages_per_turn",
        acc.max_messages_per_turn,
        1,
        1000,
    );
    p.range(
        "accumulation.max_window_ms",
        acc.max_window_ms,
        acc.max_wait_ms.max(1),
        3_600_000,
    );
    p.range(
        "accumulation.max_message_chars",
        acc.max_message_chars,
        1,
        1_000_000,
    );

    let brain = &settings.brain;
    match (&brain.kind, &brain.url) {
        (BrainKind::Http, None) => {
            p.0.push("`brain.url` is required when `brain.kind` = \"http\"".to_owned())
        }
        (_, Some(url)) => p.check(
            url.expose().starts_with("http://") || url.expose().starts_with("https://"),
            "brain.url",
            || {
                format!(
                    "= `{}` is invalid; accepted: an http:// or https:// URL",
                    url.redacted()
                )
            },
        ),
        (BrainKind::Echo, None) => {}
    }
    p.range("brain.timeout_ms", brain.timeout_ms, 1, 600_000);
    for (name, value) in &brain.headers {
        let key = format!("brain.headers.{name}");
        match reqwest::header::HeaderName::from_bytes(name.as_bytes()) {
            Err(_) => p.check(false, &key, || {
                "is not a valid HTTP header name; accepted: letters, digits and `!#$%&'*+-.^_`|~`".to_owned()
            }),
            Ok(header) => p.check(
                !crate::brain::RESERVED_HEADERS.contains(&header.as_str()),
                &key,
                || {
                    format!(
                        "is set by the worker itself; accepted: any header but {}",
                        crate::brain::RESERVED_HEADERS.join(", ")
                    )
                },
            ),
        }
        // The value is a secret: the message names the key only.
        p.check(
            reqwest::header::HeaderValue::from_str(value.expose()).is_ok(),
            &key,
            || "has an invalid value; accepted: visible ASCII characters and spaces".to_owned(),
        );
    }
    if let Some(key) = &brain.api_key {
        p.check(
            reqwest::header::HeaderValue::from_str(&format!("Bearer {}", key.expose())).is_ok(),
            "brain.api_key",
            || "has an invalid value; accepted: visible ASCII characters".to_owned(),
        );
    }

    let live = &settings.liveness;
    p.range(
        "liveness.sweep_interval_ms",
        live.sweep_interval_ms,
        100,
        600_000,
    );
    p.range(
        "liveness.pending_grace_ms",
        live.pending_grace_ms,
        100,
        3_600_000,
    );
    p.range("liveness.sweep_batch", live.sweep_batch, 1, 10_000);

    let events = &settings.events;
    for (at, sink) in events.sinks.iter().enumerate() {
        p.check(!events.sinks[..at].contains(sink), "events.sinks", || {
            format!("lists `{}` twice; accepted: each of log, redis_stream, hatchet_stream at most once", sink.as_str())
        });
    }
    p.check(
        events.sinks.is_empty() || !events.patterns.is_empty(),
        "events.patterns",
        || {
            "is empty while sinks are configured; accepted: at least one pattern, e.g. \"*\""
                .to_owned()
        },
    );
    for pattern in &events.patterns {
        if let Err(error) = crate::events::validate_pattern(pattern) {
            p.0.push(format!("`events.patterns`: {error}"));
        }
    }
    p.range("events.stream_max_len", events.stream_max_len, 1, u64::MAX);

    if p.0.is_empty() {
        Ok(())
    } else {
        Err(ConfigError::Invalid(p.0))
    }
}
