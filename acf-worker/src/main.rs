//! `ruche-worker`: the ACF logical-turn worker binary.
fn main() {}
