//! The tonic channel to the engine: TLS per strategy, HTTP/2 keepalive like Python (10 s ping, 60 s timeout,
//! while idle), gzip, message size limits, and the `authorization: bearer <token>` header on every call.

use std::sync::Arc;
use std::time::Duration;

use tonic::codec::CompressionEncoding;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use crate::config::{ClientConfig, ConfigError, TlsStrategy};
use crate::error::{Error, Result};
use crate::proto::dispatcher_client::DispatcherClient;
use crate::proto::events_service_client::EventsServiceClient;
use crate::proto::v1::admin_service_client::AdminServiceClient;
use crate::proto::v1::v1_dispatcher_client::V1DispatcherClient;
use crate::proto::workflow_service_client::WorkflowServiceClient;

/// Adds the bearer token to every request.
#[derive(Clone)]
pub struct AuthInterceptor {
    header: MetadataValue<Ascii>,
}

impl std::fmt::Debug for AuthInterceptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuthInterceptor(<redacted>)")
    }
}

impl tonic::service::Interceptor for AuthInterceptor {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        request
            .metadata_mut()
            .insert("authorization", self.header.clone());
        Ok(request)
    }
}

/// A channel carrying the auth header.
pub type AuthedChannel = InterceptedService<Channel, AuthInterceptor>;

/// A lazily connected channel plus the settings every client stub needs.
#[derive(Clone, Debug)]
pub struct Connection {
    endpoint: Endpoint,
    channel: Channel,
    auth: AuthInterceptor,
    config: Arc<ClientConfig>,
}

/// Requests at least this large are gzip-compressed (when enabled). Below it compression costs more than it saves:
/// tiny messages only grow, and for the few-KiB payloads of ordinary steps (a logical turn's accumulate output,
/// say) compressing on one side and inflating on the other added ~0.3 ms to each step hand-off on a local engine
/// (BENCHMARKS.md, "gzip threshold"), while a few KiB cost next to nothing on the wire.
pub const GZIP_MIN_BYTES: usize = 16 * 1024;

macro_rules! stub {
    ($(#[$doc:meta])* $name:ident, $sized:ident, $client:ident) => {
        $(#[$doc])*
        pub fn $name(&self) -> $client<AuthedChannel> {
            $client::with_interceptor(self.channel.clone(), self.auth.clone())
                .accept_compressed(CompressionEncoding::Gzip)
                .max_decoding_message_size(self.config.max_recv_message_length)
                .max_encoding_message_size(self.config.max_send_message_length)
        }

        /// The same stub for a request of about `bytes`: gzip-compressed from [`GZIP_MIN_BYTES`] on (if enabled).
        pub fn $sized(&self, bytes: usize) -> $client<AuthedChannel> {
            let stub = self.$name();
            if self.config.gzip && bytes >= GZIP_MIN_BYTES {
                stub.send_compressed(CompressionEncoding::Gzip)
            } else {
                stub
            }
        }
    };
}

impl Connection {
    /// Builds the endpoint (no I/O: the connection is made on first use and re-made after failures).
    pub fn new(config: Arc<ClientConfig>) -> Result<Self> {
        let header = format!("bearer {}", config.token.expose())
            .parse::<MetadataValue<Ascii>>()
            .map_err(|_| {
                ConfigError::MalformedToken("contains characters not allowed in a header")
            })?;
        let scheme = if config.tls.strategy == TlsStrategy::None {
            "http"
        } else {
            "https"
        };
        let uri = format!("{scheme}://{}", config.host_port);
        let mut endpoint = Endpoint::from_shared(uri)
            .map_err(|e| ConfigError::InvalidValue {
                var: "HATCHET_CLIENT_HOST_PORT",
                reason: e.to_string(),
            })?
            .http2_keep_alive_interval(Duration::from_secs(10))
            .keep_alive_timeout(Duration::from_secs(60))
            .keep_alive_while_idle(true)
            .connect_timeout(Duration::from_secs(10))
            .tcp_nodelay(true);
        if config.tls.strategy != TlsStrategy::None {
            endpoint = endpoint
                .tls_config(tls_config(&config)?)
                .map_err(Error::Transport)?;
        }
        Ok(Self {
            channel: endpoint.connect_lazy(),
            endpoint,
            auth: AuthInterceptor { header },
            config,
        })
    }

    /// The same settings on a new HTTP/2 connection. Long-lived streams (the action stream, run results,
    /// durable waits) each get their own, as Python opens a channel per listener: a stream's pushes then never
    /// queue behind unrelated traffic on one TCP connection, and a reconnect starts from a fresh transport.
    pub fn dedicated(&self) -> Self {
        Self {
            endpoint: self.endpoint.clone(),
            channel: self.endpoint.connect_lazy(),
            auth: self.auth.clone(),
            config: Arc::clone(&self.config),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &Arc<ClientConfig> {
        &self.config
    }

    stub!(
        /// `Dispatcher` stub.
        dispatcher, dispatcher_for, DispatcherClient
    );
    stub!(
        /// `EventsService` stub.
        events, events_for, EventsServiceClient
    );
    stub!(
        /// `WorkflowService` stub.
        workflows, workflows_for, WorkflowServiceClient
    );
    stub!(
        /// `v1.AdminService` stub.
        admin, admin_for, AdminServiceClient
    );
    stub!(
        /// `v1.V1Dispatcher` stub.
        v1_dispatcher, v1_dispatcher_for, V1DispatcherClient
    );
}

fn tls_config(config: &ClientConfig) -> Result<ClientTlsConfig> {
    let read = |path: &std::path::Path| {
        std::fs::read(path)
            .map_err(|e| ConfigError::Tls(format!("cannot read {}: {e}", path.display())))
    };
    let mut tls = ClientTlsConfig::new().domain_name(config.tls.server_name.clone());
    match &config.tls.root_ca_file {
        Some(ca) => tls = tls.ca_certificate(Certificate::from_pem(read(ca)?)),
        None => tls = tls.with_native_roots(),
    }
    if config.tls.strategy == TlsStrategy::Mtls {
        let (Some(cert), Some(key)) = (&config.tls.cert_file, &config.tls.key_file) else {
            return Err(ConfigError::Tls("mtls needs a client certificate and key".into()).into());
        };
        tls = tls.identity(Identity::from_pem(read(cert)?, read(key)?));
    }
    Ok(tls)
}
