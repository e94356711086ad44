//! TLS strategies of the channel: `tls` with a custom root CA and server name, `mtls` with a client
//! certificate, and the failures when the trust or the client identity is missing. Certificates are minted
//! with the `openssl` command line for each run.

use std::collections::HashMap;
use std::path::Path;
use std::pin::Pin;
use std::process::Command;

use acf_sdk::proto::dispatcher_server::{Dispatcher, DispatcherServer};
use acf_sdk::proto::*;
use acf_sdk::{Client, ClientConfig};
use serde_json::json;
use tokio_stream::Stream;
use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig};
use tonic::{Request, Response, Status, Streaming};

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// Answers `GetVersion` only, and checks the bearer header.
struct VersionOnly;

fn nope<T>() -> Result<T, Status> {
    Err(Status::unimplemented("not in this test"))
}

#[tonic::async_trait]
impl Dispatcher for VersionOnly {
    async fn register(
        &self,
        _: Request<WorkerRegisterRequest>,
    ) -> Result<Response<WorkerRegisterResponse>, Status> {
        nope()
    }
    type ListenStream = BoxStream<AssignedAction>;
    async fn listen(
        &self,
        _: Request<WorkerListenRequest>,
    ) -> Result<Response<Self::ListenStream>, Status> {
        nope()
    }
    type ListenV2Stream = BoxStream<AssignedAction>;
    async fn listen_v2(
        &self,
        _: Request<WorkerListenRequest>,
    ) -> Result<Response<Self::ListenV2Stream>, Status> {
        nope()
    }
    async fn heartbeat(
        &self,
        _: Request<HeartbeatRequest>,
    ) -> Result<Response<HeartbeatResponse>, Status> {
        nope()
    }
    type SubscribeToWorkflowEventsStream = BoxStream<WorkflowEvent>;
    async fn subscribe_to_workflow_events(
        &self,
        _: Request<SubscribeToWorkflowEventsRequest>,
    ) -> Result<Response<Self::SubscribeToWorkflowEventsStream>, Status> {
        nope()
    }
    type SubscribeToWorkflowRunsStream = BoxStream<WorkflowRunEvent>;
    async fn subscribe_to_workflow_runs(
        &self,
        _: Request<Streaming<SubscribeToWorkflowRunsRequest>>,
    ) -> Result<Response<Self::SubscribeToWorkflowRunsStream>, Status> {
        nope()
    }
    async fn send_step_action_event(
        &self,
        _: Request<StepActionEvent>,
    ) -> Result<Response<ActionEventResponse>, Status> {
        nope()
    }
    async fn send_batch_action_event(
        &self,
        _: Request<BatchActionEvent>,
    ) -> Result<Response<ActionEventResponse>, Status> {
        nope()
    }
    async fn send_group_key_action_event(
        &self,
        _: Request<GroupKeyActionEvent>,
    ) -> Result<Response<ActionEventResponse>, Status> {
        nope()
    }
    async fn put_overrides_data(
        &self,
        _: Request<OverridesData>,
    ) -> Result<Response<OverridesDataResponse>, Status> {
        nope()
    }
    async fn unsubscribe(
        &self,
        _: Request<WorkerUnsubscribeRequest>,
    ) -> Result<Response<WorkerUnsubscribeResponse>, Status> {
        nope()
    }
    async fn refresh_timeout(
        &self,
        _: Request<RefreshTimeoutRequest>,
    ) -> Result<Response<RefreshTimeoutResponse>, Status> {
        nope()
    }
    async fn release_slot(
        &self,
        _: Request<ReleaseSlotRequest>,
    ) -> Result<Response<ReleaseSlotResponse>, Status> {
        nope()
    }
    async fn restore_evicted_task(
        &self,
        _: Request<RestoreEvictedTaskRequest>,
    ) -> Result<Response<RestoreEvictedTaskResponse>, Status> {
        nope()
    }
    async fn upsert_worker_labels(
        &self,
        _: Request<UpsertWorkerLabelsRequest>,
    ) -> Result<Response<UpsertWorkerLabelsResponse>, Status> {
        nope()
    }
    async fn get_version(
        &self,
        r: Request<GetVersionRequest>,
    ) -> Result<Response<GetVersionResponse>, Status> {
        let auth = r
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if !auth.starts_with("bearer ey") {
            return Err(Status::unauthenticated("invalid auth token"));
        }
        Ok(Response::new(GetVersionResponse {
            version: "v0.94.16".into(),
        }))
    }
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the openssl command line");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA, a `localhost` server certificate and a client certificate, all signed by the CA.
fn mint(dir: &Path) {
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    openssl(
        dir,
        &[
            &["req", "-x509"][..],
            &ec,
            &[
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "2",
                "-subj",
                "/CN=acf-test-ca",
            ],
        ]
        .concat(),
    );
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=DNS:localhost\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    std::fs::write(dir.join("client.ext"), "extendedKeyUsage=clientAuth\n").unwrap();
    for who in ["server", "client"] {
        let (key, csr, pem, ext) = (
            format!("{who}.key"),
            format!("{who}.csr"),
            format!("{who}.pem"),
            format!("{who}.ext"),
        );
        openssl(
            dir,
            &[
                &["req"][..],
                &ec,
                &[
                    "-keyout",
                    &key,
                    "-out",
                    &csr,
                    "-subj",
                    &format!("/CN={who}"),
                ],
            ]
            .concat(),
        );
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                &pem,
                "-days",
                "2",
                "-extfile",
                &ext,
            ],
        );
    }
}

async fn serve(dir: &Path, require_client_cert: bool) -> std::net::SocketAddr {
    let read = |f: &str| std::fs::read(dir.join(f)).unwrap();
    let mut tls =
        ServerTlsConfig::new().identity(Identity::from_pem(read("server.pem"), read("server.key")));
    if require_client_cert {
        tls = tls.client_ca_root(Certificate::from_pem(read("ca.pem")));
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = Server::builder()
        .tls_config(tls)
        .unwrap()
        .add_service(
            DispatcherServer::new(VersionOnly)
                .accept_compressed(tonic::codec::CompressionEncoding::Gzip)
                .send_compressed(tonic::codec::CompressionEncoding::Gzip),
        )
        .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener));
    tokio::spawn(server);
    addr
}

fn client(addr: std::net::SocketAddr, vars: &[(&str, String)]) -> Client {
    let token = acf_sdk::config::unsigned_token(&json!({
        "sub": uuid::Uuid::nil().to_string(),
        "server_url": "https://localhost",
        "grpc_broadcast_address": addr.to_string(),
    }));
    let mut env: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect();
    env.insert("HATCHET_CLIENT_TOKEN".into(), token);
    Client::new(ClientConfig::from_lookup(|k| env.get(k).cloned()).unwrap()).unwrap()
}

async fn version(client: &Client) -> Result<String, Status> {
    let mut d = client.connection().dispatcher();
    d.get_version(GetVersionRequest {})
        .await
        .map(|r| r.into_inner().version)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_and_mtls_strategies() {
    let dir = tempfile::tempdir().unwrap();
    mint(dir.path());
    let file = |f: &str| dir.path().join(f).display().to_string();

    // tls: custom root CA, SNI from HATCHET_CLIENT_TLS_SERVER_NAME (the address is an IP).
    let addr = serve(dir.path(), false).await;
    let tls = [
        ("HATCHET_CLIENT_TLS_STRATEGY", "tls".to_owned()),
        ("HATCHET_CLIENT_TLS_ROOT_CA_FILE", file("ca.pem")),
        ("HATCHET_CLIENT_TLS_SERVER_NAME", "localhost".to_owned()),
    ];
    assert_eq!(version(&client(addr, &tls)).await.unwrap(), "v0.94.16");
    // Without the CA (system roots only) the server is not trusted.
    let untrusted = [("HATCHET_CLIENT_TLS_SERVER_NAME", "localhost".to_owned())];
    assert!(version(&client(addr, &untrusted)).await.is_err());

    // mtls: the server requires a client certificate signed by the CA.
    let addr = serve(dir.path(), true).await;
    let mtls = [
        ("HATCHET_CLIENT_TLS_STRATEGY", "mtls".to_owned()),
        ("HATCHET_CLIENT_TLS_ROOT_CA_FILE", file("ca.pem")),
        ("HATCHET_CLIENT_TLS_CERT_FILE", file("client.pem")),
        ("HATCHET_CLIENT_TLS_KEY_FILE", file("client.key")),
        ("HATCHET_CLIENT_TLS_SERVER_NAME", "localhost".to_owned()),
    ];
    assert_eq!(version(&client(addr, &mtls)).await.unwrap(), "v0.94.16");
    assert!(
        version(&client(addr, &tls)).await.is_err(),
        "no client certificate: rejected"
    );
}
