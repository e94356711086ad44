//! The parity table in the rustdoc of `acf_sdk::workflow` (Python decorator argument ↔ macro option ↔ builder
//! method) has no gap: it lists every argument of the Python SDK's declaration decorators, read from the
//! installed `hatchet-sdk` (the workspace venv, or `$ACF_PYTHON`), and every option the macros accept, read
//! from their option tables; and it names no option the macros do not have.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The Python decorators the table covers, as the table spells them, with the expression naming them.
const DECORATORS: &[(&str, &str)] = &[
    ("hatchet.workflow", "Hatchet.workflow"),
    ("hatchet.task", "Hatchet.task"),
    ("hatchet.durable_task", "Hatchet.durable_task"),
    ("Workflow.task", "Workflow.task"),
    ("Workflow.durable_task", "Workflow.durable_task"),
    ("Workflow.on_failure_task", "Workflow.on_failure_task"),
    ("Workflow.on_success_task", "Workflow.on_success_task"),
];

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("acf-macros sits in the workspace")
        .to_path_buf()
}

/// The rows of the table: three cells each.
fn table() -> Vec<[String; 3]> {
    let path = workspace().join("acf-sdk/src/lib.rs");
    let source = std::fs::read_to_string(&path).expect("acf-sdk/src/lib.rs is readable");
    let start = source
        .find("/// # Parity with the Python SDK")
        .expect("the parity table's heading is in acf-sdk/src/lib.rs");
    source[start..]
        .lines()
        .skip_while(|line| !line.starts_with("/// | Python |"))
        .skip(2) // header and separator
        .take_while(|line| line.starts_with("/// |"))
        .map(|line| {
            let cells: Vec<String> = line
                .trim_start_matches("/// ")
                .split(" | ")
                .map(|cell| cell.trim_matches(|c| c == '|' || c == ' ').to_owned())
                .collect();
            assert_eq!(cells.len(), 3, "a parity row has three cells: {line}");
            [cells[0].clone(), cells[1].clone(), cells[2].clone()]
        })
        .collect()
}

/// The backticked pieces of a cell.
fn code_spans(cell: &str) -> Vec<&str> {
    cell.split('`').skip(1).step_by(2).collect()
}

/// `name(arg)` → (`name`, Some(`arg`)); `name` → (`name`, None).
fn call(span: &str) -> (String, Option<String>) {
    match span.split_once('(') {
        Some((name, rest)) => (name.to_owned(), Some(rest.trim_end_matches(')').to_owned())),
        None => (span.to_owned(), None),
    }
}

fn python() -> PathBuf {
    let path = match std::env::var_os("ACF_PYTHON") {
        Some(value) if !value.is_empty() => PathBuf::from(value),
        _ => workspace().join(".venv/bin/python"),
    };
    assert!(
        path.exists(),
        "\n==== PYTHON SDK UNAVAILABLE ====\n{} does not exist; run `scripts/ensure-venv` (hatchet-sdk==1.43.1) or set \
         ACF_PYTHON. The parity table is checked against the Python signatures, so this test fails rather than skips.\n",
        path.display()
    );
    path
}

/// (decorator as the table spells it, argument) for every argument of every decorator.
fn python_arguments() -> BTreeSet<(String, String)> {
    let mut script = String::from(
        "import inspect\nfrom hatchet_sdk import Hatchet\nfrom hatchet_sdk.runnables.workflow import Workflow\n",
    );
    for (spelled, expression) in DECORATORS {
        writeln!(
            script,
            "for p in inspect.signature({expression}).parameters:\n    if p != 'self':\n        print('{spelled}', p)"
        )
        .expect("writing to a String cannot fail");
    }
    let output = Command::new(python())
        .args(["-c", &script])
        .output()
        .expect("python runs");
    assert!(
        output.status.success(),
        "reading the Python signatures failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .expect("utf-8")
        .lines()
        .map(|line| {
            let (decorator, argument) = line.split_once(' ').expect("two words");
            (decorator.to_owned(), argument.to_owned())
        })
        .collect()
}

/// (attribute, option) for every option the macros accept.
fn macro_options() -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for name in crate::parse::workflow_option_names() {
        out.insert(("workflow".to_owned(), name.to_owned()));
    }
    for kind in [
        crate::model::StepKind::Step,
        crate::model::StepKind::OnFailure,
        crate::model::StepKind::OnSuccess,
    ] {
        for name in crate::parse::step_option_names(kind) {
            out.insert((kind.name().to_owned(), name.to_owned()));
        }
    }
    for name in crate::expand::task_option_names() {
        out.insert(("task".to_owned(), name.to_owned()));
    }
    out
}

#[test]
fn the_parity_table_has_no_gap() {
    let rows = table();
    assert!(rows.len() > 20, "the table was found ({} rows)", rows.len());
    let mut python_listed = BTreeSet::new();
    let mut macro_listed = BTreeSet::new();
    for [python, macros, _builder] in &rows {
        for span in code_spans(python) {
            if let (decorator, Some(argument)) = call(span) {
                python_listed.insert((decorator, argument));
            }
        }
        for span in code_spans(macros) {
            let Some(attribute) = span.strip_prefix("#[").and_then(|s| s.strip_suffix(']')) else {
                continue;
            };
            if let (attribute, Some(option)) = call(attribute) {
                macro_listed.insert((attribute, option));
            }
        }
    }
    // `X.durable_task(*)`: every argument listed for `X.task` is listed for the durable twin too.
    for twin in ["Workflow", "hatchet"] {
        let durable = format!("{twin}.durable_task");
        if python_listed.remove(&(durable.clone(), "*".to_owned())) {
            let shared: Vec<String> = python_listed
                .iter()
                .filter(|(decorator, _)| *decorator == format!("{twin}.task"))
                .map(|(_, argument)| argument.clone())
                .collect();
            python_listed.extend(
                shared
                    .into_iter()
                    .map(|argument| (durable.clone(), argument)),
            );
        }
    }
    let python_missing: Vec<_> = python_arguments()
        .difference(&python_listed)
        .cloned()
        .collect();
    assert!(
        python_missing.is_empty(),
        "Python arguments missing from the parity table: {python_missing:?}"
    );
    let options = macro_options();
    let macro_missing: Vec<_> = options.difference(&macro_listed).cloned().collect();
    assert!(
        macro_missing.is_empty(),
        "macro options missing from the parity table: {macro_missing:?}"
    );
    let stale: Vec<_> = macro_listed.difference(&options).cloned().collect();
    assert!(
        stale.is_empty(),
        "the parity table names options the macros do not have: {stale:?}"
    );
}
