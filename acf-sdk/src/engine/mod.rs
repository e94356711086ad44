//! The embedded, in-memory Hatchet-compatible engine.
