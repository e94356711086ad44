//! Session inbox: FIFO, prompt wake-up, locally timed deadlines, and no entry lost to a timed-out wait.

use crate::on_every_backend;
use crate::support;

use std::time::Duration;

use acf_worker::models::time::now_utc;
use acf_worker::stores::InboxEntry;
use support::backends::Backend;
use support::unique_session;
use tokio::time::Instant;
use uuid::Uuid;

fn entry() -> InboxEntry {
    InboxEntry {
        message_id: Uuid::new_v4(),
        received_at: now_utc(),
    }
}

on_every_backend!(
    entries_come_out_in_order_and_per_session,
    a_push_wakes_a_waiting_reader_promptly,
    deadlines_are_kept_to_within_milliseconds,
    an_entry_pushed_around_a_timeout_is_not_lost,
    drain_takes_everything_without_waiting,
);

async fn entries_come_out_in_order_and_per_session(b: Backend) {
    let (session, other) = (unique_session("fifo"), unique_session("fifo-other"));
    let (e1, e2, e3) = (entry(), entry(), entry());
    for e in [&e1, &e2] {
        b.stores.inbox.push(&session, e).await.unwrap();
    }
    b.stores.inbox.push(&other, &e3).await.unwrap();
    let soon = || Instant::now() + Duration::from_secs(2);
    assert_eq!(
        b.stores.inbox.wait(&session, soon()).await.unwrap(),
        Some(e1)
    );
    assert_eq!(
        b.stores.inbox.wait(&session, soon()).await.unwrap(),
        Some(e2)
    );
    assert_eq!(
        b.stores.inbox.wait(&session, Instant::now()).await.unwrap(),
        None,
        "empty inbox, past deadline"
    );
    assert_eq!(b.stores.inbox.wait(&other, soon()).await.unwrap(), Some(e3));
}

async fn a_push_wakes_a_waiting_reader_promptly(b: Backend) {
    let session = unique_session("wake");
    let inbox = b.stores.inbox.clone();
    let waiting_session = session.clone();
    let waiter = tokio::spawn(async move {
        let got = inbox
            .wait(&waiting_session, Instant::now() + Duration::from_secs(5))
            .await
            .unwrap();
        (got, Instant::now())
    });
    tokio::time::sleep(Duration::from_millis(150)).await;
    let pushed = entry();
    let pushed_at = Instant::now();
    b.stores.inbox.push(&session, &pushed).await.unwrap();
    let (got, woke_at) = waiter.await.unwrap();
    assert_eq!(got, Some(pushed));
    let delay = woke_at - pushed_at;
    assert!(
        delay < Duration::from_millis(250),
        "waiter woke {delay:?} after the push"
    );
}

async fn deadlines_are_kept_to_within_milliseconds(b: Backend) {
    let session = unique_session("deadline");
    let mut lateness = Vec::new();
    for window_ms in [200, 350, 500, 200, 1_000] {
        let deadline = Instant::now() + Duration::from_millis(window_ms);
        assert_eq!(b.stores.inbox.wait(&session, deadline).await.unwrap(), None);
        let now = Instant::now();
        assert!(now >= deadline, "returned before the deadline");
        lateness.push(now - deadline);
    }
    lateness.sort();
    let median = lateness[lateness.len() / 2];
    let worst = lateness[lateness.len() - 1];
    // The target is 10 ms; the bounds leave room for a loaded CI machine.
    assert!(
        median <= Duration::from_millis(15),
        "median lateness {median:?} ({lateness:?})"
    );
    assert!(
        worst <= Duration::from_millis(60),
        "worst lateness {worst:?} ({lateness:?})"
    );
}

async fn an_entry_pushed_around_a_timeout_is_not_lost(b: Backend) {
    let session = unique_session("late");
    for _ in 0..5 {
        assert_eq!(
            b.stores
                .inbox
                .wait(&session, Instant::now() + Duration::from_millis(30))
                .await
                .unwrap(),
            None
        );
        // Right after the local deadline the server may still be blocked on our behalf and pop this entry.
        let e = entry();
        b.stores.inbox.push(&session, &e).await.unwrap();
        let got = b
            .stores
            .inbox
            .wait(&session, Instant::now() + Duration::from_secs(3))
            .await
            .unwrap();
        assert_eq!(got, Some(e), "the entry must reach the next reader");
    }
}

async fn drain_takes_everything_without_waiting(b: Backend) {
    let session = unique_session("drain");
    assert!(b.stores.inbox.drain(&session).await.unwrap().is_empty());
    let entries = [entry(), entry(), entry()];
    for e in &entries {
        b.stores.inbox.push(&session, e).await.unwrap();
    }
    assert_eq!(b.stores.inbox.drain(&session).await.unwrap(), entries);
    assert!(b.stores.inbox.drain(&session).await.unwrap().is_empty());
}

/// Redis stores whose inbox waits may use at most `cap` dedicated connections, and their client name.
async fn redis_capped(cap: usize) -> (Backend, String) {
    let settings = acf_worker::stores::StoreSettings {
        blocking_connections: cap,
        ..support::backends::unique_settings()
    };
    let name = format!("{}:inbox-wait", settings.key_prefix);
    (
        support::backends::redis_at(support::SHARED_REDIS_URL, settings).await,
        name,
    )
}

/// The ids of the clients currently named `name`.
async fn clients_named(raw: &mut redis::aio::MultiplexedConnection, name: &str) -> Vec<String> {
    let list: String = redis::cmd("CLIENT")
        .arg("LIST")
        .query_async(raw)
        .await
        .unwrap();
    let wanted = format!("name={name}");
    list.lines()
        .filter(|line| line.split(' ').any(|field| field == wanted))
        .filter_map(|line| line.split(' ').find_map(|f| f.strip_prefix("id=")))
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_waits_share_at_most_pool_size_blocking_connections() {
    let (b, name) = redis_capped(2).await;
    let mut raw = support::raw_connection(support::SHARED_REDIS_URL).await;
    let sessions: Vec<String> = (0..5)
        .map(|i| unique_session(&format!("cap-{i}")))
        .collect();
    let entries: Vec<InboxEntry> = sessions.iter().map(|_| entry()).collect();
    let deadline = Instant::now() + Duration::from_secs(10);
    let waiters: Vec<_> = sessions
        .iter()
        .map(|session| {
            let inbox = b.stores.inbox.clone();
            let session = session.clone();
            tokio::spawn(async move { inbox.wait(&session, deadline).await })
        })
        .collect();

    // All five are waiting; only two hold a blocking connection.
    let mut seen = std::collections::BTreeSet::new();
    let mut peak = 0;
    let started = Instant::now();
    for sample in 0.. {
        let ids = clients_named(&mut raw, &name).await;
        peak = peak.max(ids.len());
        seen.extend(ids);
        if (sample >= 20 && peak >= 2) || started.elapsed() > Duration::from_secs(3) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(peak, 2, "two waiters block, three wait for a connection");

    // Each entry is pushed while the others keep waiting; every waiter gets its own.
    for (session, e) in sessions.iter().zip(&entries) {
        b.stores.inbox.push(session, e).await.unwrap();
        for _ in 0..5 {
            let ids = clients_named(&mut raw, &name).await;
            peak = peak.max(ids.len());
            seen.extend(ids);
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    for (waiter, e) in waiters.into_iter().zip(&entries) {
        let got = tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("the waiter finishes before its deadline")
            .unwrap()
            .unwrap();
        assert_eq!(got.as_ref(), Some(e));
    }
    assert!(
        Instant::now() < deadline,
        "no waiter needed its whole window"
    );
    let after = clients_named(&mut raw, &name).await;
    seen.extend(after.iter().cloned());
    assert_eq!(peak, 2, "never more than pool_size blocking clients");
    assert_eq!(
        seen.len(),
        2,
        "the two connections were reused, not reopened: {seen:?}"
    );
    assert_eq!(after.len(), 2, "they stay open, idle, for the next waits");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_a_wait_beyond_the_cap_keeps_its_deadline_and_takes_queued_entries() {
    let (b, name) = redis_capped(1).await;
    let mut raw = support::raw_connection(support::SHARED_REDIS_URL).await;
    let (busy, other) = (unique_session("cap-busy"), unique_session("cap-other"));
    let inbox = b.stores.inbox.clone();
    let busy_session = busy.clone();
    let holder = tokio::spawn(async move {
        inbox
            .wait(&busy_session, Instant::now() + Duration::from_secs(10))
            .await
    });
    let started = Instant::now();
    while clients_named(&mut raw, &name).await.is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "the holder never blocked"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    // No connection frees up: the wait ends at its own deadline, within milliseconds.
    let begun = Instant::now();
    let deadline = begun + Duration::from_millis(300);
    assert_eq!(b.stores.inbox.wait(&other, deadline).await.unwrap(), None);
    let late = Instant::now().saturating_duration_since(deadline);
    assert!(begun.elapsed() >= Duration::from_millis(300));
    assert!(late < Duration::from_millis(50), "returned {late:?} late");

    // An entry already queued is taken at once, without a connection.
    let queued = entry();
    b.stores.inbox.push(&other, &queued).await.unwrap();
    let begun = Instant::now();
    let got = b
        .stores
        .inbox
        .wait(&other, begun + Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(got, Some(queued));
    assert!(
        begun.elapsed() < Duration::from_secs(1),
        "{:?}",
        begun.elapsed()
    );

    // An entry pushed during a wait for a connection arrives at the deadline at the latest.
    let during = entry();
    let inbox = b.stores.inbox.clone();
    let other_session = other.clone();
    let waiter = tokio::spawn(async move {
        inbox
            .wait(&other_session, Instant::now() + Duration::from_millis(400))
            .await
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    b.stores.inbox.push(&other, &during).await.unwrap();
    assert_eq!(waiter.await.unwrap().unwrap(), Some(during));
    assert_eq!(clients_named(&mut raw, &name).await.len(), 1);

    let held = entry();
    b.stores.inbox.push(&busy, &held).await.unwrap();
    assert_eq!(holder.await.unwrap().unwrap(), Some(held));
}
