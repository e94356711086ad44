//! `PutWorkflow` over gRPC: the concurrency features current SDKs send are accepted, and what the
//! embedded engine does not implement is refused with `INVALID_ARGUMENT` naming the field (never
//! accepted and ignored). Behaviour of the accepted features is covered by the engine's unit tests
//! and, end to end, by `engine_ts.rs`.

use acf_tests::engine_support;

use acf_sdk::engine::Engine;
use acf_sdk::proto::v1::admin_service_client::AdminServiceClient;
use acf_sdk::proto::v1::{
    Concurrency, ConcurrencyLimitStrategy, CreateTaskOpts, CreateWorkflowVersionRequest,
    IdempotencyConfig, TaskBatchConfig,
};
use engine_support::{Authed, connect};
use tonic::Code;

fn workflow(name: &str, concurrency: Vec<Concurrency>) -> CreateWorkflowVersionRequest {
    CreateWorkflowVersionRequest {
        name: name.into(),
        tasks: vec![CreateTaskOpts {
            readable_id: "step".into(),
            action: format!("{name}:step"),
            timeout: "10s".into(),
            concurrency,
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn tenant(name: &str) -> Concurrency {
    Concurrency {
        expression: "'all'".into(),
        max_runs: Some(1),
        limit_strategy: Some(ConcurrencyLimitStrategy::GroupRoundRobin as i32),
        name: Some(name.into()),
        is_tenant_scoped: Some(true),
        max_runs_expression: None,
    }
}

async fn refused(
    admin: &mut AdminServiceClient<Authed>,
    req: CreateWorkflowVersionRequest,
) -> String {
    let status = admin
        .put_workflow(req)
        .await
        .expect_err("registration must be refused");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    status.message().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrency_features_of_current_sdks_are_accepted() {
    let engine = Engine::builder().start().await.expect("engine");
    let mut admin = AdminServiceClient::new(connect(&engine).await);
    let strategies = [
        ConcurrencyLimitStrategy::CancelQueuedExceptNewest,
        ConcurrencyLimitStrategy::CancelQueuedExceptOldest,
    ];
    for (i, strategy) in strategies.into_iter().enumerate() {
        let mut dynamic = Concurrency {
            expression: "input.account".into(),
            max_runs: Some(1),
            limit_strategy: Some(strategy as i32),
            max_runs_expression: Some("input.tier == 'premium' ? 10 : 1".into()),
            ..Default::default()
        };
        dynamic.name = Some("label-only".into());
        admin
            .put_workflow(workflow(
                &format!("accepted-{i}"),
                vec![dynamic, tenant("shared")],
            ))
            .await
            .expect("accepted");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unimplemented_or_invalid_fields_are_refused_by_name() {
    let engine = Engine::builder().start().await.expect("engine");
    let mut admin = AdminServiceClient::new(connect(&engine).await);

    let mut batch = workflow("batch", vec![]);
    batch.tasks[0].batch = Some(TaskBatchConfig {
        batch_max_size: 10,
        ..Default::default()
    });
    assert!(
        refused(&mut admin, batch)
            .await
            .starts_with("tasks[0].batch:")
    );

    let mut idempotent = workflow("idempotent", vec![]);
    idempotent.idempotency = Some(IdempotencyConfig {
        expression: "input.id".into(),
        ttl_ms: 0,
        method: None,
    });
    let message = refused(&mut admin, idempotent.clone()).await;
    assert!(message.starts_with("idempotency.ttl_ms:"), "{message}");
    idempotent.idempotency = Some(IdempotencyConfig {
        expression: "input.(".into(),
        ttl_ms: 60_000,
        method: None,
    });
    let message = refused(&mut admin, idempotent).await;
    assert!(message.starts_with("idempotency.expression:"), "{message}");

    let mut unnamed = tenant("x");
    unnamed.name = None;
    let message = refused(&mut admin, workflow("unnamed", vec![unnamed])).await;
    assert!(
        message.starts_with("tasks[0].concurrency[0].name:"),
        "{message}"
    );

    let mut bad_max = tenant("y");
    bad_max.max_runs_expression = Some("input.(".into());
    let message = refused(&mut admin, workflow("bad-max", vec![bad_max])).await;
    assert!(
        message.starts_with("tasks[0].concurrency[0].max_runs_expression:"),
        "{message}"
    );

    let mut deprecated = tenant("z");
    deprecated.limit_strategy = Some(ConcurrencyLimitStrategy::QueueNewest as i32);
    let message = refused(&mut admin, workflow("deprecated", vec![deprecated])).await;
    assert!(
        message.starts_with("tasks[0].concurrency[0].limit_strategy:"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenant_scoped_limits_in_opposite_orders_are_refused() {
    let engine = Engine::builder().start().await.expect("engine");
    let mut admin = AdminServiceClient::new(connect(&engine).await);
    admin
        .put_workflow(workflow("first", vec![tenant("a"), tenant("b")]))
        .await
        .expect("first chain accepted");
    let message = refused(
        &mut admin,
        workflow("second", vec![tenant("b"), tenant("a")]),
    )
    .await;
    assert!(message.starts_with("concurrency:"), "{message}");
    assert!(message.contains("ordered differently"), "{message}");
    // The refused version was not installed; a consistent one is.
    admin
        .put_workflow(workflow("second", vec![tenant("a"), tenant("b")]))
        .await
        .expect("consistent chain accepted");
    assert!(
        !engine
            .registered_workflows()
            .iter()
            .any(|w| w.name == "second" && w.tasks[0].concurrency[0].name.as_deref() == Some("b")),
        "a refused registration must not be recorded"
    );
}
