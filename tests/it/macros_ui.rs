//! Compile-fail UI tests for `#[workflow]`, `#[step]`, `#[on_failure]`, `#[on_success]` and `#[task]`: every
//! `acf-macros/tests/ui/<category>/<case>.rs` must fail to compile with exactly the diagnostics in the `.stderr`
//! beside it, except under `tests/ui/pass/`, where the one case must compile. `ACF_UI_BLESS=1` rewrites the `.stderr` files from what rustc prints now: review the diff.
//!
//! The cases are type-checked by `rustc` directly against the rlibs cargo already built for this test binary
//! (`acf_sdk`, `serde`, `schemars` and, through `acf_sdk`, the `acf_macros` proc-macro). trybuild, which this
//! replaces, type-checks them inside a generated cargo project with its own target directory, so a clean run
//! built a second copy of the SDK's whole dependency tree first: two CPU-minutes, the suite's longest test.
//!
//! Diagnostics are normalized so they do not depend on where the workspace lives or on lines outside the case: a
//! location in another file prints as `$WORKSPACE/…`, `$CARGO/…` or `$RUST/…` without line and column, and "and
//! 131 others" as "and $N others". The SDK's own source lines are not shown at all (its rlib records them
//! relative to the workspace root and rustc runs in `acf-macros/`), so editing the SDK's internals leaves the
//! expected output alone; the note naming the bound (`required by a bound in acf_sdk::__private::…`) stays.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;

use acf_tests::workspace_root;

/// The toolchain the `.stderr` files were generated with (see `rust-toolchain.toml`).
const PINNED: &str = "rustc 1.95.0";

/// The crates the cases name themselves; everything else resolves through these rlibs' own dependencies.
const EXTERNS: [&str; 3] = ["acf_sdk", "serde", "schemars"];

/// A workflow that must compile: it selects the rlibs (see [`Externs::find`]) and proves that a case's errors
/// come from the case, not from the set-up.
const CONTROL: &str = "tests/ui/pass/workflow.rs";

#[test]
fn macros_ui() {
    let version = Command::new(rustc())
        .arg("--version")
        .output()
        .expect("rustc runs");
    let version = String::from_utf8_lossy(&version.stdout);
    // rustc's wording and spans change between releases; only the pinned toolchain is authoritative. Fail,
    // never pass: a skipped UI suite would hide every regression in the macros' errors.
    assert!(
        version.starts_with(PINNED),
        "the macro UI tests are pinned to {PINNED} (rust-toolchain.toml), found {version}"
    );

    let crate_dir = workspace_root().join("acf-macros");
    let scratch = tempfile::tempdir().expect("a scratch directory");
    let externs = Externs::find(&crate_dir, scratch.path());
    let cases = cases(&crate_dir);
    assert!(
        cases.len() > 50,
        "expected the UI cases under {}, found {}",
        crate_dir.display(),
        cases.len()
    );

    let bless = std::env::var_os("ACF_UI_BLESS").is_some_and(|v| v == "1");
    let failures = Mutex::new(Vec::new());
    let next = Mutex::new(cases.iter().enumerate());
    // rustc is single-threaded per case; two at a time keeps both cores busy without starving the other tests.
    std::thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| {
                loop {
                    let Some((n, case)) = next.lock().expect("case queue").next() else {
                        break;
                    };
                    let output = externs.check(
                        &crate_dir,
                        case,
                        &scratch.path().join(format!("case{n}.rmeta")),
                    );
                    if let Some(failure) = verdict(&crate_dir, case, &output, bless) {
                        failures.lock().expect("failure list").push(failure);
                    }
                }
            });
        }
    });
    let mut failures = failures.into_inner().expect("failure list");
    failures.sort();
    assert!(
        failures.is_empty(),
        "{} of {} UI cases failed (ACF_UI_BLESS=1 rewrites the .stderr files):\n\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

/// The case files, relative to `crate_dir` (rustc prints them as given).
fn cases(crate_dir: &Path) -> Vec<PathBuf> {
    let mut cases = Vec::new();
    let ui = crate_dir.join("tests/ui");
    for category in std::fs::read_dir(&ui).expect("tests/ui is readable") {
        let category = category.expect("a directory entry").path();
        if !category.is_dir() || category.ends_with("pass") {
            continue;
        }
        for file in std::fs::read_dir(&category).expect("a category directory is readable") {
            let file = file.expect("a directory entry").path();
            if file.extension().is_some_and(|e| e == "rs") {
                cases.push(
                    file.strip_prefix(crate_dir)
                        .expect("under the crate")
                        .to_path_buf(),
                );
            }
        }
    }
    cases.sort();
    cases
}

/// What is wrong with one case's outcome, if anything (with `bless`, a differing `.stderr` is rewritten).
fn verdict(crate_dir: &Path, case: &Path, output: &Output, bless: bool) -> Option<String> {
    let stderr = String::from_utf8_lossy(&output.stderr);
    if output.status.success() {
        return Some(format!(
            "{}: compiled, but every UI case must fail\n{stderr}",
            case.display()
        ));
    }
    let actual = normalize(&stderr, case);
    let expected_path = crate_dir.join(case).with_extension("stderr");
    let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
    if actual == expected {
        return None;
    }
    if bless {
        std::fs::write(&expected_path, &actual).expect("the .stderr file is writable");
        return None;
    }
    Some(format!(
        "{}: the diagnostics differ from {}\n--- expected\n{expected}--- actual\n{actual}",
        case.display(),
        expected_path.display()
    ))
}

fn rustc() -> OsString {
    std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into())
}

/// The `--extern` rlibs the cases compile against.
struct Externs {
    deps: PathBuf,
    paths: Vec<(&'static str, PathBuf)>,
}

impl Externs {
    /// The deps directory beside this test binary holds every rlib cargo built for it, but possibly several of
    /// one crate (a proc-macro's dependencies are built apart, with their own features; another `cargo build`
    /// may have left other feature sets), and rustc refuses an ambiguous `--extern`. The right set is the one
    /// `acf_sdk` was built against (a case's `serde::Serialize` derive must implement `acf_sdk`'s serde
    /// trait): the first combination, newest files first, that compiles [`CONTROL`].
    fn find(crate_dir: &Path, scratch: &Path) -> Self {
        let exe = std::env::current_exe().expect("the test binary's path");
        let deps = exe
            .parent()
            .expect("the test binary's directory")
            .to_path_buf();
        let candidates: Vec<Vec<PathBuf>> = EXTERNS.iter().map(|name| rlibs(&deps, name)).collect();
        let control = Path::new(CONTROL);
        let mut last = None;
        for combination in combinations(&candidates) {
            let externs = Self {
                deps: deps.clone(),
                paths: EXTERNS.into_iter().zip(combination).collect(),
            };
            let output = externs.check(crate_dir, control, &scratch.join("control.rmeta"));
            if output.status.success() {
                return externs;
            }
            last = Some(output);
        }
        panic!(
            "no combination of {candidates:?} compiles {CONTROL}; the last attempt printed:\n{}",
            last.map(|o| String::from_utf8_lossy(&o.stderr).into_owned())
                .unwrap_or_default()
        );
    }

    /// Type-checks one case (metadata only, as `cargo check` does) with the flags trybuild used.
    fn check(&self, crate_dir: &Path, case: &Path, out: &Path) -> Output {
        let mut command = Command::new(rustc());
        command
            .current_dir(crate_dir)
            .args([
                "--edition",
                "2024",
                "--crate-type",
                "bin",
                "--crate-name",
                "ui_case",
            ])
            .args([
                "--emit=metadata",
                "--diagnostic-width=140",
                "--color=never",
                "-A",
                "dead_code",
            ])
            .arg("-o")
            .arg(out)
            .arg("-L")
            .arg(format!("dependency={}", self.deps.display()));
        for (name, path) in &self.paths {
            command
                .arg("--extern")
                .arg(format!("{name}={}", path.display()));
        }
        command.arg(case).output().expect("rustc runs")
    }
}

/// `lib<name>-<hash>.rlib` files in `deps`, newest first; none is a set-up error worth its own message.
fn rlibs(deps: &Path, name: &str) -> Vec<PathBuf> {
    let prefix = format!("lib{name}-");
    let mut found: Vec<(std::time::SystemTime, PathBuf)> = std::fs::read_dir(deps)
        .expect("the deps directory is readable")
        .filter_map(Result::ok)
        .filter(|e| {
            let file = e.file_name();
            let file = file.to_string_lossy();
            file.starts_with(&prefix) && file.ends_with(".rlib")
        })
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .collect();
    assert!(
        !found.is_empty(),
        "no {prefix}*.rlib in {}: cargo builds it for this test",
        deps.display()
    );
    found.sort_by_key(|(modified, _)| std::cmp::Reverse(*modified));
    found.into_iter().map(|(_, path)| path).collect()
}

/// Every choice of one candidate per crate, the first candidates first.
fn combinations(candidates: &[Vec<PathBuf>]) -> Vec<Vec<PathBuf>> {
    candidates.iter().fold(vec![Vec::new()], |acc, options| {
        acc.iter()
            .flat_map(|prefix| {
                options.iter().map(move |option| {
                    let mut next = prefix.clone();
                    next.push(option.clone());
                    next
                })
            })
            .collect()
    })
}

/// rustc's stderr for `case`, without the summary lines and with locations outside the case made portable.
fn normalize(stderr: &str, case: &Path) -> String {
    let case = case.to_string_lossy();
    let root = workspace_root();
    let root = root.to_string_lossy();
    let mut out = String::new();
    // Inside a snippet of another file, whose line numbers are hidden.
    let mut foreign = false;
    for line in stderr.lines() {
        if line.starts_with("error: aborting due to")
            || line.starts_with("For more information about")
            || line.starts_with("Some errors have detailed explanations")
            || (line.starts_with("warning: ") && line.ends_with(" emitted"))
        {
            continue;
        }
        let trimmed = line.trim_start();
        let indent = &line[..line.len() - trimmed.len()];
        if let Some(location) = trimmed
            .strip_prefix("--> ")
            .or_else(|| trimmed.strip_prefix("::: "))
        {
            let arrow = &trimmed[..4];
            let file = strip_line_column(location);
            foreign = file != case;
            if foreign {
                out.push_str(&format!("{indent}{arrow}{}\n", portable(file, &root)));
                continue;
            }
        } else if foreign && let Some((number, rest)) = trimmed.split_once(" |") {
            if is_number(number) {
                out.push_str(&format!("{indent}{} |{rest}\n", " ".repeat(number.len())));
                continue;
            }
        } else if !trimmed.starts_with('|') && !trimmed.starts_with('=') {
            foreign = false;
        }
        out.push_str(&hide_count(line));
        out.push('\n');
    }
    while out.ends_with("\n\n") {
        out.pop();
    }
    out
}

/// `path:line:column` → `path`.
fn strip_line_column(location: &str) -> &str {
    let mut file = location;
    for _ in 0..2 {
        if let Some((head, tail)) = file.rsplit_once(':')
            && is_number(tail)
        {
            file = head;
        }
    }
    file
}

/// A location in another file, independent of where the workspace, the cargo registry and the toolchain live.
fn portable(file: &str, root: &str) -> String {
    if let Some(rest) = file.strip_prefix(root) {
        return format!("$WORKSPACE{rest}");
    }
    if let Some((_, rest)) = file.split_once("/registry/src/") {
        // `<index>-<hash>/<crate>-<version>/…`
        if let Some((_, rest)) = rest.split_once('/') {
            return format!("$CARGO/{rest}");
        }
    }
    if let Some((_, rest)) = file.split_once("/library/")
        && (file.starts_with("/rustc/") || file.contains("/lib/rustlib/"))
    {
        return format!("$RUST/{rest}");
    }
    if Path::new(file).is_relative() {
        // The SDK's own sources: cargo compiled the workspace's crates with paths relative to its root.
        return format!("$WORKSPACE/{file}");
    }
    file.to_owned()
}

/// "and 131 others" → "and $N others": the count grows with every impl anywhere in the dependency tree.
fn hide_count(line: &str) -> String {
    let trimmed = line.trim_start();
    if let Some(rest) = trimmed.strip_prefix("and ")
        && let Some((count, tail)) = rest.split_once(' ')
        && tail == "others"
        && is_number(count)
    {
        return format!("{}and $N others", &line[..line.len() - trimmed.len()]);
    }
    line.to_owned()
}

/// A non-empty run of ASCII digits.
fn is_number(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit())
}
