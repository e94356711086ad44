//! `ruche-worker demo` as a library call: every scripted message is answered exactly once, the bursts are
//! accumulated, and the transcript shows each turn's messages and response.

use acf_worker::config::Settings;
use acf_worker::demo::run_demo;
use acf_worker::models::TurnOutcome;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_answers_every_message_once_and_prints_the_turns() {
    let mut transcript = Vec::new();
    let report = run_demo(&Settings::default(), false, &mut transcript)
        .await
        .expect("demo");
    let text = String::from_utf8(transcript).unwrap();

    assert_eq!(report.runs.len(), report.messages);
    assert_eq!(report.count(TurnOutcome::Failed), 0, "{text}");
    let turns: Vec<_> = report.turns.values().flatten().collect();
    assert_eq!(report.count(TurnOutcome::Complete), turns.len(), "{text}");
    let answered: usize = turns.iter().map(|t| t.message_ids.len()).sum();
    assert_eq!(
        answered, report.messages,
        "every message in exactly one turn:\n{text}"
    );
    assert_eq!(
        report.count(TurnOutcome::Absorbed),
        report.messages - turns.len()
    );
    assert!(
        turns.iter().any(|t| t.message_ids.len() > 1),
        "a burst became one turn:\n{text}"
    );
    for user in ["alice", "bob", "carol"] {
        assert!(text.contains(user), "{text}");
    }
    assert!(text.contains("< Echo: "), "{text}");
    assert!(text.contains("8 messages → 8 runs"), "{text}");
}
