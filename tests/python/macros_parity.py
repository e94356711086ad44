"""Registers, with the official Python SDK, the workflow that tests/tests/macros_parity.rs declares with
`#[workflow]`, so the test can compare both PutWorkflow requests captured by the embedded engine.

The connection comes from the environment (the engine's client_env()). Keep every option in step with the
Rust declaration: the test fails on any difference in the registered request.
"""

from datetime import timedelta

from pydantic import BaseModel

from hatchet_sdk import (
    ConcurrencyExpression,
    ConcurrencyLimitStrategy,
    Context,
    DesiredWorkerLabel,
    DurableContext,
    Hatchet,
    StickyStrategy,
    WorkerLabelComparator,
)
from hatchet_sdk.rate_limit import RateLimit, RateLimitDuration


class Order(BaseModel):
    id: int
    qty: int


hatchet = Hatchet()

wf = hatchet.workflow(
    name="order-pipeline",
    description="orders",
    input_validator=Order,
    on_events=["order:created"],
    on_crons=["0 * * * *"],
    sticky=StickyStrategy.SOFT,
    default_priority=2,
    concurrency=ConcurrencyExpression(
        expression="input.id",
        max_runs=2,
        limit_strategy=ConcurrencyLimitStrategy.CANCEL_NEWEST,
    ),
)


@wf.task(
    retries=3,
    backoff_factor=2.0,
    backoff_max_seconds=600,
    execution_timeout=timedelta(seconds=30),
    schedule_timeout=timedelta(hours=1, minutes=30),
)
async def check(input: Order, ctx: Context) -> dict:
    return {"ok": input.qty > 0}


@wf.task(
    parents=[check],
    rate_limits=[RateLimit(static_key="pricing", units=2)],
    desired_worker_labels=[DesiredWorkerLabel(key="region", value="eu", required=True)],
    slot_cost=2,
)
async def price(input: Order, ctx: Context) -> dict:
    return {"cents": input.qty * 5}


@wf.durable_task(
    name="Ship",
    parents=[check, price],
    rate_limits=[
        RateLimit(
            dynamic_key="input.id",
            units="input.qty",
            limit=10,
            duration=RateLimitDuration.HOUR,
        )
    ],
    desired_worker_labels=[
        DesiredWorkerLabel(
            key="gpu",
            value=2,
            weight=50,
            comparator=WorkerLabelComparator.GREATER_THAN,
        )
    ],
)
async def ship(input: Order, ctx: DurableContext) -> dict:
    return {"label": str(input.id)}


@wf.on_failure_task(retries=1)
async def cleanup(input: Order, ctx: Context) -> dict:
    return {}


limits = hatchet.workflow(
    name="parity-limits",
    input_validator=Order,
    concurrency=[
        ConcurrencyExpression(
            expression="input.id",
            max_runs=5,
            limit_strategy=ConcurrencyLimitStrategy.GROUP_ROUND_ROBIN,
        ),
        ConcurrencyExpression(
            expression="'constant'",
            max_runs=100,
            limit_strategy=ConcurrencyLimitStrategy.CANCEL_NEWEST,
        ),
    ],
)


@limits.task(concurrency=3)
async def only(input: Order, ctx: Context) -> dict:
    return {}


hatchet._client.admin.put_workflow(wf.to_proto())
hatchet._client.admin.put_workflow(limits.to_proto())
print("registered")
