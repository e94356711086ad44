//! The event router: pattern rules, listener isolation (a failing or panicking listener is logged and the others
//! still run), removal, and the sinks `[events]` configures (the events stream on the shared Redis).

use crate::support;

use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};

use acf_worker::config::{EnvVars, load_from};
use acf_worker::events::{
    AcfEvent, AcfEventType, EventListener, EventRouter, EventScope, ListenerError,
    router_from_settings, validate_pattern,
};
use acf_worker::stores::{Backend, RedisConnectOptions, StoreSettings};
use async_trait::async_trait;
use serde_json::json;
use uuid::Uuid;

/// Keeps the types of the events it receives.
struct Recorder {
    name: String,
    seen: Mutex<Vec<AcfEventType>>,
}

impl Recorder {
    fn new(name: &str) -> Arc<Self> {
        Arc::new(Self {
            name: name.to_owned(),
            seen: Mutex::new(Vec::new()),
        })
    }

    fn seen(&self) -> Vec<AcfEventType> {
        self.seen.lock().unwrap().clone()
    }
}

#[async_trait]
impl EventListener for Recorder {
    fn name(&self) -> &str {
        &self.name
    }

    async fn handle(&self, event: &AcfEvent, _: &EventScope<'_>) -> Result<(), ListenerError> {
        self.seen.lock().unwrap().push(event.event_type);
        Ok(())
    }
}

/// Fails every event.
struct Failing;

#[async_trait]
impl EventListener for Failing {
    fn name(&self) -> &str {
        "failing"
    }

    async fn handle(&self, _: &AcfEvent, _: &EventScope<'_>) -> Result<(), ListenerError> {
        Err("the analytics endpoint is down".into())
    }
}

/// Panics on every event.
struct Panicking;

#[async_trait]
impl EventListener for Panicking {
    fn name(&self) -> &str {
        "panicking"
    }

    async fn handle(&self, _: &AcfEvent, _: &EventScope<'_>) -> Result<(), ListenerError> {
        panic!("listener bug")
    }
}

fn event(event_type: AcfEventType) -> AcfEvent {
    AcfEvent::new(event_type, Uuid::new_v4(), "t:a:i:web")
}

#[tokio::test]
async fn events_reach_exactly_the_listeners_whose_pattern_matches() {
    let router = EventRouter::new();
    let all = Recorder::new("all");
    let tools = Recorder::new("tools");
    let executed = Recorder::new("executed");
    let started = Recorder::new("started");
    router.register("*", all.clone()).unwrap();
    router.register("tool.*", tools.clone()).unwrap();
    router.register("tool.executed", executed.clone()).unwrap();
    router.register("turn.started", started.clone()).unwrap();

    for t in [
        AcfEventType::ToolExecuted,
        AcfEventType::TurnStarted,
        AcfEventType::ToolFailed,
        AcfEventType::SessionCreated,
    ] {
        router.route(&event(t), &EventScope::detached()).await;
    }
    use AcfEventType as T;
    assert_eq!(
        all.seen(),
        [
            T::ToolExecuted,
            T::TurnStarted,
            T::ToolFailed,
            T::SessionCreated
        ]
    );
    assert_eq!(tools.seen(), [T::ToolExecuted, T::ToolFailed]);
    assert_eq!(executed.seen(), [T::ToolExecuted]);
    assert_eq!(started.seen(), [T::TurnStarted]);
    assert_eq!(router.listener_count(T::ToolExecuted), 3);
    assert_eq!(router.listener_count(T::MutexReleased), 1);
}

#[test]
fn patterns_that_can_match_nothing_are_refused_by_name() {
    for good in [
        "*",
        "tool.*",
        "mutex.*",
        "tool.executed",
        "turn.message_absorbed",
    ] {
        assert!(validate_pattern(good).is_ok(), "{good} is a valid pattern");
    }
    for bad in [
        "",
        ".*",
        "tool.",
        "tools.*",
        "tool.ran",
        "TOOL.EXECUTED",
        "tool.*.x",
    ] {
        let error = validate_pattern(bad).expect_err(bad);
        assert!(error.to_string().contains(&format!("`{bad}`")), "{error}");
    }
    let router = EventRouter::new();
    assert!(router.register("", Recorder::new("r")).is_err());
    assert_eq!(router.listener_count(AcfEventType::TurnStarted), 0);
}

/// A writer the test reads back.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn lines(&self) -> Vec<String> {
        String::from_utf8_lossy(&self.0.lock().unwrap())
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

#[tokio::test]
async fn a_failing_or_panicking_listener_is_logged_and_the_others_still_run() {
    let out = Captured::default();
    let writer = out.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let router = EventRouter::new();
    let before = Recorder::new("before");
    let after = Recorder::new("after");
    router.register("*", before.clone()).unwrap();
    router.register("tool.*", Arc::new(Failing)).unwrap();
    router
        .register("tool.executed", Arc::new(Panicking))
        .unwrap();
    router.register("*", after.clone()).unwrap();

    let tool = event(AcfEventType::ToolExecuted);
    router.route(&tool, &EventScope::detached()).await;
    // The router is still usable after a listener panicked.
    router
        .route(&event(AcfEventType::TurnCompleted), &EventScope::detached())
        .await;

    use AcfEventType as T;
    assert_eq!(before.seen(), [T::ToolExecuted, T::TurnCompleted]);
    assert_eq!(after.seen(), [T::ToolExecuted, T::TurnCompleted]);
    let failures: Vec<String> = out
        .lines()
        .into_iter()
        .filter(|line| line.contains("event_listener_failed"))
        .collect();
    assert_eq!(failures.len(), 2, "{failures:#?}");
    for (listener, cause) in [
        ("failing", "the analytics endpoint is down"),
        ("panicking", "the listener panicked: listener bug"),
    ] {
        let line = failures
            .iter()
            .find(|line| line.contains(&format!("listener=\"{listener}\"")))
            .unwrap_or_else(|| panic!("no failure logged for {listener}: {failures:#?}"));
        assert!(line.contains(cause), "{line}");
        assert!(line.contains("event_type=\"tool.executed\""), "{line}");
        assert!(line.contains(&tool.logical_turn_id.to_string()), "{line}");
    }
}

#[tokio::test]
async fn unregister_removes_only_the_named_listener_of_that_pattern() {
    let router = EventRouter::new();
    let a = Recorder::new("a");
    let b = Recorder::new("b");
    router.register("turn.*", a.clone()).unwrap();
    router.register("turn.*", b.clone()).unwrap();
    router.register("*", a.clone()).unwrap();
    router
        .route(&event(AcfEventType::TurnStarted), &EventScope::detached())
        .await;
    assert_eq!(a.seen().len(), 1, "two matching patterns, one delivery");
    assert!(router.unregister("turn.*", "a"));
    assert!(!router.unregister("turn.*", "a"), "already removed");
    assert!(!router.unregister("never.registered", "a"));
    router
        .route(&event(AcfEventType::TurnStarted), &EventScope::detached())
        .await;
    // `a` still listens on `*`; `b` on `turn.*`.
    assert_eq!(a.seen(), [AcfEventType::TurnStarted; 2]);
    assert_eq!(b.seen(), [AcfEventType::TurnStarted; 2]);
}

/// Settings from the shipped configuration with `overrides` as `RUCHE_*` variables.
fn settings(overrides: &[(&str, &str)]) -> Result<acf_worker::config::Settings, String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let vars: Vec<(String, String)> = overrides
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    load_from(&dir, &EnvVars::new(vars))
        .map(|loaded| loaded.settings)
        .map_err(|error| error.to_string())
}

#[test]
fn events_configuration_defaults_to_the_log_and_refuses_bad_values_by_name() {
    let defaults = settings(&[]).unwrap().events;
    assert_eq!(defaults, acf_worker::config::EventsSettings::default());
    assert_eq!(defaults.sinks, [acf_worker::config::EventSink::Log]);
    assert_eq!(defaults.patterns, ["*"]);

    let chosen = settings(&[
        (
            "RUCHE_EVENTS__SINKS",
            r#"["redis_stream","hatchet_stream"]"#,
        ),
        ("RUCHE_EVENTS__PATTERNS", r#"["tool.*","turn.completed"]"#),
        ("RUCHE_EVENTS__STREAM_MAX_LEN", "500"),
    ])
    .unwrap()
    .events;
    assert_eq!(chosen.patterns, ["tool.*", "turn.completed"]);
    assert_eq!(chosen.stream_max_len, 500);

    for (vars, field) in [
        (
            vec![("RUCHE_EVENTS__PATTERNS", r#"["tools.*"]"#)],
            "`events.patterns`",
        ),
        (
            vec![("RUCHE_EVENTS__PATTERNS", r#"[""]"#)],
            "`events.patterns`",
        ),
        (vec![("RUCHE_EVENTS__PATTERNS", "[]")], "`events.patterns`"),
        (
            vec![("RUCHE_EVENTS__SINKS", r#"["log","log"]"#)],
            "`events.sinks`",
        ),
        (vec![("RUCHE_EVENTS__SINKS", r#"["kafka"]"#)], "sinks"),
        (
            vec![("RUCHE_EVENTS__STREAM_MAX_LEN", "0")],
            "`events.stream_max_len`",
        ),
    ] {
        let error = settings(&vars).expect_err(&format!("{vars:?} is refused"));
        assert!(error.contains(field), "{vars:?}: {error}");
    }
}

#[tokio::test]
async fn the_redis_stream_sink_appends_documented_fields_in_order_and_trims() {
    let prefix = support::unique("events");
    let backend = Backend::redis(
        support::SHARED_REDIS_URL,
        StoreSettings {
            key_prefix: prefix.clone(),
            ..StoreSettings::default()
        },
        &RedisConnectOptions::default(),
    )
    .await
    .expect("the shared Redis at 127.0.0.1:6379");
    let events = settings(&[
        ("RUCHE_EVENTS__SINKS", r#"["redis_stream"]"#),
        // Overlapping patterns: an event matching both is still appended once.
        (
            "RUCHE_EVENTS__PATTERNS",
            r#"["turn.*","tool.executed","tool.*"]"#,
        ),
        ("RUCHE_EVENTS__STREAM_MAX_LEN", "3"),
    ])
    .unwrap()
    .events;
    let router = router_from_settings(&events, &backend.stores).unwrap();
    let turn_id = Uuid::new_v4();
    let routing = acf_worker::events::Routing {
        tenant_id: Uuid::new_v4(),
        agent_id: Uuid::new_v4(),
        interlocutor_id: Uuid::new_v4(),
    };
    let sent = vec![
        AcfEvent::turn_started(turn_id, "s", &routing, 1, "web"),
        AcfEvent::new(AcfEventType::SessionCreated, turn_id, "s"), // matches no pattern
        AcfEvent::new(AcfEventType::ToolExecuted, turn_id, "s")
            .with_payload(json!({"tool_name": "create_order", "policy": "irreversible"})),
        AcfEvent::new(AcfEventType::MutexAcquired, turn_id, "s"), // matches no pattern
        AcfEvent::turn_completed(turn_id, "s", &routing, "done", 1),
        AcfEvent::turn_failed(turn_id, "s", &routing, "boom", "brain_failed"),
    ];
    for event in &sent {
        router.route(event, &EventScope::detached()).await;
    }
    let stored = backend
        .stores
        .events
        .read_events_after("0", 100)
        .await
        .unwrap();
    let stored: Vec<AcfEvent> = stored.into_iter().map(|(_, e)| e).collect();
    // Four matched; the stream keeps the last three, in order, round-tripping exactly.
    assert_eq!(stored, [sent[2].clone(), sent[4].clone(), sent[5].clone()]);

    let mut conn = support::raw_connection(support::SHARED_REDIS_URL).await;
    let rows: Vec<(String, Vec<String>)> = redis::cmd("XRANGE")
        .arg(format!("{prefix}:events"))
        .arg("-")
        .arg("+")
        .query_async(&mut conn)
        .await
        .unwrap();
    let names = |row: &(String, Vec<String>)| -> Vec<String> {
        row.1.chunks(2).map(|pair| pair[0].clone()).collect()
    };
    assert_eq!(
        names(&rows[0]),
        ["type", "turn_id", "session_key", "timestamp", "payload"],
        "no routing ids on a bare event"
    );
    assert_eq!(
        names(&rows[1]),
        [
            "type",
            "turn_id",
            "session_key",
            "timestamp",
            "tenant_id",
            "agent_id",
            "interlocutor_id",
            "payload"
        ]
    );
    assert_eq!(rows[0].1[1], "tool.executed");
    let payload: serde_json::Value = serde_json::from_str(&rows[0].1[9]).unwrap();
    assert_eq!(payload["tool_name"], "create_order");
    let _: () = redis::cmd("DEL")
        .arg(format!("{prefix}:events"))
        .query_async(&mut conn)
        .await
        .unwrap();
}
