//! Expansion snapshots (prettyplease-formatted) and error-message snapshots, one scenario each.

mod errors;
mod expansion;
mod form_errors;
mod forms;
mod parity_table;
