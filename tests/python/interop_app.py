"""Workflows the engine interop tests run on the official Python SDK.

Every task records what it observed as JSON lines in files under $ACF_TEST_DIR, so the Rust tests can
assert on attempts, timings, workers and cancellations without parsing logs.
"""

import asyncio
import json
import os
import time
from datetime import datetime, timedelta, timezone

from pydantic import BaseModel

from hatchet_sdk import (
    ConcurrencyExpression,
    ConcurrencyLimitStrategy,
    Context,
    DurableContext,
    EmptyModel,
    Hatchet,
    NonRetryableException,
    ParentCondition,
    SleepCondition,
    TTLBasedIdempotencyConfig,
    UserEventCondition,
    or_,
)

hatchet = Hatchet()
TEST_DIR = os.environ.get("ACF_TEST_DIR", ".")
WORKER_NAME = os.environ.get("ACF_WORKER_NAME", "interop-worker")


def record(name: str, **fields) -> None:
    """Appends one JSON line to $ACF_TEST_DIR/<name>.jsonl."""
    fields.setdefault("at", time.time())
    fields.setdefault("worker", WORKER_NAME)
    with open(os.path.join(TEST_DIR, f"{name}.jsonl"), "a", encoding="utf-8") as f:
        f.write(json.dumps(fields) + "\n")


# --- a 3-step DAG -------------------------------------------------------------------------------
class DagInput(BaseModel):
    n: int = 1


dag = hatchet.workflow(name="InteropDag", input_validator=DagInput)


@dag.task()
def first(input: DagInput, ctx: Context) -> dict:
    return {"value": input.n + 1}


@dag.task(parents=[first])
def second(input: DagInput, ctx: Context) -> dict:
    return {"value": ctx.task_output(first)["value"] * 10}


@dag.task(parents=[first, second])
def third(input: DagInput, ctx: Context) -> dict:
    return {"sum": ctx.task_output(first)["value"] + ctx.task_output(second)["value"]}


# --- retries --------------------------------------------------------------------------------------
@hatchet.task(name="InteropFlaky", retries=3, backoff_factor=2.0, backoff_max_seconds=1)
def flaky(input: EmptyModel, ctx: Context) -> dict:
    record("flaky", retry_count=ctx.retry_count)
    if ctx.retry_count < 2:
        raise RuntimeError(f"flaky failure on attempt {ctx.retry_count}")
    return {"succeeded_on": ctx.retry_count}


@hatchet.task(name="InteropFatal", retries=3)
def fatal(input: EmptyModel, ctx: Context) -> dict:
    record("fatal", retry_count=ctx.retry_count)
    raise NonRetryableException("fatal: do not retry me")


# --- durable wait: event OR sleep -----------------------------------------------------------------
class WaitInput(BaseModel):
    scope: str
    timeout_s: int


@hatchet.durable_task(name="InteropDurableWait", execution_timeout=timedelta(seconds=90))
async def durable_wait(input: WaitInput, ctx: DurableContext) -> dict:
    since = datetime.now(timezone.utc)
    record("durable", phase="waiting", scope=input.scope)
    started = time.time()
    result = await ctx.aio_wait_for(
        "message-or-timeout",
        or_(
            SleepCondition(timedelta(seconds=input.timeout_s)),
            UserEventCondition(
                event_key="interop:message", scope=input.scope, consider_events_since=since
            ),
        ),
    )
    fired = list(result.get("CREATE", {}).keys())
    record("durable", phase="done", scope=input.scope, fired=fired, waited=time.time() - started)
    return {"fired": fired, "data": result}


# --- event-triggered workflow ----------------------------------------------------------------------
@hatchet.task(name="InteropOnEvent", on_events=["interop:order"])
def on_event(input: EmptyModel, ctx: Context) -> dict:
    record("on_event", payload=input.model_dump(), metadata=ctx.additional_metadata)
    return {"seen": True}


# --- concurrency: GROUP_ROUND_ROBIN with max_runs=1 per key --------------------------------------
class GroupInput(BaseModel):
    group: str
    index: int


@hatchet.task(
    name="InteropGrouped",
    input_validator=GroupInput,
    concurrency=ConcurrencyExpression(
        expression="input.group", max_runs=1, limit_strategy=ConcurrencyLimitStrategy.GROUP_ROUND_ROBIN
    ),
)
async def grouped(input: GroupInput, ctx: Context) -> dict:
    start = time.time()
    await asyncio.sleep(1.0)
    record("grouped", group=input.group, index=input.index, start=start, end=time.time())
    return {"group": input.group, "index": input.index}


# --- a slow task (worker killed mid-task) ----------------------------------------------------------
@hatchet.task(name="InteropSlow", execution_timeout=timedelta(seconds=60))
async def slow(input: EmptyModel, ctx: Context) -> dict:
    record("slow", phase="started")
    await asyncio.sleep(3)
    record("slow", phase="finished")
    return {"worker": WORKER_NAME}


# --- a task that waits to be cancelled ------------------------------------------------------------
@hatchet.task(name="InteropCancellable", execution_timeout=timedelta(seconds=60))
async def cancellable(input: EmptyModel, ctx: Context) -> dict:
    record("cancellable", phase="started")
    try:
        for _ in range(600):
            if ctx.is_cancelled:
                record("cancellable", phase="cancelled", via="flag")
                return {"cancelled": True}
            await asyncio.sleep(0.05)
    except asyncio.CancelledError:
        record("cancellable", phase="cancelled", via="CancelledError")
        raise
    record("cancellable", phase="finished")
    return {"cancelled": False}


# --- DAG conditions: wait_for (event OR sleep), skip_if on a parent output, on-failure ------------
class GateInput(BaseModel):
    fail: bool = False


gated = hatchet.workflow(name="InteropGated", input_validator=GateInput)


@gated.task()
def opener(input: GateInput, ctx: Context) -> dict:
    return {"skip_me": True}


@gated.task(
    parents=[opener],
    wait_for=[
        or_(
            SleepCondition(timedelta(seconds=30)),
            UserEventCondition(event_key="interop:go", expression="input.ok == true"),
        )
    ],
)
def waiter(input: GateInput, ctx: Context) -> dict:
    record("gated", task="waiter", triggers=ctx.trigger_data)
    if input.fail:
        raise RuntimeError("waiter failed on purpose")
    return {"triggers": list(ctx.trigger_data.keys())}


@gated.task(parents=[opener], skip_if=[ParentCondition(parent=opener, expression="output.skip_me == true")])
def skipped(input: GateInput, ctx: Context) -> dict:
    record("gated", task="skipped")
    return {"ran": True}


@gated.on_failure_task()
def on_failure(input: GateInput, ctx: Context) -> dict:
    record("gated", task="on_failure", errors=ctx.task_run_errors)
    return {"handled": True}


# --- streaming chunks to a subscriber ------------------------------------------------------------
@hatchet.task(name="InteropStreamer")
async def streamer(input: EmptyModel, ctx: Context) -> dict:
    # Stream events are fan-out only: give the client time to subscribe first.
    await asyncio.sleep(1.5)
    for i in range(3):
        await ctx.aio_put_stream(f"chunk-{i}")
    return {"done": True}


# --- a no-op task for the throughput benchmark -----------------------------------------------------
@hatchet.task(name="BenchNoop")
async def bench_noop(input: EmptyModel, ctx: Context) -> dict:
    return {}


# --- trigger deduplication by an idempotency key ----------------------------------------------------
class OrderInput(BaseModel):
    order_id: str


@hatchet.task(
    name="InteropIdempotent",
    input_validator=OrderInput,
    idempotency=TTLBasedIdempotencyConfig(key_expression="input.order_id", ttl=timedelta(minutes=10)),
)
def idempotent(input: OrderInput, ctx: Context) -> dict:
    return {"order_id": input.order_id}


WORKFLOWS = {
    "dag": dag,
    "flaky": flaky,
    "fatal": fatal,
    "durable": durable_wait,
    "on_event": on_event,
    "grouped": grouped,
    "slow": slow,
    "cancellable": cancellable,
    "noop": bench_noop,
    "gated": gated,
    "streamer": streamer,
    "idempotent": idempotent,
}
