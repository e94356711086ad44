//! Every store trait in process memory, for the embedded default, the demo and tests.
//!
//! Same semantics as the Redis stores, including fencing (through the [`MemoryLockTable`] shared with a
//! [`crate::mutex::MemorySessionMutex`]), commit idempotency and lifetimes: every entry Redis gives a TTL expires
//! here after the same [`StoreSettings`] TTL, restarted by the same writes (see the fields of `Data`), and reads as
//! absent afterwards. Expired entries are freed as the stores are used: a sweep runs at most every quarter of the
//! shortest TTL (see `Data::new`), from whichever call takes the data then (the liveness sweeper calls regularly),
//! so memory follows the live data without a timer or task of its own. The response and event streams are capped,
//! not expiring, and the due index and epoch never expire, as on Redis.

mod effects;
mod messages;
mod pending;
mod records;
mod session;
mod ttl;

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::Notify;
use tokio::time::Instant;
use uuid::Uuid;

use super::settings::StoreSettings;
use super::{
    CommitReceipt, FailureRecord, InboxEntry, SessionInbox, SessionState, StoreError,
    StoredMessage, TurnRecord,
};
use crate::mutex::{Lease, MemoryLockTable};
use ttl::TtlMap;

/// In-memory stores. Clones share the same data.
#[derive(Debug, Clone)]
pub struct MemoryStores {
    table: Arc<MemoryLockTable>,
    settings: StoreSettings,
    data: Arc<Mutex<Data>>,
    /// Woken on every inbox push; waiters re-check their own session.
    inbox_pushed: Arc<Notify>,
}

/// Per session, ids in a store's order (an index of per-id entries, as a Redis sorted set).
type Index = Vec<Uuid>;

/// The stores' data. Each [`TtlMap`] is one kind of Redis key with a TTL; its doc says which TTL and which writes
/// restart it.
#[derive(Debug)]
struct Data {
    /// `message_ttl` from insertion (status changes keep the deadline, as `HSET` keeps a key's TTL).
    messages: TtlMap<Uuid, StoredMessage>,
    /// Per session, ids of open messages in arrival order; `message_ttl` from the latest insertion.
    open: TtlMap<String, Index>,
    /// `session_ttl` from the latest arrival or commit.
    states: TtlMap<String, SessionState>,
    /// Per session, recent gap samples (ms); `session_ttl` from the latest arrival.
    gaps: TtlMap<String, VecDeque<u64>>,
    /// `inbox_ttl` from the latest push.
    inboxes: TtlMap<String, VecDeque<InboxEntry>>,
    /// `record_ttl` from the commit.
    records: TtlMap<Uuid, TurnRecord>,
    /// Per session, committed turns in order; `record_ttl` from the latest commit.
    session_turns: TtlMap<String, Index>,
    /// Commit markers; `record_ttl` from the commit.
    receipts: TtlMap<Uuid, CommitReceipt>,
    /// `record_ttl` from the latest write.
    failures: TtlMap<Uuid, FailureRecord>,
    /// Per session, ids of failure records, oldest first; `record_ttl` from the latest failure.
    session_failures: TtlMap<String, Index>,
    /// Side effects of turns in progress, by turn id; `record_ttl` from the latest effect.
    effects: TtlMap<Uuid, Vec<crate::models::SideEffect>>,
    stream: records::Stream,
    /// The liveness index: session → (due time ms, routing JSON).
    due: HashMap<String, (i64, String)>,
    /// The data epoch.
    epoch: Option<String>,
    /// The events stream: (id, event), oldest first, trimmed to the length asked by the last append.
    events: VecDeque<(String, crate::events::AcfEvent)>,
    /// Sequence of the last event id handed out.
    events_seq: u64,
    /// When the data was last taken: the "now" every expiry check of the current call uses.
    now: Instant,
    /// When the next sweep is due, and the time between sweeps.
    next_sweep: Instant,
    sweep_every: Duration,
    /// The TTLs, from the settings.
    ttl: Ttls,
}

/// The lifetimes of [`StoreSettings`], copied where the writes need them.
#[derive(Debug, Clone, Copy)]
struct Ttls {
    message: Duration,
    session: Duration,
    record: Duration,
    inbox: Duration,
}

/// Bounds of the time between sweeps: often enough that the garbage stays a fraction of the live data, rarely
/// enough that a sweep (linear in the data) costs little per call.
const SWEEP_EVERY_MIN: Duration = Duration::from_millis(10);
const SWEEP_EVERY_MAX: Duration = Duration::from_secs(60);

impl Data {
    /// Empty data with the lifetimes of `settings`; sweeps every quarter of the shortest TTL, within
    /// [`SWEEP_EVERY_MIN`]..=[`SWEEP_EVERY_MAX`], so an entry is freed at most a quarter TTL after it expires.
    fn new(settings: &StoreSettings) -> Self {
        let ttl = Ttls {
            message: settings.message_ttl,
            session: settings.session_ttl,
            record: settings.record_ttl,
            inbox: settings.inbox_ttl,
        };
        let shortest = [ttl.message, ttl.session, ttl.record, ttl.inbox]
            .into_iter()
            .min()
            .unwrap_or(SWEEP_EVERY_MAX);
        let sweep_every = (shortest / 4).clamp(SWEEP_EVERY_MIN, SWEEP_EVERY_MAX);
        let now = Instant::now();
        Self {
            messages: TtlMap::default(),
            open: TtlMap::default(),
            states: TtlMap::default(),
            gaps: TtlMap::default(),
            inboxes: TtlMap::default(),
            records: TtlMap::default(),
            session_turns: TtlMap::default(),
            receipts: TtlMap::default(),
            failures: TtlMap::default(),
            session_failures: TtlMap::default(),
            effects: TtlMap::default(),
            stream: records::Stream::default(),
            due: HashMap::new(),
            epoch: None,
            events: VecDeque::new(),
            events_seq: 0,
            now,
            next_sweep: now + sweep_every,
            sweep_every,
            ttl,
        }
    }

    /// The deadline of an entry with `ttl` written now.
    fn until(&self, ttl: Duration) -> Instant {
        ttl::deadline(self.now, ttl)
    }

    /// Frees every expired entry, and the ids in the indexes whose entry is gone (reads skip them anyway, as the
    /// Redis stores skip an index member whose key expired first), dropping indexes left empty.
    fn sweep(&mut self) {
        let now = self.now;
        self.messages.sweep(now);
        self.states.sweep(now);
        self.gaps.sweep(now);
        self.inboxes.sweep(now);
        self.records.sweep(now);
        self.receipts.sweep(now);
        self.failures.sweep(now);
        self.effects.sweep(now);
        let Self {
            messages,
            open,
            records,
            session_turns,
            failures,
            session_failures,
            ..
        } = self;
        open.prune(now, |id| messages.contains_key(id, now));
        session_turns.prune(now, |id| records.contains_key(id, now));
        session_failures.prune(now, |id| failures.contains_key(id, now));
        self.next_sweep = now + self.sweep_every;
    }

    /// How many expiring entries are held.
    fn expiring_entries(&self) -> usize {
        self.messages.len()
            + self.open.len()
            + self.states.len()
            + self.gaps.len()
            + self.inboxes.len()
            + self.records.len()
            + self.session_turns.len()
            + self.receipts.len()
            + self.failures.len()
            + self.session_failures.len()
            + self.effects.len()
    }
}

impl<K: Eq + std::hash::Hash> TtlMap<K, Index> {
    /// Sweeps the expired indexes, and from the others the ids `keep` rejects; drops indexes left empty.
    fn prune(&mut self, now: Instant, keep: impl Fn(&Uuid) -> bool) {
        self.sweep(now);
        self.retain_values(|ids| {
            ids.retain(|id| keep(id));
            !ids.is_empty()
        });
    }
}

impl MemoryStores {
    /// Stores fenced by `table` (the one the [`crate::mutex::MemorySessionMutex`] uses).
    pub fn new(table: Arc<MemoryLockTable>, settings: StoreSettings) -> Self {
        Self {
            table,
            data: Arc::new(Mutex::new(Data::new(&settings))),
            settings,
            inbox_pushed: Arc::new(Notify::new()),
        }
    }

    /// The data, with its clock read, and swept first when a sweep is due.
    fn data(&self) -> MutexGuard<'_, Data> {
        // Every update below completes without panicking midway, so a poisoned lock still guards consistent data.
        let mut data = self.data.lock().unwrap_or_else(PoisonError::into_inner);
        data.now = Instant::now();
        if data.now >= data.next_sweep {
            data.sweep();
        }
        data
    }

    /// How many entries that expire are held, after freeing the expired ones: messages, open-message indexes,
    /// session states and gap samples, inboxes, turn and failure records and their indexes, commit markers and
    /// side-effect logs, each counted once per key as Redis would hold it. Not counted: the response and event
    /// streams (capped instead) and the due index and epoch (which do not expire). For memory accounting and tests.
    pub fn expiring_entries(&self) -> usize {
        let mut data = self.data();
        data.sweep();
        data.expiring_entries()
    }

    /// Runs `write` on the data only if `lease` is current, atomically with respect to lock acquisitions.
    fn fenced<R>(
        &self,
        lease: &Lease,
        write: impl FnOnce(&mut Data) -> R,
    ) -> Result<R, StoreError> {
        self.table
            .with_current(lease, || write(&mut self.data()))
            .ok_or_else(|| StoreError::StaleFence {
                session_key: lease.session_key.clone(),
                fence: lease.fence,
            })
    }
}

#[async_trait]
impl SessionInbox for MemoryStores {
    async fn push(&self, session_key: &str, entry: &InboxEntry) -> Result<(), StoreError> {
        let mut data = self.data();
        let (now, until) = (data.now, data.until(data.ttl.inbox));
        data.inboxes
            .refresh(session_key.to_owned(), now, until)
            .push_back(entry.clone());
        drop(data);
        self.inbox_pushed.notify_waiters();
        Ok(())
    }

    async fn wait(
        &self,
        session_key: &str,
        deadline: Instant,
    ) -> Result<Option<InboxEntry>, StoreError> {
        loop {
            // Register for the wake-up before looking, so a push between the look and the wait is not missed.
            let pushed = self.inbox_pushed.notified();
            tokio::pin!(pushed);
            pushed.as_mut().enable();
            if let Some(entry) = self.pop(session_key) {
                return Ok(Some(entry));
            }
            if tokio::time::timeout_at(deadline, pushed).await.is_err() {
                return Ok(None);
            }
        }
    }

    async fn drain(&self, session_key: &str) -> Result<Vec<InboxEntry>, StoreError> {
        let mut data = self.data();
        let now = data.now;
        Ok(data
            .inboxes
            .remove(session_key, now)
            .map(Vec::from)
            .unwrap_or_default())
    }
}

impl MemoryStores {
    /// Takes the oldest entry of a live inbox (`LPOP`: the deadline stays; an emptied list is deleted).
    fn pop(&self, session_key: &str) -> Option<InboxEntry> {
        let mut data = self.data();
        let now = data.now;
        let inbox = data.inboxes.get_mut(session_key, now)?;
        let entry = inbox.pop_front();
        if inbox.is_empty() {
            data.inboxes.remove(session_key, now);
        }
        entry
    }
}

/// Stream entry ids in Redis's `{ms}-{seq}` form, strictly increasing.
fn next_stream_id(last: &mut (u64, u64)) -> String {
    let now = u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap_or(0);
    *last = if now > last.0 {
        (now, 0)
    } else {
        (last.0, last.1 + 1)
    };
    format!("{}-{}", last.0, last.1)
}

fn parse_stream_id(id: &str) -> Option<(u64, u64)> {
    let (ms, seq) = id.split_once('-').unwrap_or((id, "0"));
    Some((ms.parse().ok()?, seq.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_ids_increase_strictly() {
        let mut last = (0, 0);
        let a = parse_stream_id(&next_stream_id(&mut last)).unwrap();
        let b = parse_stream_id(&next_stream_id(&mut last)).unwrap();
        assert!(b > a);
        assert_eq!(parse_stream_id("0"), Some((0, 0)));
        assert_eq!(parse_stream_id("17-3"), Some((17, 3)));
        assert_eq!(parse_stream_id("x"), None);
    }
}
