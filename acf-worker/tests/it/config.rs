//! Layered configuration: shipped files, precedence, lax parsing, validation messages, secret redaction and the
//! directory rule. Every test passes its own variables and directory; none touches the process environment.

use std::path::{Path, PathBuf};

use acf_worker::config::{
    BrainKind, ConfigError, ConnectionUrl, EnvVars, LogFormat, LogLevel, Secret, Settings,
    StoreBackend, load_from, locate_config_dir, redact_url_password,
};

fn shipped_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("config")
}

fn vars(pairs: &[(&str, &str)]) -> EnvVars {
    EnvVars::new(pairs.iter().copied())
}

fn load_shipped(pairs: &[(&str, &str)]) -> Result<Settings, ConfigError> {
    load_from(&shipped_dir(), &vars(pairs)).map(|loaded| loaded.settings)
}

fn error_text(pairs: &[(&str, &str)]) -> String {
    load_shipped(pairs).unwrap_err().to_string()
}

/// A temporary config directory holding the given files.
fn dir_with(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    dir
}

// ---- shipped files ----

#[test]
fn default_toml_equals_the_built_in_defaults() {
    // `staging` has no file, so only default.toml is read.
    let loaded = load_from(&shipped_dir(), &vars(&[("RUCHE_ENV", "staging")])).unwrap();
    assert_eq!(loaded.files, vec![shipped_dir().join("default.toml")]);
    assert_eq!(loaded.settings, Settings::default());
}

#[test]
fn development_is_the_default_environment() {
    let loaded = load_from(&shipped_dir(), &vars(&[])).unwrap();
    assert_eq!(loaded.env_name, "development");
    assert_eq!(
        loaded.files.last().unwrap(),
        &shipped_dir().join("development.toml")
    );
    assert_eq!(loaded.settings.observability.logging.level, LogLevel::Debug);
}

#[test]
fn test_environment_loads_with_the_memory_backend() {
    // The original could not load under RUCHE_ENV=test at all.
    let settings = load_shipped(&[("RUCHE_ENV", "test")]).unwrap();
    assert_eq!(settings.storage.session.backend, StoreBackend::Memory);
    assert_eq!(settings.storage.session.key_prefix, "test-session");
    assert_eq!(settings.session.lock.ttl_ms, 5000);
    assert_eq!(settings.observability.logging.level, LogLevel::Warning);
    // Untouched keys keep their defaults.
    assert_eq!(settings.jobs.hatchet.worker_concurrency, 10);
}

#[test]
fn production_environment_loads() {
    let settings = load_shipped(&[("RUCHE_ENV", "production")]).unwrap();
    assert_eq!(settings.session.lock.blocking_timeout_ms, 10_000);
    assert_eq!(settings.observability.logging.format, LogFormat::Json);
    assert_eq!(settings.observability.logging.level, LogLevel::Info);
    assert_eq!(settings.storage.session.backend, StoreBackend::Redis);
}

#[test]
fn defaults_have_the_documented_values() {
    let s = Settings::default();
    assert!(s.jobs.hatchet.enabled);
    assert_eq!(s.jobs.hatchet.server_url, "http://localhost:7077");
    assert_eq!(s.jobs.hatchet.api_key, None);
    // Unset: the workflow's `#[step]` declarations stand (see `workflow_definition`).
    assert_eq!(
        (
            s.jobs.hatchet.retry_max_attempts,
            s.jobs.hatchet.retry_backoff_seconds,
            s.jobs.hatchet.session_concurrency
        ),
        (None, None, None)
    );
    assert_eq!(s.jobs.hatchet.retries(), None);
    assert_eq!(
        s.storage.session.connection_url.expose(),
        "redis://127.0.0.1:6379"
    );
    assert_eq!(s.session.lock.ttl().as_millis(), 30_000);
    assert_eq!(s.session.lock.blocking_timeout().as_millis(), 5_000);
    assert_eq!(
        (s.accumulation.min_wait_ms, s.accumulation.max_wait_ms),
        (200, 3000)
    );
    assert_eq!(s.brain.kind, BrainKind::Echo);
}

// ---- precedence ----

const BASE: &str = r#"
[jobs.hatchet]
server_url = "http://base:7077"
worker_concurrency = 4
retry_max_attempts = 2
[storage.session]
key_prefix = "base"
pool_size = 3
"#;

const OVERLAY: &str = r#"
[jobs.hatchet]
server_url = "http://overlay:7077"
worker_concurrency = 6
[storage.session]
key_prefix = "overlay"
"#;

#[test]
fn env_file_overrides_default_and_keeps_siblings() {
    let dir = dir_with(&[("default.toml", BASE), ("staging.toml", OVERLAY)]);
    let s = load_from(dir.path(), &vars(&[("RUCHE_ENV", "staging")]))
        .unwrap()
        .settings;
    assert_eq!(s.jobs.hatchet.server_url, "http://overlay:7077");
    assert_eq!(s.jobs.hatchet.worker_concurrency, 6);
    assert_eq!(s.jobs.hatchet.retry_max_attempts, Some(2));
    assert_eq!(s.storage.session.key_prefix, "overlay");
    assert_eq!(s.storage.session.pool_size, 3);
}

#[test]
fn variables_override_both_files_leaf_by_leaf() {
    let dir = dir_with(&[("default.toml", BASE), ("staging.toml", OVERLAY)]);
    let loaded = load_from(
        dir.path(),
        &vars(&[
            ("RUCHE_ENV", "staging"),
            ("RUCHE_JOBS__HATCHET__WORKER_CONCURRENCY", "8"),
            ("ruche_storage__session__pool_size", "5"),
            ("UNRELATED", "1"),
        ]),
    )
    .unwrap();
    let s = loaded.settings;
    assert_eq!(s.jobs.hatchet.worker_concurrency, 8);
    assert_eq!(s.jobs.hatchet.server_url, "http://overlay:7077");
    assert_eq!(s.jobs.hatchet.retry_max_attempts, Some(2));
    assert_eq!(s.storage.session.pool_size, 5);
    assert_eq!(s.storage.session.key_prefix, "overlay");
    assert_eq!(
        loaded.overrides,
        vec![
            "RUCHE_JOBS__HATCHET__WORKER_CONCURRENCY".to_owned(),
            "RUCHE_STORAGE__SESSION__POOL_SIZE".to_owned()
        ]
    );
}

#[test]
fn a_json_variable_sets_a_section_and_a_leaf_variable_beats_it() {
    let s = load_shipped(&[
        (
            "RUCHE_JOBS",
            r#"{"hatchet": {"server_url": "http://json:7077", "worker_concurrency": 7}}"#,
        ),
        ("RUCHE_JOBS__HATCHET__WORKER_CONCURRENCY", "9"),
    ])
    .unwrap();
    assert_eq!(s.jobs.hatchet.server_url, "http://json:7077");
    assert_eq!(s.jobs.hatchet.worker_concurrency, 9);
    assert_eq!(s.jobs.hatchet.retry_max_attempts, None);
}

#[test]
fn variables_are_parsed_laxly() {
    let s = load_shipped(&[
        ("RUCHE_JOBS__HATCHET__ENABLED", "no"),
        ("RUCHE_OBSERVABILITY__LOGGING__LEVEL", "ERROR"),
        ("RUCHE_ACCUMULATION__CHANNEL_DEFAULTS__KIOSK", "450"),
        ("RUCHE_SESSION__LOCK__BLOCKING_TIMEOUT_MS", "0"),
        ("RUCHE_JOBS__HATCHET__SESSION_CONCURRENCY", "false"),
        ("RUCHE_JOBS__HATCHET__RETRY_MAX_ATTEMPTS", "4"),
    ])
    .unwrap();
    assert!(!s.jobs.hatchet.enabled);
    assert_eq!(s.jobs.hatchet.session_concurrency, Some(false));
    assert_eq!(s.jobs.hatchet.retries(), Some(3));
    assert_eq!(s.observability.logging.level, LogLevel::Error);
    assert_eq!(s.accumulation.channel_defaults.get("kiosk"), Some(&450));
    assert_eq!(s.session.lock.blocking_timeout_ms, 0);
    // A custom table replaces the standard one.
    let manager = s.accumulation.turn_manager();
    assert_eq!(manager.channel_default_ms("kiosk"), 450);
    assert_eq!(manager.channel_default_ms("whatsapp"), 800);
}

#[test]
fn numeric_looking_secrets_stay_strings() {
    let s = load_shipped(&[("RUCHE_JOBS__HATCHET__API_KEY", "12345")]).unwrap();
    assert_eq!(
        s.jobs.hatchet.api_key.as_ref().map(Secret::expose),
        Some("12345")
    );
}

#[test]
fn unknown_keys_are_ignored() {
    let dir = dir_with(&[(
        "default.toml",
        "[glossary]\nterm = 1\n[jobs.hatchet]\ncron_expire_fields = \"*\"\n",
    )]);
    assert_eq!(
        load_from(dir.path(), &vars(&[])).unwrap().settings,
        Settings::default()
    );
}

#[test]
fn settings_feed_the_turn_limits() {
    let s = load_shipped(&[("RUCHE_ACCUMULATION__MAX_MESSAGES_PER_TURN", "7")]).unwrap();
    let limits = s.accumulation.turn_limits();
    assert_eq!((limits.max_messages, limits.max_window_ms), (7, 60_000));
}

// ---- invalid values ----

#[test]
fn unknown_backend_names_key_and_accepted_values() {
    let text = error_text(&[("RUCHE_STORAGE__SESSION__BACKEND", "postgres")]);
    let expected = "`storage.session.backend`: unknown value `postgres`; accepted: redis, memory";
    assert!(text.contains(expected), "{text}");
}

#[test]
fn inmemory_is_accepted_as_the_original_spelling() {
    let s = load_shipped(&[("RUCHE_STORAGE__SESSION__BACKEND", "inmemory")]).unwrap();
    assert_eq!(s.storage.session.backend, StoreBackend::Memory);
}

#[test]
fn unknown_level_lists_the_levels() {
    let text = error_text(&[("RUCHE_OBSERVABILITY__LOGGING__LEVEL", "loud")]);
    let expected = "`observability.logging.level`: unknown value `loud`; \
                    accepted: trace, debug, info, warning, warn, error, critical";
    assert!(text.contains(expected), "{text}");
}

#[test]
fn unknown_brain_kind_and_format_are_refused() {
    let text = error_text(&[("RUCHE_BRAIN__KIND", "focal")]);
    let expected = "`brain.kind`: unknown value `focal`; accepted: echo, http";
    assert!(text.contains(expected), "{text}");
    let text = error_text(&[("RUCHE_OBSERVABILITY__LOGGING__FORMAT", "xml")]);
    let expected = "`observability.logging.format`: unknown value `xml`; accepted: json, console";
    assert!(text.contains(expected), "{text}");
}

#[test]
fn out_of_range_values_name_the_key_and_range() {
    let text = error_text(&[("RUCHE_JOBS__HATCHET__WORKER_CONCURRENCY", "200")]);
    assert!(
        text.contains(
            "`jobs.hatchet.worker_concurrency` = 200 is out of range; accepted: 1 to 100"
        ),
        "{text}"
    );
    let text = error_text(&[("RUCHE_JOBS__HATCHET__RETRY_MAX_ATTEMPTS", "0")]);
    assert!(
        text.contains("`jobs.hatchet.retry_max_attempts` = 0"),
        "{text}"
    );
}

#[test]
fn every_violation_is_reported_at_once() {
    let text = error_text(&[
        ("RUCHE_ACCUMULATION__MIN_WAIT_MS", "5000"),
        ("RUCHE_SESSION__LOCK__HEARTBEAT_INTERVAL_MS", "40000"),
    ]);
    assert!(text.contains("`accumulation.min_wait_ms` = 5000"), "{text}");
    assert!(
        text.contains("`session.lock.heartbeat_interval_ms` = 40000"),
        "{text}"
    );
}

#[test]
fn wrong_type_names_the_key() {
    let text = error_text(&[("RUCHE_SESSION__LOCK__TTL_MS", "soon")]);
    assert!(text.contains("session.lock.ttl_ms"), "{text}");
}

#[test]
fn http_brain_requires_a_url() {
    let text = error_text(&[("RUCHE_BRAIN__KIND", "http")]);
    assert!(text.contains("`brain.url` is required"), "{text}");
    let s = load_shipped(&[
        ("RUCHE_BRAIN__KIND", "http"),
        ("RUCHE_BRAIN__URL", "http://brain:8080/think"),
    ])
    .unwrap();
    assert_eq!(s.brain.url.unwrap().expose(), "http://brain:8080/think");
}

#[test]
fn a_redis_cluster_url_is_accepted_and_its_nodes_checked() {
    for url in [
        "redis+cluster://10.0.0.1:7000,10.0.0.2:7001",
        "redis://10.0.0.1:7000,redis://10.0.0.2:7001",
        "rediss://u:pw@10.0.0.1:7000,10.0.0.2:7001",
    ] {
        let s = load_shipped(&[("RUCHE_STORAGE__SESSION__CONNECTION_URL", url)]).unwrap();
        assert_eq!(s.storage.session.connection_url.expose(), url);
    }
    let text = error_text(&[(
        "RUCHE_STORAGE__SESSION__CONNECTION_URL",
        "redis://:pw@10.0.0.1:7000,http://10.0.0.2:7001",
    )]);
    assert!(
        text.contains("storage.session.connection_url") && text.contains("redis+cluster://"),
        "{text}"
    );
    assert!(!text.contains(":pw@"), "{text}");
}

#[test]
fn missing_default_file_is_an_error() {
    let dir = dir_with(&[("development.toml", "")]);
    let err = load_from(dir.path(), &vars(&[])).unwrap_err();
    assert!(
        matches!(err, ConfigError::MissingDefaultFile(ref path) if path.ends_with("default.toml")),
        "{err}"
    );
}

#[test]
fn env_name_must_be_a_plain_name() {
    let err = load_shipped(&[("RUCHE_ENV", "../secrets")]).unwrap_err();
    assert!(matches!(err, ConfigError::InvalidEnvName(_)), "{err}");
}

#[test]
fn broken_toml_names_the_file() {
    let dir = dir_with(&[("default.toml", "[jobs.hatchet\nenabled = true")]);
    let text = load_from(dir.path(), &vars(&[])).unwrap_err().to_string();
    assert!(text.contains("default.toml"), "{text}");
}

// ---- secrets ----

#[test]
fn debug_output_never_contains_secrets() {
    let s = load_shipped(&[
        ("RUCHE_JOBS__HATCHET__API_KEY", "hatchet-token-42"),
        (
            "RUCHE_STORAGE__SESSION__CONNECTION_URL",
            "redis://worker:s3cr3t-pw@redis:6379/0",
        ),
        ("RUCHE_BRAIN__KIND", "http"),
        ("RUCHE_BRAIN__URL", "https://bot:brain-pw@brain/think"),
    ])
    .unwrap();
    let dump = format!("{s:?} {s:#?}");
    for secret in ["hatchet-token-42", "s3cr3t-pw", "brain-pw"] {
        assert!(!dump.contains(secret), "{secret} leaked");
    }
    assert!(
        dump.contains("redis://worker:[REDACTED]@redis:6379/0"),
        "{dump}"
    );
    assert!(dump.contains("Secret([REDACTED])"), "{dump}");
    assert_eq!(s.jobs.hatchet.api_key.unwrap().expose(), "hatchet-token-42");
    assert_eq!(
        s.storage.session.connection_url.expose(),
        "redis://worker:s3cr3t-pw@redis:6379/0"
    );
}

#[test]
fn errors_never_contain_secrets() {
    let text = error_text(&[(
        "RUCHE_STORAGE__SESSION__CONNECTION_URL",
        "http://u:topsecret@redis",
    )]);
    assert!(
        text.contains("storage.session.connection_url") && !text.contains("topsecret"),
        "{text}"
    );
    let dir = dir_with(&[("default.toml", "[jobs.hatchet]\napi_key = 987654321\n")]);
    let text = load_from(dir.path(), &vars(&[])).unwrap_err().to_string();
    assert!(
        text.contains("jobs.hatchet.api_key") && !text.contains("987654321"),
        "{text}"
    );
}

#[test]
fn url_redaction_rules() {
    assert_eq!(
        redact_url_password("redis://:pw@h:6379"),
        "redis://:[REDACTED]@h:6379"
    );
    assert_eq!(
        redact_url_password("redis://u:p@ss@h/0?x=1"),
        "redis://u:[REDACTED]@h/0?x=1"
    );
    assert_eq!(redact_url_password("redis://h:6379"), "redis://h:6379");
    assert_eq!(redact_url_password("redis://user@h"), "redis://user@h");
    // A Redis Cluster's nodes: every password goes, a comma inside a password does not split the URL.
    assert_eq!(
        redact_url_password("redis://:pw1@a:7000,redis://u:pw2@b:7001/0"),
        "redis://:[REDACTED]@a:7000,redis://u:[REDACTED]@b:7001/0"
    );
    assert_eq!(
        redact_url_password("redis+cluster://u:p,w@a:7000,b:7001"),
        "redis+cluster://u:[REDACTED]@a:7000,b:7001"
    );
    assert_eq!(
        redact_url_password("redis://:pw@a:7000,b:7001"),
        "redis://:[REDACTED]@a:7000,b:7001"
    );
    assert_eq!(
        ConnectionUrl::new("rediss://a:b@c").to_string(),
        "rediss://a:[REDACTED]@c"
    );
    assert_eq!(Secret::new("x").to_string(), "[REDACTED]");
}

// ---- directory rule ----

#[test]
fn config_dir_variable_wins_and_must_exist() {
    let dir = dir_with(&[("default.toml", "")]);
    let cwd = tempfile::tempdir().unwrap();
    let found = locate_config_dir(
        &vars(&[("RUCHE_CONFIG_DIR", dir.path().to_str().unwrap())]),
        cwd.path(),
        None,
    );
    assert_eq!(found.unwrap(), dir.path());
    let missing = cwd.path().join("nope");
    let err = locate_config_dir(
        &vars(&[("RUCHE_CONFIG_DIR", missing.to_str().unwrap())]),
        cwd.path(),
        None,
    );
    assert!(matches!(err, Err(ConfigError::MissingConfigDir(path)) if path == missing));
}

#[test]
fn config_dir_is_searched_in_parents_then_next_to_the_binary() {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join("config")).unwrap();
    std::fs::write(root.path().join("config/default.toml"), "").unwrap();
    let deep = root.path().join("a/b/c");
    std::fs::create_dir_all(&deep).unwrap();
    assert_eq!(
        locate_config_dir(&vars(&[]), &deep, None).unwrap(),
        root.path().join("config")
    );

    let install = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(install.path().join("bin/config")).unwrap();
    std::fs::write(install.path().join("bin/config/default.toml"), "").unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let exe = install.path().join("bin/ruche-worker");
    assert_eq!(
        locate_config_dir(&vars(&[]), elsewhere.path(), Some(&exe)).unwrap(),
        install.path().join("bin/config")
    );
}

#[test]
fn config_dir_falls_back_to_the_crate_directory() {
    let elsewhere = tempfile::tempdir().unwrap();
    assert_eq!(
        locate_config_dir(&vars(&[]), elsewhere.path(), None).unwrap(),
        shipped_dir()
    );
}
