//! The event router: listeners registered per pattern (`*`, `category.*` or an exact type), each event handed to
//! every matching listener. Listeners are isolated from each other: one that fails or panics is logged and the
//! others still receive the event.

use std::panic::AssertUnwindSafe;
use std::sync::{Arc, PoisonError, RwLock};

use async_trait::async_trait;
use futures::FutureExt as _;

use super::{AcfEvent, AcfEventType};

/// Why a listener could not handle an event (logged by the router; never reaches the emitter).
pub type ListenerError = Box<dyn std::error::Error + Send + Sync>;

/// Where an event is routed from: the step attempt that emitted it, when there is one.
#[derive(Debug, Clone, Copy, Default)]
pub struct EventScope<'a> {
    step: Option<&'a acf_sdk::Context>,
}

impl<'a> EventScope<'a> {
    /// Outside any step (a direct call, a test).
    pub fn detached() -> Self {
        Self { step: None }
    }

    /// Inside the step attempt `ctx` (its run's Hatchet stream is reachable).
    pub fn step(ctx: &'a acf_sdk::Context) -> Self {
        Self { step: Some(ctx) }
    }

    /// The step attempt's context, when routed from one.
    pub fn step_context(&self) -> Option<&'a acf_sdk::Context> {
        self.step
    }
}

/// Receives the events whose type matches the pattern it was registered with.
#[async_trait]
pub trait EventListener: Send + Sync {
    /// A short stable name for logs (`log`, `redis_stream`, ...).
    fn name(&self) -> &str;

    /// Handles one event. An error is logged as `event_listener_failed`; the other listeners run regardless.
    async fn handle(&self, event: &AcfEvent, scope: &EventScope<'_>) -> Result<(), ListenerError>;
}

/// A pattern that can never match an event type, refused at registration so a typo does not silently drop events.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "event pattern `{pattern}` matches no event type; accepted: `*`, `category.*` (turn, supersede, commit, tool, enforcement, session, mutex) or an exact type such as `tool.executed`"
)]
pub struct PatternError {
    /// The refused pattern.
    pub pattern: String,
}

/// Checks that `pattern` matches at least one event type (an empty pattern never does).
pub fn validate_pattern(pattern: &str) -> Result<(), PatternError> {
    if AcfEventType::ALL.iter().any(|t| t.matches_pattern(pattern)) {
        Ok(())
    } else {
        Err(PatternError {
            pattern: pattern.to_owned(),
        })
    }
}

struct Registered {
    pattern: String,
    listener: Arc<dyn EventListener>,
}

/// Routes events to listeners by pattern. Cheap to share (`Arc`); listeners can be added and removed while it is
/// in use.
#[derive(Default)]
pub struct EventRouter {
    listeners: RwLock<Vec<Registered>>,
}

impl std::fmt::Debug for EventRouter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let listeners: Vec<String> = self
            .read()
            .iter()
            .map(|r| format!("{} <- {}", r.listener.name(), r.pattern))
            .collect();
        f.debug_struct("EventRouter")
            .field("listeners", &listeners)
            .finish()
    }
}

impl EventRouter {
    /// A router without listeners: events go nowhere (side effects are still recorded by the workflow).
    pub fn new() -> Self {
        Self::default()
    }

    /// A router with [`super::LogSink`] on `*`: today's behaviour, every event logged as `acf_event_emitted`.
    pub fn logging() -> Self {
        let router = Self::new();
        router.push("*", Arc::new(super::LogSink));
        router
    }

    /// Registers `listener` for the events matching `pattern`. A listener may be registered under several
    /// patterns; an event matching more than one of them still reaches it once.
    pub fn register(
        &self,
        pattern: &str,
        listener: Arc<dyn EventListener>,
    ) -> Result<(), PatternError> {
        validate_pattern(pattern)?;
        self.push(pattern, listener);
        Ok(())
    }

    fn push(&self, pattern: &str, listener: Arc<dyn EventListener>) {
        self.listeners
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Registered {
                pattern: pattern.to_owned(),
                listener,
            });
    }

    /// Removes the listener named `name` from `pattern`. Returns whether one was removed; removing an unknown
    /// listener is not an error (logged as `event_listener_not_found` when the pattern itself is registered).
    pub fn unregister(&self, pattern: &str, name: &str) -> bool {
        let mut listeners = self
            .listeners
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let known_pattern = listeners.iter().any(|r| r.pattern == pattern);
        let before = listeners.len();
        listeners.retain(|r| !(r.pattern == pattern && r.listener.name() == name));
        let removed = listeners.len() < before;
        if !removed && known_pattern {
            tracing::warn!(pattern, listener = name, "event_listener_not_found");
        }
        removed
    }

    /// How many registrations match `event_type` (a listener registered under two matching patterns counts
    /// twice, though it receives the event once).
    pub fn listener_count(&self, event_type: AcfEventType) -> usize {
        self.read()
            .iter()
            .filter(|r| event_type.matches_pattern(&r.pattern))
            .count()
    }

    /// Hands `event` to every matching listener, concurrently, and returns when all are done. A listener's error
    /// or panic is logged (`event_listener_failed`) and affects no other listener and not the caller.
    pub async fn route(&self, event: &AcfEvent, scope: &EventScope<'_>) {
        let mut matching: Vec<Arc<dyn EventListener>> = Vec::new();
        for registered in self.read().iter() {
            if event.matches_pattern(&registered.pattern)
                && !matching
                    .iter()
                    .any(|seen| Arc::ptr_eq(seen, &registered.listener))
            {
                matching.push(Arc::clone(&registered.listener));
            }
        }
        let deliveries = matching.iter().map(|listener| async move {
            let outcome = AssertUnwindSafe(listener.handle(event, scope))
                .catch_unwind()
                .await;
            let error = match outcome {
                Ok(Ok(())) => return,
                Ok(Err(error)) => acf_sdk::error::Report(error.as_ref()).to_string(),
                Err(panic) => panic_text(panic.as_ref()),
            };
            tracing::warn!(
                listener = listener.name(),
                event_type = event.event_type.as_str(),
                turn_id = %event.logical_turn_id,
                session_key = %event.session_key,
                error = %error,
                "event_listener_failed"
            );
        });
        futures::future::join_all(deliveries).await;
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Vec<Registered>> {
        self.listeners
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// The message of a panic payload (`&str` or `String`), for the log.
fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    let message = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a non-text panic payload".to_owned());
    format!("the listener panicked: {message}")
}
