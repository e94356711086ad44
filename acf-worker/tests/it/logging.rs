//! Log line shape, level filtering, span fields and secret redaction, captured through a test writer.

use std::io::Write;
use std::sync::{Arc, Mutex};

use acf_worker::logging::{LogFormat, LogLevel, LoggingConfig, layer};
use serde_json::{Map, Value};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;

/// Collects everything written, one `write_all` per line.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

struct CaptureWriter(Arc<Mutex<Vec<u8>>>);

impl Write for CaptureWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Capture {
    type Writer = CaptureWriter;
    fn make_writer(&'a self) -> CaptureWriter {
        CaptureWriter(self.0.clone())
    }
}

impl Capture {
    fn lines(&self) -> Vec<String> {
        String::from_utf8(self.0.lock().unwrap().clone())
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    fn objects(&self) -> Vec<Map<String, Value>> {
        self.lines()
            .iter()
            .map(|line| match serde_json::from_str::<Value>(line).unwrap() {
                Value::Object(map) => map,
                other => panic!("not an object: {other}"),
            })
            .collect()
    }
}

fn capture(level: LogLevel, format: LogFormat, body: impl FnOnce()) -> Capture {
    let out = Capture::default();
    let config = LoggingConfig { level, format };
    let subscriber = tracing_subscriber::registry().with(layer(&config, out.clone()));
    tracing::subscriber::with_default(subscriber, body);
    out
}

const SESSION: &str = "550e8400-e29b-41d4-a716-446655440000:agent:user:whatsapp";
const TURN: &str = "550e8400-e29b-41d4-a716-446655440000";

#[test]
fn json_line_has_timestamp_level_event_and_flat_fields_in_order() {
    let turn = uuid::Uuid::parse_str(TURN).unwrap();
    let out = capture(LogLevel::Info, LogFormat::Json, || {
        tracing::info!(session_key = SESSION, turn_id = %turn, fence = 3_u64, retry = true, "mutex_acquired");
    });
    let lines = out.lines();
    assert_eq!(lines.len(), 1);
    let line = &lines[0];
    let prefix = r#"{"timestamp":""#;
    assert!(line.starts_with(prefix), "{line}");
    let rest = &line[prefix.len()..];
    let (timestamp, rest) = rest.split_once('"').unwrap();
    assert!(
        acf_worker::models::parse_timestamp(timestamp).is_ok() && timestamp.ends_with('Z'),
        "{timestamp}"
    );
    assert_eq!(
        rest,
        format!(
            r#","level":"info","event":"mutex_acquired","session_key":"{SESSION}","turn_id":"{TURN}","fence":3,"retry":true}}"#
        )
    );
}

#[test]
fn ids_and_timestamps_are_not_mangled() {
    // The original's phone-number regex rewrote `…-a716-446655440000` as `…-a[PHONE]` and broke ISO dates.
    let out = capture(LogLevel::Info, LogFormat::Json, || {
        tracing::info!(
            message_id = TURN,
            at = "2025-01-15T10:30:00.500000Z",
            phone_like = "(555) 123-4567 890",
            "message_stored"
        );
    });
    let object = &out.objects()[0];
    assert_eq!(object["message_id"], TURN);
    assert_eq!(object["at"], "2025-01-15T10:30:00.500000Z");
    assert_eq!(object["phone_like"], "(555) 123-4567 890");
}

#[test]
fn secrets_are_redacted_by_key_name() {
    let out = capture(LogLevel::Info, LogFormat::Json, || {
        tracing::info!(
            api_key = "hatchet-key",
            token = "lease-token",
            password = "pw",
            authorization = "Bearer abc",
            client_secret = "cs",
            refresh_token = "rt",
            http.api_key = "nested",
            session_key = SESSION,
            idempotency_key = "refund:1:turn_group:x",
            "client_configured"
        );
    });
    let line = &out.lines()[0];
    for secret in [
        "hatchet-key",
        "lease-token",
        "\"pw\"",
        "Bearer abc",
        "\"cs\"",
        "\"rt\"",
        "nested",
    ] {
        assert!(!line.contains(secret), "{secret} leaked: {line}");
    }
    let object = &out.objects()[0];
    for key in [
        "api_key",
        "token",
        "password",
        "authorization",
        "client_secret",
        "refresh_token",
        "http.api_key",
    ] {
        assert_eq!(object[key], "[REDACTED]", "{key}");
    }
    assert_eq!(object["session_key"], SESSION);
    assert_eq!(object["idempotency_key"], "refund:1:turn_group:x");
}

#[test]
fn level_comes_from_configuration() {
    let out = capture(LogLevel::Warning, LogFormat::Json, || {
        tracing::debug!("noise");
        tracing::info!("still_noise");
        tracing::warn!(session_key = SESSION, "mutex_acquisition_timed_out");
        tracing::error!(error = "boom", "brain_failed");
    });
    let events: Vec<(String, String)> = out
        .objects()
        .iter()
        .map(|o| {
            (
                o["level"].as_str().unwrap().to_owned(),
                o["event"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        events,
        [
            (
                "warning".to_owned(),
                "mutex_acquisition_timed_out".to_owned()
            ),
            ("error".to_owned(), "brain_failed".to_owned())
        ]
    );
}

#[test]
fn debug_level_writes_debug_but_caps_transport_crates() {
    let out = capture(LogLevel::Debug, LogFormat::Json, || {
        tracing::debug!(ttl_ms = 30_000_u64, "mutex_extended");
        tracing::trace!("too_fine");
        tracing::debug!(target: "h2", "frame_sent");
        tracing::info!(target: "h2", "connection_opened");
    });
    let events: Vec<String> = out
        .objects()
        .iter()
        .map(|o| o["event"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(events, ["mutex_extended", "connection_opened"]);
    assert_eq!(out.objects()[0]["level"], "debug");
}

#[test]
fn span_fields_are_included_and_event_fields_win() {
    let out = capture(LogLevel::Info, LogFormat::Json, || {
        let span = tracing::info_span!(
            "turn",
            turn_id = TURN,
            step = "accumulate",
            attempt = tracing::field::Empty
        );
        let _guard = span.enter();
        span.record("attempt", 2_u64);
        tracing::info!(step = "run_agent", "brain_starting");
    });
    let line = &out.lines()[0];
    let tail = line.split_once(r#""event":"brain_starting","#).unwrap().1;
    assert_eq!(
        tail,
        format!(r#""turn_id":"{TURN}","step":"run_agent","attempt":2}}"#)
    );
}

#[test]
fn reserved_names_do_not_overwrite_the_header() {
    let out = capture(LogLevel::Info, LogFormat::Json, || {
        tracing::info!(level = "fake", timestamp = "fake", "turn_committed");
    });
    let object = &out.objects()[0];
    assert_eq!(object["level"], "info");
    assert_eq!(object["event"], "turn_committed");
    assert_eq!(object["field.level"], "fake");
    assert_eq!(object["field.timestamp"], "fake");
}

#[test]
fn errors_and_debug_values_are_recorded_as_text() {
    let err = std::io::Error::other("redis unreachable");
    let out = capture(LogLevel::Info, LogFormat::Json, || {
        tracing::error!(error = &err as &dyn std::error::Error, kinds = ?["a", "b"], ratio = 0.5, "store_backend_unavailable");
    });
    let object = &out.objects()[0];
    assert_eq!(object["error"], "redis unreachable");
    assert_eq!(object["kinds"], r#"["a", "b"]"#);
    assert_eq!(object["ratio"], 0.5);
}

#[test]
fn console_format_is_one_readable_line_with_redaction() {
    let out = capture(LogLevel::Info, LogFormat::Console, || {
        tracing::warn!(
            session_key = SESSION,
            api_key = "k-123",
            waited_ms = 5000_u64,
            "mutex_acquisition_timed_out"
        );
    });
    let lines = out.lines();
    assert_eq!(lines.len(), 1);
    let (timestamp, rest) = lines[0].split_once(' ').unwrap();
    assert!(timestamp.ends_with('Z'), "{timestamp}");
    assert_eq!(
        rest,
        format!(
            "WARNING mutex_acquisition_timed_out session_key={SESSION} api_key=[REDACTED] waited_ms=5000"
        )
    );
}

#[test]
fn init_installs_once_and_refuses_a_second_subscriber() {
    let config = LoggingConfig {
        level: LogLevel::Error,
        format: LogFormat::Json,
    };
    // The only test in this binary that touches the global subscriber; the others use thread-local defaults.
    acf_worker::logging::init(&config).unwrap();
    let second = acf_worker::logging::init(&config).unwrap_err();
    assert!(
        second
            .to_string()
            .starts_with("logging is already initialised"),
        "{second}"
    );
}
