"""Registers, with the official Python SDK, what tests/tests/macros_parity_conditions.rs declares with
`#[workflow]` and `#[task]`: a DAG using every kind of condition and every remaining workflow option, and two
standalone tasks. The test compares both PutWorkflow requests captured by the embedded engine.

Python draws or-group ids at random and stamps parent-condition keys with the time, so the Rust test compares
or-groups by structure, and this script passes the parent-condition keys the Rust SDK derives
(`<parent>:<expression>`) explicitly.
"""

from datetime import timedelta

from pydantic import BaseModel

from hatchet_sdk import (
    ConcurrencyExpression,
    ConcurrencyLimitStrategy,
    Context,
    DefaultFilter,
    DesiredWorkerLabel,
    DurableContext,
    Hatchet,
    ParentCondition,
    SleepCondition,
    StatusBasedIdempotencyConfig,
    TTLBasedIdempotencyConfig,
    UserEventCondition,
    or_,
)
from hatchet_sdk.rate_limit import RateLimit


class Order(BaseModel):
    id: int
    total: int


hatchet = Hatchet()

SESSION_KEY = "input.id"

wf = hatchet.workflow(
    name="parity-conditions",
    description="gated orders",
    version="v3",
    input_validator=Order,
    on_events=["order:placed"],
    on_crons=["*/5 * * * *"],
    cron_input={"id": 0, "total": 0},
    concurrency=ConcurrencyExpression(
        expression=SESSION_KEY,
        max_runs=1,
        limit_strategy=ConcurrencyLimitStrategy.GROUP_ROUND_ROBIN,
    ),
    default_filters=[
        DefaultFilter(expression="input.total > 100", scope="vip", payload={"tier": 1}),
        DefaultFilter(expression="true", scope="all"),
    ],
    idempotency=TTLBasedIdempotencyConfig(key_expression="input.id", ttl=timedelta(minutes=10)),
)


@wf.task()
async def check(input: Order, ctx: Context) -> dict:
    return {"total": input.total}


@wf.task(
    parents=[check],
    wait_for=[
        or_(
            SleepCondition(timedelta(seconds=90)),
            UserEventCondition(
                event_key="order:approved",
                expression="input.approved == true",
                scope="tenant-1",
            ),
        ),
        ParentCondition(
            parent=check,
            expression="output.total > 0",
            readable_data_key="check:output.total > 0",
        ),
    ],
    skip_if=[
        ParentCondition(
            parent=check,
            expression="output.total == 0",
            readable_data_key="check:output.total == 0",
        )
    ],
    cancel_if=[UserEventCondition(event_key="order:cancelled", readable_data_key="cancelled")],
    desired_worker_labels=[DesiredWorkerLabel(key="gpu", value="a100", weight=80)],
)
async def charge(input: Order, ctx: Context) -> dict:
    return {"charged": True}


@wf.task(parents=[check], wait_for=[SleepCondition(timedelta(minutes=2))])
async def remind(input: Order, ctx: Context) -> dict:
    return {}


@wf.on_success_task(retries=2, execution_timeout=timedelta(seconds=20))
async def notify(input: Order, ctx: Context) -> dict:
    return {}


@wf.on_failure_task()
async def rollback(input: Order, ctx: Context) -> dict:
    return {}


@hatchet.task(
    name="greet-user",
    input_validator=Order,
    on_events=["user:created"],
    retries=2,
    execution_timeout=timedelta(seconds=15),
    concurrency=ConcurrencyExpression(
        expression="input.id",
        max_runs=3,
        limit_strategy=ConcurrencyLimitStrategy.CANCEL_IN_PROGRESS,
    ),
    rate_limits=[RateLimit(static_key="greetings", units=1)],
    desired_worker_labels=[DesiredWorkerLabel(key="region", value="eu", required=True)],
    default_priority=3,
    idempotency=StatusBasedIdempotencyConfig(key_expression="input.id", fallback_ttl=timedelta(hours=1)),
)
async def greet(input: Order, ctx: Context) -> dict:
    return {"text": "hi"}


@hatchet.durable_task(input_validator=Order)
async def archive_order(input: Order, ctx: DurableContext) -> dict:
    return {}


hatchet._client.admin.put_workflow(wf.to_proto())
hatchet._client.admin.put_workflow(greet.to_proto())
hatchet._client.admin.put_workflow(archive_order.to_proto())
print("registered")
