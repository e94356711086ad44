//! Redis Cluster: URLs naming a cluster, the hash-tagged key layout (every key of a session in the session's
//! slot, on one master), the due index across slots, a whole turn through the workflow, and a turn that goes on
//! while its session's master restarts without its data (no replicas, so no failover). The store operations
//! themselves run on a cluster in `stores_commit`, `stores_messages` and `stores_inbox` (`on_a_redis_cluster`).

use crate::support;
use crate::workflow_support;

use std::time::Duration;

use acf_worker::models::TurnOutcome;
use acf_worker::mutex::KeyLayout;
use acf_worker::stores::{
    Backend, RedisConnectOptions, RedisStores, StoreError, StoreSettings, cluster_nodes,
};
use support::backends::unique_settings;
use support::cluster::RedisCluster;
use workflow_support::{
    Behaviour, Conversation, Steps, TestBrain, accept, assert_processed_by, payload, responses_of,
    run_turn, workflow,
};

async fn backend_on(cluster: &RedisCluster, settings: StoreSettings) -> Backend {
    Backend::redis(&cluster.url(), settings, &RedisConnectOptions::default())
        .await
        .expect("the cluster answers")
}

#[test]
fn cluster_urls_name_their_seed_nodes() {
    assert_eq!(cluster_nodes("redis://127.0.0.1:6379"), None);
    assert_eq!(cluster_nodes("redis://:secret@10.0.0.1:6379/0"), None);
    assert_eq!(
        cluster_nodes("redis://10.0.0.1:7000, redis://10.0.0.2:7001"),
        Some(vec![
            "redis://10.0.0.1:7000".to_owned(),
            "redis://10.0.0.2:7001".to_owned()
        ])
    );
    assert_eq!(
        cluster_nodes("redis://10.0.0.1:7000,10.0.0.2:7001"),
        Some(vec![
            "redis://10.0.0.1:7000".to_owned(),
            "redis://10.0.0.2:7001".to_owned()
        ])
    );
    assert_eq!(
        cluster_nodes("redis+cluster://user:pw@10.0.0.1:7000,10.0.0.2:7001/0?protocol=resp3"),
        Some(vec![
            "redis://user:pw@10.0.0.1:7000/0?protocol=resp3".to_owned(),
            "redis://user:pw@10.0.0.2:7001/0?protocol=resp3".to_owned()
        ])
    );
    assert_eq!(
        cluster_nodes("rediss+cluster://10.0.0.1:7000"),
        Some(vec!["rediss://10.0.0.1:7000".to_owned()])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_brace_in_a_key_name_is_refused_on_a_cluster_only() {
    let cluster = RedisCluster::start();
    let braced = StoreSettings {
        key_prefix: "app{1}".into(),
        ..StoreSettings::default()
    };
    let err = RedisStores::connect(
        &cluster.url(),
        braced.clone(),
        &RedisConnectOptions::default(),
    )
    .await
    .expect_err("a brace would move the hash tag");
    assert!(matches!(err, StoreError::InvalidRequest(_)), "{err}");
    assert!(
        err.to_string().contains("storage.session.key_prefix"),
        "{err}"
    );
    // On one server the name is only a name.
    let single = RedisStores::connect(
        support::SHARED_REDIS_URL,
        braced,
        &RedisConnectOptions::default(),
    )
    .await
    .expect("single-node Redis accepts any prefix");
    assert_eq!(single.layout(), KeyLayout::Standalone);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_turn_through_the_workflow_keeps_its_session_in_one_slot() {
    let cluster = RedisCluster::start();
    let settings = unique_settings();
    let prefix = settings.key_prefix.clone();
    let backend = backend_on(&cluster, settings).await;
    let brain = TestBrain::new(Behaviour::Echo(Duration::ZERO));
    let wf = workflow(&backend, brain.clone(), 100);
    let conversation = Conversation::new();
    let session = conversation.session_key();
    let first = conversation.message("hello");
    let second = conversation.message("anyone?");
    accept(&backend, &first).await;
    accept(&backend, &second).await;

    let output = run_turn(&wf, &payload(&first)).await.result.unwrap();
    assert_eq!(output.status, TurnOutcome::Complete, "{output:?}");
    assert_eq!(output.response.as_deref(), Some("Echo: hello / anyone?"));
    let again = run_turn(&wf, &payload(&second)).await.result.unwrap();
    assert_eq!(again.status, TurnOutcome::Absorbed, "{again:?}");
    let entries = responses_of(&backend, &session).await;
    assert_eq!(entries.len(), 1, "one answer on the stream: {entries:?}");
    assert_eq!(entries[0].1.turn_id, output.turn_id);
    let receipt = backend
        .stores
        .commits
        .receipt(&session, output.turn_id)
        .await
        .unwrap()
        .expect("committed");
    assert_eq!(
        receipt.response_entry_id.as_deref(),
        Some(entries[0].0.as_str())
    );

    // Every key naming the session carries it as a hash tag, and all of them sit in the session's slot, on the
    // one master serving it.
    let tag = format!("{{{session}}}");
    let slot = cluster.keyslot(&session);
    let home = cluster.owner_of(slot);
    let mut found = Vec::new();
    for node in 0..cluster.len() {
        for key in cluster.keys_on(node, &format!("*{session}*")) {
            assert!(key.contains(&tag), "`{key}` does not hash-tag the session");
            assert_eq!(
                cluster.keyslot(&key),
                slot,
                "`{key}` is outside the session's slot"
            );
            assert_eq!(
                node, home,
                "`{key}` is on node {node}, the session's slot on {home}"
            );
            found.push(key);
        }
    }
    for expected in [
        format!("sessfence:{tag}"),
        format!("{prefix}:state:{tag}"),
        format!("{prefix}:turns:{tag}"),
        format!("{prefix}:turn:{tag}:{}", output.turn_id),
        format!("{prefix}:commit:{tag}:{}", output.turn_id),
        format!("{prefix}:msg:{tag}:{}", first.message_id),
        format!("{prefix}:msg:{tag}:{}", second.message_id),
    ] {
        assert!(
            found.contains(&expected),
            "`{expected}` missing from {found:?}"
        );
    }
    assert!(
        !found.iter().any(|k| k.contains(":outbox:")),
        "the outbox is emptied once the entry is on the stream: {found:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_due_index_settles_across_slots() {
    let cluster = RedisCluster::start();
    let backend = backend_on(&cluster, unique_settings()).await;
    let pending = &backend.stores.pending;
    let conversation = Conversation::new();
    let session = conversation.session_key();
    let input = conversation.message("are you there?");
    accept(&backend, &input).await;
    pending
        .mark_due(&session, "{}", 1_000, false)
        .await
        .unwrap();
    pending.mark_due(&session, "{}", 5_000, true).await.unwrap();
    assert_eq!(
        pending.due_at(&session).await.unwrap(),
        Some(1_000),
        "keep_earlier"
    );
    let claimed = pending.claim_due(2_000, 9_000, 10).await.unwrap();
    assert!(
        claimed
            .iter()
            .any(|d| d.session_key == session && d.route.as_deref() == Some("{}"))
    );
    assert_eq!(pending.due_at(&session).await.unwrap(), Some(9_000));
    assert!(
        !pending.settle(&session).await.unwrap(),
        "a message is open"
    );

    let wf = workflow(
        &backend,
        TestBrain::new(Behaviour::Echo(Duration::ZERO)),
        50,
    );
    let output = run_turn(&wf, &payload(&input)).await.result.unwrap();
    assert_eq!(output.status, TurnOutcome::Complete, "{output:?}");
    assert!(pending.settle(&session).await.unwrap(), "nothing open");
    assert_eq!(pending.due_at(&session).await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_turn_is_answered_once_when_its_master_restarts_mid_run() {
    let mut cluster = RedisCluster::start();
    let backend = backend_on(&cluster, unique_settings()).await;
    let brain = TestBrain::new(Behaviour::Echo(Duration::ZERO));
    let wf = workflow(&backend, brain.clone(), 100);
    let conversation = Conversation::new();
    let session = conversation.session_key();
    let home = cluster.owner_of(cluster.keyslot(&session));
    let first = conversation.message("one");
    let second = conversation.message("two");
    accept(&backend, &first).await;
    accept(&backend, &second).await;

    // The brain has answered; then the session's master loses everything it held for the session.
    let output = Steps::new(&wf, &payload(&first))
        .all("run_agent", async || {
            cluster.restart(home);
            assert!(
                cluster.keys_on(home, &format!("*{session}*")).is_empty(),
                "the restarted master kept the session's keys"
            );
        })
        .await;
    assert_eq!(output.status, TurnOutcome::Complete, "{output:?}");
    assert_eq!(output.response.as_deref(), Some("Echo: one / two"));
    assert_eq!(responses_of(&backend, &session).await.len(), 1);
    // The run re-recorded both messages as answered on the restarted master: the second message's own run finds
    // it answered and delivers nothing again.
    assert_processed_by(&backend, &second, output.turn_id).await;
    let second_run = run_turn(&wf, &payload(&second)).await.result.unwrap();
    assert_eq!(second_run.status, TurnOutcome::Absorbed);
    assert_eq!(brain.calls(), 1);
}
