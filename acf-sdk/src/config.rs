//! Client configuration from the same environment variables as the official SDKs (`HATCHET_CLIENT_*`), with
//! the token's claims supplying defaults exactly as Python derives them. The token is never printed.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use base64::Engine as _;

use crate::namespace;

/// Default gRPC message size limit (4 MiB), matching Python and the engine.
pub const DEFAULT_MAX_MESSAGE_LENGTH: usize = 4 * 1024 * 1024;

/// A configuration problem. Messages never contain the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// `HATCHET_CLIENT_TOKEN` is unset or empty.
    #[error(
        "HATCHET_CLIENT_TOKEN is not set: create an API token in the Hatchet dashboard and export it"
    )]
    MissingToken,
    /// The token is not a JWT the SDK can read.
    #[error("HATCHET_CLIENT_TOKEN is malformed: {0}")]
    MalformedToken(&'static str),
    /// A claim needed for a default is missing and its override variable is unset.
    #[error("HATCHET_CLIENT_TOKEN has no `{claim}` claim; set {var} explicitly")]
    MissingClaim {
        /// The claim.
        claim: &'static str,
        /// The variable that would replace it.
        var: &'static str,
    },
    /// A variable has an invalid value.
    #[error("{var} is invalid: {reason}")]
    InvalidValue {
        /// The variable.
        var: &'static str,
        /// Why.
        reason: String,
    },
    /// A TLS file could not be read or is missing.
    #[error("TLS configuration: {0}")]
    Tls(String),
}

/// An API token; `Debug` and `Display` redact it.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl Token {
    /// Wraps a token string.
    pub fn new(token: impl Into<String>) -> Self {
        Self(token.into())
    }
    /// The secret value (for the `authorization` header only).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// The claims the SDK reads from the token (the signature is not verified, as in Python).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
pub struct TokenClaims {
    /// Tenant id.
    pub sub: Option<String>,
    /// REST base URL.
    pub server_url: Option<String>,
    /// gRPC `host:port`.
    pub grpc_broadcast_address: Option<String>,
}

impl TokenClaims {
    /// Decodes the claims: split on `.`, base64url-decode part 2 (padding optional), parse JSON.
    pub fn decode(token: &str) -> Result<Self, ConfigError> {
        if !token.starts_with("ey") {
            return Err(ConfigError::MalformedToken(
                "expected a JWT (it should start with `ey`)",
            ));
        }
        let mut parts = token.split('.');
        let payload = match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some(_), Some(p), Some(_), None) => p,
            _ => {
                return Err(ConfigError::MalformedToken(
                    "expected three `.`-separated parts",
                ));
            }
        };
        let trimmed = payload.trim_end_matches('=');
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(trimmed)
            .map_err(|_| ConfigError::MalformedToken("the claims part is not base64url"))?;
        serde_json::from_slice(&bytes)
            .map_err(|_| ConfigError::MalformedToken("the claims part is not a JSON object"))
    }
}

/// Transport security.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsStrategy {
    /// Server-authenticated TLS (default).
    Tls,
    /// Mutual TLS with a client certificate.
    Mtls,
    /// Plaintext HTTP/2.
    None,
}

/// TLS settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsConfig {
    /// The strategy.
    pub strategy: TlsStrategy,
    /// Client certificate chain (mtls).
    pub cert_file: Option<PathBuf>,
    /// Client key (mtls).
    pub key_file: Option<PathBuf>,
    /// CA bundle (optional for tls, required for mtls).
    pub root_ca_file: Option<PathBuf>,
    /// SNI / authority override (default: host part of `host_port`, else `localhost`).
    pub server_name: String,
}

/// Worker health server settings (`HATCHET_CLIENT_WORKER_HEALTHCHECK_*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthcheckConfig {
    /// Whether the worker serves `/livez`, `/readyz`, `/metrics`.
    pub enabled: bool,
    /// Port (default 8001).
    pub port: u16,
    /// Bind address (default `0.0.0.0`; `none`/empty = all interfaces).
    pub bind_address: String,
}

/// Client configuration. Build with [`ClientConfig::from_env`] or [`ClientConfig::from_token`].
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// The API token.
    pub token: Token,
    /// Tenant id (`HATCHET_CLIENT_TENANT_ID` or claim `sub`).
    pub tenant_id: String,
    /// gRPC target `host:port` (`HATCHET_CLIENT_HOST_PORT` or claim `grpc_broadcast_address`).
    pub host_port: String,
    /// REST base URL (`HATCHET_CLIENT_SERVER_URL` or claim `server_url`).
    pub server_url: String,
    /// Normalised namespace (lower-case, `_`-suffixed, or empty).
    pub namespace: String,
    /// TLS settings.
    pub tls: TlsConfig,
    /// Max inbound message size.
    pub max_recv_message_length: usize,
    /// Max outbound message size (also used to chunk bulk triggers).
    pub max_send_message_length: usize,
    /// Deadline on each `ListenV2` call.
    pub listener_v2_timeout: Option<Duration>,
    /// Labels added to every worker (`HATCHET_CLIENT_WORKER_PRESET_LABELS`, JSON object).
    pub worker_preset_labels: BTreeMap<String, String>,
    /// The worker exits gracefully after this many tasks.
    pub terminate_worker_after_num_tasks: Option<u64>,
    /// Disable forwarding of `tracing` events to the engine.
    pub disable_log_capture: bool,
    /// Capacity of the log forwarding queue.
    pub log_queue_size: usize,
    /// SIGTERM/SIGINT exit immediately instead of draining.
    pub force_shutdown_on_shutdown_signal: bool,
    /// Health server.
    pub healthcheck: HealthcheckConfig,
    /// Attempts of retried unary calls (`HATCHET_CLIENT_TENACITY_MAX_ATTEMPTS`, 0 disables retries).
    pub retry_max_attempts: u32,
    /// Also retry `NOT_FOUND`.
    pub retry_not_found: bool,
    /// Compress requests with gzip from [`crate::channel::GZIP_MIN_BYTES`] on (Python compresses every call;
    /// tiny messages only grow under gzip, and the engine accepts both). Default true.
    pub gzip: bool,
}

impl ClientConfig {
    /// Reads the process environment, then (as Python's settings do) the files `.env`, `.env.hatchet`,
    /// `.env.dev` and `.env.local` in the working directory; variables set in the environment win, and a later
    /// file wins over an earlier one.
    pub fn from_env() -> Result<Self, ConfigError> {
        let mut files = std::collections::HashMap::new();
        for name in [".env", ".env.hatchet", ".env.dev", ".env.local"] {
            if let Ok(text) = std::fs::read_to_string(name) {
                files.extend(parse_dotenv(&text));
            }
        }
        Self::from_lookup(|k| std::env::var(k).ok().or_else(|| files.get(k).cloned()))
    }

    /// A configuration from a token alone (claims supply the address and tenant; TLS as the strategy given).
    pub fn from_token(token: impl Into<String>) -> Result<Self, ConfigError> {
        let token = token.into();
        Self::from_lookup(|k| (k == "HATCHET_CLIENT_TOKEN").then(|| token.clone()))
    }

    /// Reads configuration through `lookup` (variable name → value), for tests and custom sources.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |k: &str| lookup(k).filter(|v| !v.trim().is_empty());
        let token = get("HATCHET_CLIENT_TOKEN").ok_or(ConfigError::MissingToken)?;
        let token = token.trim().to_owned();
        let claims = TokenClaims::decode(&token)?;
        let from_claim = |var: &'static str, claim: &'static str, value: Option<String>| {
            get(var)
                .or(value)
                .ok_or(ConfigError::MissingClaim { claim, var })
        };
        let tenant_id = from_claim("HATCHET_CLIENT_TENANT_ID", "sub", claims.sub)?;
        let host_port = from_claim(
            "HATCHET_CLIENT_HOST_PORT",
            "grpc_broadcast_address",
            claims.grpc_broadcast_address,
        )?;
        let server_url = from_claim("HATCHET_CLIENT_SERVER_URL", "server_url", claims.server_url)?;

        let strategy = match get("HATCHET_CLIENT_TLS_STRATEGY")
            .map(|s| s.to_lowercase())
            .as_deref()
        {
            None | Some("tls") => TlsStrategy::Tls,
            Some("mtls") => TlsStrategy::Mtls,
            // Python treats anything else as plaintext.
            Some(_) => TlsStrategy::None,
        };
        let host = host_port
            .rsplit_once(':')
            .map_or(host_port.as_str(), |(h, _)| h);
        let server_name = get("HATCHET_CLIENT_TLS_SERVER_NAME").unwrap_or_else(|| {
            if host.is_empty() {
                "localhost".to_owned()
            } else {
                host.trim_matches(['[', ']']).to_owned()
            }
        });
        let tls = TlsConfig {
            strategy,
            cert_file: get("HATCHET_CLIENT_TLS_CERT_FILE").map(PathBuf::from),
            key_file: get("HATCHET_CLIENT_TLS_KEY_FILE").map(PathBuf::from),
            root_ca_file: get("HATCHET_CLIENT_TLS_ROOT_CA_FILE").map(PathBuf::from),
            server_name,
        };
        if strategy == TlsStrategy::Mtls
            && (tls.cert_file.is_none() || tls.key_file.is_none() || tls.root_ca_file.is_none())
        {
            return Err(ConfigError::Tls(
                "mtls needs HATCHET_CLIENT_TLS_CERT_FILE, HATCHET_CLIENT_TLS_KEY_FILE and HATCHET_CLIENT_TLS_ROOT_CA_FILE".into(),
            ));
        }

        let preset = match get("HATCHET_CLIENT_WORKER_PRESET_LABELS") {
            None => BTreeMap::new(),
            Some(json) => parse_labels(&json)?,
        };
        let bind = get("HATCHET_CLIENT_WORKER_HEALTHCHECK_BIND_ADDRESS")
            .unwrap_or_else(|| "0.0.0.0".to_owned());
        Ok(Self {
            token: Token(token),
            tenant_id,
            host_port,
            server_url,
            namespace: namespace::normalize(&get("HATCHET_CLIENT_NAMESPACE").unwrap_or_default()),
            tls,
            max_recv_message_length: parse_num(
                &get,
                "HATCHET_CLIENT_GRPC_MAX_RECV_MESSAGE_LENGTH",
            )?
            .unwrap_or(DEFAULT_MAX_MESSAGE_LENGTH),
            max_send_message_length: parse_num(
                &get,
                "HATCHET_CLIENT_GRPC_MAX_SEND_MESSAGE_LENGTH",
            )?
            .unwrap_or(DEFAULT_MAX_MESSAGE_LENGTH),
            listener_v2_timeout: parse_num(&get, "HATCHET_CLIENT_LISTENER_V2_TIMEOUT")?
                .map(Duration::from_secs),
            worker_preset_labels: preset,
            terminate_worker_after_num_tasks: parse_num(
                &get,
                "HATCHET_CLIENT_TERMINATE_WORKER_AFTER_NUM_TASKS",
            )?,
            disable_log_capture: parse_bool(&get, "HATCHET_CLIENT_DISABLE_LOG_CAPTURE")?
                .unwrap_or(false),
            log_queue_size: parse_num(&get, "HATCHET_CLIENT_LOG_QUEUE_SIZE")?.unwrap_or(1000),
            force_shutdown_on_shutdown_signal: parse_bool(
                &get,
                "HATCHET_CLIENT_FORCE_SHUTDOWN_ON_SHUTDOWN_SIGNAL",
            )?
            .unwrap_or(false),
            healthcheck: HealthcheckConfig {
                enabled: parse_bool(&get, "HATCHET_CLIENT_WORKER_HEALTHCHECK_ENABLED")?
                    .unwrap_or(false),
                port: parse_num(&get, "HATCHET_CLIENT_WORKER_HEALTHCHECK_PORT")?.unwrap_or(8001),
                bind_address: if bind.eq_ignore_ascii_case("none") {
                    String::new()
                } else {
                    bind
                },
            },
            retry_max_attempts: parse_num(&get, "HATCHET_CLIENT_TENACITY_MAX_ATTEMPTS")?
                .unwrap_or(5),
            retry_not_found: parse_bool(&get, "HATCHET_CLIENT_TENACITY_RETRY_NOT_FOUND")?
                .unwrap_or(false),
            gzip: true,
        })
    }

    /// Overrides the namespace (normalised like Python).
    #[must_use]
    pub fn with_namespace(mut self, namespace: &str) -> Self {
        self.namespace = namespace::normalize(namespace);
        self
    }

    /// Overrides the TLS strategy.
    #[must_use]
    pub fn with_tls_strategy(mut self, strategy: TlsStrategy) -> Self {
        self.tls.strategy = strategy;
        self
    }

    /// Turns gzip compression of requests on or off (responses are accepted either way).
    #[must_use]
    pub fn with_gzip(mut self, gzip: bool) -> Self {
        self.gzip = gzip;
        self
    }

    /// Overrides the gRPC target.
    #[must_use]
    pub fn with_host_port(mut self, host_port: impl Into<String>) -> Self {
        self.host_port = host_port.into();
        self
    }

    /// Applies the namespace to a workflow name, event key or worker name (Python's `apply_namespace`).
    pub fn apply_namespace(&self, name: &str) -> String {
        namespace::apply(&self.namespace, name)
    }
}

/// `KEY=value` lines; `#` comments, `export ` prefixes and matching quotes are accepted.
fn parse_dotenv(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|line| {
            let line = line.trim();
            let line = line.strip_prefix("export ").unwrap_or(line);
            if line.starts_with('#') {
                return None;
            }
            let (key, value) = line.split_once('=')?;
            let value = value.trim();
            let unquoted = ['"', '\'']
                .iter()
                .find_map(|q| value.strip_prefix(*q).and_then(|v| v.strip_suffix(*q)))
                .unwrap_or(value);
            Some((key.trim().to_owned(), unquoted.to_owned()))
        })
        .collect()
}

fn parse_labels(json: &str) -> Result<BTreeMap<String, String>, ConfigError> {
    let invalid = |reason: String| ConfigError::InvalidValue {
        var: "HATCHET_CLIENT_WORKER_PRESET_LABELS",
        reason,
    };
    let map: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(json).map_err(|e| invalid(format!("expected a JSON object: {e}")))?;
    Ok(map
        .into_iter()
        .map(|(k, v)| (k, v.as_str().map_or_else(|| v.to_string(), str::to_owned)))
        .collect())
}

fn parse_num<T: std::str::FromStr>(
    get: &impl Fn(&str) -> Option<String>,
    var: &'static str,
) -> Result<Option<T>, ConfigError>
where
    T::Err: fmt::Display,
{
    get(var)
        .map(|v| {
            v.trim()
                .parse::<T>()
                .map_err(|e| ConfigError::InvalidValue {
                    var,
                    reason: e.to_string(),
                })
        })
        .transpose()
}

/// Pydantic's boolean parsing.
fn parse_bool(
    get: &impl Fn(&str) -> Option<String>,
    var: &'static str,
) -> Result<Option<bool>, ConfigError> {
    get(var)
        .map(|v| match v.trim().to_lowercase().as_str() {
            "1" | "true" | "t" | "yes" | "y" | "on" => Ok(true),
            "0" | "false" | "f" | "no" | "n" | "off" => Ok(false),
            other => Err(ConfigError::InvalidValue {
                var,
                reason: format!("`{other}` is not a boolean"),
            }),
        })
        .transpose()
}

/// Builds an unsigned JWT-shaped token carrying the given claims (for local engines and tests).
pub fn unsigned_token(claims: &serde_json::Value) -> String {
    let b64 = |v: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
    format!(
        "{}.{}.{}",
        b64(br#"{"alg":"none","typ":"JWT"}"#),
        b64(claims.to_string().as_bytes()),
        b64(b"sig")
    )
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn token() -> String {
        unsigned_token(&serde_json::json!({
            "sub": "707d0855-80ab-4e1f-a156-f1c4546cbf52",
            "server_url": "https://app.example",
            "grpc_broadcast_address": "engine.example:7070",
        }))
    }

    fn cfg(vars: &[(&str, &str)]) -> Result<ClientConfig, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        ClientConfig::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn claims_supply_defaults() {
        let t = token();
        let c = cfg(&[("HATCHET_CLIENT_TOKEN", &t)]).unwrap();
        assert_eq!(c.tenant_id, "707d0855-80ab-4e1f-a156-f1c4546cbf52");
        assert_eq!(c.host_port, "engine.example:7070");
        assert_eq!(c.server_url, "https://app.example");
        assert_eq!(c.tls.strategy, TlsStrategy::Tls);
        assert_eq!(c.tls.server_name, "engine.example");
        assert_eq!(c.max_recv_message_length, 4_194_304);
        assert_eq!(c.retry_max_attempts, 5);
        assert_eq!(c.namespace, "");
    }

    #[test]
    fn env_overrides_claims_and_namespace_is_normalised() {
        let t = token();
        let c = cfg(&[
            ("HATCHET_CLIENT_TOKEN", &t),
            ("HATCHET_CLIENT_HOST_PORT", "127.0.0.1:7077"),
            ("HATCHET_CLIENT_NAMESPACE", "Staging"),
            ("HATCHET_CLIENT_TLS_STRATEGY", "none"),
            (
                "HATCHET_CLIENT_WORKER_PRESET_LABELS",
                r#"{"zone":"eu","gpu":1}"#,
            ),
            ("HATCHET_CLIENT_WORKER_HEALTHCHECK_ENABLED", "True"),
        ])
        .unwrap();
        assert_eq!(c.host_port, "127.0.0.1:7077");
        assert_eq!(c.namespace, "staging_");
        assert_eq!(c.tls.strategy, TlsStrategy::None);
        assert_eq!(c.worker_preset_labels["gpu"], "1");
        assert!(c.healthcheck.enabled);
        assert_eq!(c.apply_namespace("wf"), "staging_wf");
    }

    #[test]
    fn token_errors_never_contain_the_token() {
        assert_eq!(cfg(&[]).unwrap_err(), ConfigError::MissingToken);
        let secret = "eyJhbGciOiJIUzI1NiJ9.@@@notbase64@@@.c2ln";
        let err = cfg(&[("HATCHET_CLIENT_TOKEN", secret)]).unwrap_err();
        assert!(matches!(err, ConfigError::MalformedToken(_)));
        assert!(!err.to_string().contains("@@@"));
        let err = cfg(&[("HATCHET_CLIENT_TOKEN", "not-a-jwt-secret")]).unwrap_err();
        assert!(!err.to_string().contains("secret"));
        let no_claims = unsigned_token(&serde_json::json!({"sub": "t"}));
        let err = cfg(&[("HATCHET_CLIENT_TOKEN", &no_claims)]).unwrap_err();
        assert!(matches!(
            err,
            ConfigError::MissingClaim {
                claim: "grpc_broadcast_address",
                ..
            }
        ));
        let c = cfg(&[("HATCHET_CLIENT_TOKEN", &token())]).unwrap();
        assert!(!format!("{c:?}").contains(c.token.expose()));
    }

    #[test]
    fn dotenv_lines() {
        let vars = parse_dotenv(
            "# comment\nexport HATCHET_CLIENT_NAMESPACE=\"dev\"\nA = 'x y'\nnot a pair\n",
        );
        assert_eq!(
            vars,
            [
                ("HATCHET_CLIENT_NAMESPACE".to_owned(), "dev".to_owned()),
                ("A".to_owned(), "x y".to_owned())
            ]
        );
    }

    #[test]
    fn padded_tokens_decode_and_mtls_needs_files() {
        let t = token();
        let mut parts: Vec<String> = t.split('.').map(str::to_owned).collect();
        while !parts[1].len().is_multiple_of(4) {
            parts[1].push('=');
        }
        assert!(TokenClaims::decode(&parts.join(".")).unwrap().sub.is_some());
        let err = cfg(&[
            ("HATCHET_CLIENT_TOKEN", &t),
            ("HATCHET_CLIENT_TLS_STRATEGY", "mtls"),
        ])
        .unwrap_err();
        assert!(matches!(err, ConfigError::Tls(_)));
    }
}
