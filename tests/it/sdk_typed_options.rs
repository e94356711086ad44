//! The typed workflow client takes the same trigger options as the untyped one: metadata, priority and the
//! rest reach the engine from `run_no_wait_with`, `run_many_no_wait` and `schedule_with`.

use acf_tests::sdk_support;

use acf_sdk::engine::Engine;
use acf_sdk::model::Priority;
use acf_sdk::proto::BulkTriggerWorkflowRequest;
use acf_sdk::proto::v1::TriggerWorkflowRequest;
use acf_sdk::{
    Context, Deserialize, JsonSchema, Serialize, StepError, TaskDefinition, TriggerOptions,
    TypedWorkflowClient, WorkflowBuilder,
};
use sdk_support::{client, serve, within};
use serde_json::{Value, json};

#[derive(Serialize, Deserialize, JsonSchema)]
#[serde(crate = "acf_sdk::serde")]
#[schemars(crate = "acf_sdk::schemars")]
struct In {
    n: i64,
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
#[serde(crate = "acf_sdk::serde")]
struct Out {
    n: i64,
    tenant: Value,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_triggers_carry_metadata_and_priority() {
    let engine = Engine::builder()
        .record_requests(true)
        .start()
        .await
        .unwrap();
    let client = client(&engine);
    let wf = WorkflowBuilder::new("typed-opts")
        .input_schema::<In>()
        .task(
            TaskDefinition::new("echo"),
            |input: In, ctx: Context| async move {
                let tenant = ctx.additional_metadata().get("tenant").cloned();
                Ok::<_, StepError>(json!({ "n": input.n, "tenant": tenant }))
            },
        )
        .build()
        .unwrap();
    let worker = serve(client.worker("typed-opts-worker").workflow(wf)).await;
    let typed: TypedWorkflowClient<In, Out> =
        TypedWorkflowClient::new(&client, "typed-opts", Some("echo"));

    let options = TriggerOptions::default()
        .metadata("tenant", "acme")
        .priority(Priority::High);
    let run = typed.run_no_wait_with(In { n: 1 }, options).await.unwrap();
    let out = within(30, typed.result(&run)).await.unwrap();
    assert_eq!(
        out,
        Out {
            n: 1,
            tenant: json!("acme")
        }
    );
    let trigger: TriggerWorkflowRequest = engine
        .requests()
        .iter()
        .find(|r| r.rpc == "WorkflowService/TriggerWorkflow")
        .expect("a trigger")
        .decode()
        .unwrap();
    assert_eq!(trigger.priority, Some(3));
    assert_eq!(
        trigger.additional_metadata.as_deref(),
        Some(r#"{"tenant":"acme"}"#)
    );

    let runs = typed
        .run_many_no_wait(vec![
            (
                In { n: 2 },
                TriggerOptions::default().metadata("tenant", "a"),
            ),
            (
                In { n: 3 },
                TriggerOptions::default().metadata("tenant", "b"),
            ),
        ])
        .await
        .unwrap();
    let mut outs = Vec::new();
    for run in &runs {
        outs.push(within(30, typed.result(run)).await.unwrap());
    }
    assert_eq!(
        outs,
        [
            Out {
                n: 2,
                tenant: json!("a")
            },
            Out {
                n: 3,
                tenant: json!("b")
            },
        ]
    );
    let bulk: BulkTriggerWorkflowRequest = engine
        .requests()
        .iter()
        .find(|r| r.rpc == "WorkflowService/BulkTriggerWorkflow")
        .expect("a bulk trigger")
        .decode()
        .unwrap();
    assert_eq!(bulk.workflows.len(), 2);

    let at = chrono::Utc::now() + chrono::Duration::hours(1);
    let scheduled = typed
        .schedule_with(
            &[at],
            In { n: 4 },
            TriggerOptions::default().priority(Priority::Medium),
        )
        .await
        .unwrap();
    assert_eq!(scheduled.len(), 1);
    let schedule: acf_sdk::proto::ScheduleWorkflowRequest = engine
        .requests()
        .iter()
        .find(|r| r.rpc == "WorkflowService/ScheduleWorkflow")
        .expect("a schedule request")
        .decode()
        .unwrap();
    assert_eq!(schedule.priority, Some(2));

    worker.stop().await;
}
