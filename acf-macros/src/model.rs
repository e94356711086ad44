//! The typed model of a `#[workflow]` impl block. Every node keeps the user's syntax (or its span) so
//! validation and expansion can point errors at the narrowest token.

use proc_macro2::Span;
use syn::{Ident, ImplItemFn, ItemImpl, LitStr, PatType, Path, Type};

/// A value read from an attribute option, with the span of the value for later errors.
#[derive(Clone, Debug)]
pub(crate) struct Spanned<T> {
    pub value: T,
    pub span: Span,
}

/// A duration literal resolved at expansion time.
#[derive(Clone, Copy, Debug)]
pub(crate) struct DurationLit {
    pub millis: u64,
    pub span: Span,
}

/// `#[workflow(...)]` on an inherent impl block.
pub(crate) struct Workflow<'a> {
    /// The impl block as written, attributes included.
    pub original: &'a ItemImpl,
    /// The type the block implements (`MyWorkflow`).
    pub self_ty: &'a Type,
    /// The last identifier of the type, for the default name and generated identifiers.
    pub type_ident: Option<&'a Ident>,
    pub options: WorkflowOptions,
    /// `#[step]` methods in declaration order.
    pub steps: Vec<Step<'a>>,
    /// Every `#[on_failure]` method (validation rejects more than one).
    pub on_failure: Vec<Step<'a>>,
    /// Every `#[on_success]` method (validation rejects more than one).
    pub on_success: Vec<Step<'a>>,
    /// Declared by `#[task]` on a free function (a one-task workflow).
    pub standalone: bool,
    /// The paths of our method attributes as written (`step`, `acf_sdk::on_failure`, ...), deduplicated.
    pub attribute_paths: Vec<&'a Path>,
}

#[derive(Default)]
pub(crate) struct WorkflowOptions {
    pub name: Option<LitStr>,
    pub description: Option<LitStr>,
    pub on_events: Vec<LitStr>,
    pub cron: Vec<LitStr>,
    /// One entry registers `concurrency`; several register `concurrency_arr` (as Python does for a list).
    pub concurrency: Vec<Concurrency>,
    pub sticky: Option<Spanned<Sticky>>,
    pub default_priority: Option<Spanned<i32>>,
    pub version: Option<LitStr>,
    /// `cron_input = r#"{...}"#`: a JSON object literal, checked at expansion time.
    pub cron_input: Option<LitStr>,
    pub default_filters: Vec<DefaultFilter>,
    pub idempotency: Option<Idempotency>,
    /// `crate = "..."`: where the generated code finds `__private`.
    pub krate: Option<Path>,
}

/// `concurrency(expression = "...", max_runs = N, strategy = "...")`; without `expression`, one global
/// group (Python's `concurrency=N`).
pub(crate) struct Concurrency {
    pub keyword: Span,
    pub expression: Option<StrOrConst>,
    pub max_runs: Option<Spanned<i32>>,
    pub strategy: Option<Spanned<Strategy>>,
}

/// A string option given as a literal (checked at expansion time) or as a path to a `&str` constant (checked
/// by rustc, and by the SDK when the workflow registers).
pub(crate) enum StrOrConst {
    Lit(LitStr),
    Const(Path),
}

/// `default_filter(expression = "...", scope = "...", payload = r#"{...}"#)`.
pub(crate) struct DefaultFilter {
    pub keyword: Span,
    pub expression: Option<LitStr>,
    pub scope: Option<LitStr>,
    pub payload: Option<LitStr>,
}

/// `idempotency(expression = "...", ttl = "10m", method = "ttl" | "status")`.
pub(crate) struct Idempotency {
    pub keyword: Span,
    pub expression: Option<LitStr>,
    pub ttl: Option<DurationLit>,
    /// Whether `ttl` was written (it may have failed to parse, which is reported where it was read).
    pub ttl_given: bool,
    pub method: Option<Spanned<IdempotencyMethod>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum IdempotencyMethod {
    Ttl,
    Status,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Sticky {
    Soft,
    Hard,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Strategy {
    CancelInProgress,
    GroupRoundRobin,
    CancelNewest,
}

/// Whether a method is a DAG step, the workflow's on-failure handler or its on-success handler.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StepKind {
    Step,
    OnFailure,
    OnSuccess,
}

impl Workflow<'_> {
    /// Every step, then the failure and success handlers.
    pub(crate) fn all_steps(&self) -> impl Iterator<Item = &Step<'_>> {
        self.steps
            .iter()
            .chain(&self.on_failure)
            .chain(&self.on_success)
    }

    /// The steps no other step lists as a parent, in declaration order.
    pub(crate) fn leaves(&self) -> Vec<&Step<'_>> {
        self.steps
            .iter()
            .filter(|step| {
                !self
                    .steps
                    .iter()
                    .any(|other| other.options.parents.contains(step.ident()))
            })
            .collect()
    }
}

impl StepKind {
    /// The attribute's name, `step` or `on_failure`.
    pub(crate) fn name(self) -> &'static str {
        match self {
            StepKind::Step => "step",
            StepKind::OnFailure => "on_failure",
            StepKind::OnSuccess => "on_success",
        }
    }

    pub(crate) fn attribute(self) -> &'static str {
        match self {
            StepKind::Step => "#[step]",
            StepKind::OnFailure => "#[on_failure]",
            StepKind::OnSuccess => "#[on_success]",
        }
    }
}

/// A method marked `#[step]` or `#[on_failure]`.
pub(crate) struct Step<'a> {
    pub kind: StepKind,
    pub method: &'a ImplItemFn,
    /// Our attribute (`#[step(...)]`), for errors about the step as a whole.
    pub attr: &'a syn::Attribute,
    pub options: StepOptions,
    /// Arguments after the receiver: context, input, then one per parent.
    pub args: Vec<&'a PatType>,
}

impl Step<'_> {
    pub(crate) fn ident(&self) -> &Ident {
        &self.method.sig.ident
    }

    /// The task's readable id: the explicit `name`, else the method name, lower-cased as Hatchet does. The
    /// failure handler gets Python's `-on-failure` suffix, so both SDKs register (and dispatch) the same id.
    pub(crate) fn readable_id(&self) -> String {
        let base = match &self.options.name {
            Some(name) => name.value().to_lowercase(),
            None => self
                .ident()
                .to_string()
                .trim_start_matches("r#")
                .to_lowercase(),
        };
        match self.kind {
            StepKind::Step => base,
            StepKind::OnFailure => format!("{base}-on-failure"),
            StepKind::OnSuccess => format!("{base}-on-success"),
        }
    }

    /// The arguments that receive parent outputs.
    pub(crate) fn parent_args(&self) -> &[&PatType] {
        self.args.get(2..).unwrap_or(&[])
    }
}

#[derive(Default)]
pub(crate) struct StepOptions {
    pub name: Option<LitStr>,
    pub parents: Vec<Ident>,
    pub concurrency: Vec<Concurrency>,
    pub retries: Option<Spanned<i32>>,
    pub backoff_factor: Option<Spanned<f64>>,
    pub backoff_max: Option<DurationLit>,
    pub execution_timeout: Option<DurationLit>,
    pub schedule_timeout: Option<DurationLit>,
    pub rate_limits: Vec<RateLimit>,
    pub worker_labels: Vec<WorkerLabel>,
    pub durable: Option<Span>,
    pub slots: Vec<SlotRequest>,
    /// `wait_for`, `skip_if` and `cancel_if`, in the order written.
    pub conditions: Vec<ConditionClause>,
}

/// What a condition clause does when it fires.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ConditionAction {
    WaitFor,
    SkipIf,
    CancelIf,
}

/// `wait_for = ...`: all of `groups` must fire (a list), each group being satisfied by any of its members.
pub(crate) struct ConditionClause {
    pub action: ConditionAction,
    pub groups: Vec<Vec<Condition>>,
}

/// One condition of a clause, with the span of its call for errors.
pub(crate) struct Condition {
    pub span: Span,
    pub kind: ConditionKind,
    /// `key = "..."`: the readable data key overriding the default.
    pub key: Option<LitStr>,
}

pub(crate) enum ConditionKind {
    /// `sleep("10s")`.
    Sleep(DurationLit),
    /// `event("key", filter = "CEL", scope = "...")`.
    Event {
        key: LitStr,
        filter: Option<LitStr>,
        scope: Option<LitStr>,
    },
    /// `parent(step, "CEL over output")`.
    Parent {
        parent: Ident,
        expression: Option<LitStr>,
    },
}

/// `rate_limit(key = "..." | dynamic_key = "...", units = N | "cel", limit = N | "cel", duration = "minute")`.
pub(crate) struct RateLimit {
    pub keyword: Span,
    pub key: Option<LitStr>,
    pub dynamic_key: Option<LitStr>,
    pub units: Option<Spanned<IntOrExpr>>,
    pub limit: Option<Spanned<IntOrExpr>>,
    pub duration: Option<Spanned<RateLimitDuration>>,
}

#[derive(Clone, Debug)]
pub(crate) enum IntOrExpr {
    Int(i32),
    Expr(String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RateLimitDuration {
    Second,
    Minute,
    Hour,
    Day,
    Week,
    Month,
    Year,
}

/// `worker_label(key = "...", value = "..." | N, required, weight = N, comparator = "...")`.
pub(crate) struct WorkerLabel {
    pub keyword: Span,
    pub key: Option<LitStr>,
    pub value: Option<Spanned<LabelValue>>,
    pub required: bool,
    pub weight: Option<Spanned<i32>>,
    pub comparator: Option<Spanned<Comparator>>,
}

#[derive(Clone, Debug)]
pub(crate) enum LabelValue {
    Str(String),
    Int(i32),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Comparator {
    Equal,
    NotEqual,
    GreaterThan,
    GreaterThanOrEqual,
    LessThan,
    LessThanOrEqual,
}

/// One entry of `slots(kind = N)`, or `slots = N` for the step's default slot kind.
pub(crate) struct SlotRequest {
    /// `None` for the `slots = N` shorthand.
    pub kind: Option<Ident>,
    pub units: Spanned<i32>,
}
