//! Expansion snapshots (prettyplease-formatted) and error-message snapshots, one scenario each.

mod errors;
mod expansion;
