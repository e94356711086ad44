"""Client-side actions of the interop tests, through the official SDK.

usage:
  interop_client.py run-dag <n>                 triggers InteropDag twice and awaits both results
  interop_client.py push <key> <json> [scope]   pushes an event
  interop_client.py stream                      triggers InteropStreamer and collects its stream
  interop_client.py idempotent <key>            triggers InteropIdempotent with colliding keys
Prints one line `RESULT <json>` on success.
"""

import asyncio
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from interop_app import DagInput, OrderInput, dag, hatchet, idempotent, streamer  # noqa: E402

from hatchet_sdk import BulkTriggerIdempotencyCollisionError, IdempotencyCollisionError  # noqa: E402

command = sys.argv[1]
if command == "run-dag":
    # Two result paths: `result()` polls GetRunDetails, `aio_result()` listens on
    # SubscribeToWorkflowRuns.
    n = int(sys.argv[2])
    polled = dag.run(DagInput(n=n), wait_for_result=False)
    streamed = dag.run(DagInput(n=n + 1), wait_for_result=False)
    result = polled.result()
    streamed_result = asyncio.run(streamed.aio_result())
    print(
        "RESULT "
        + json.dumps(
            {
                "run_id": polled.workflow_run_id,
                "result": result,
                "streamed_run_id": streamed.workflow_run_id,
                "streamed_result": streamed_result,
            }
        )
    )
elif command == "stream":
    ref = streamer.run(wait_for_result=False)

    async def collect() -> list:
        return [chunk async for chunk in hatchet.runs.subscribe_to_stream(ref.workflow_run_id)]

    chunks = asyncio.run(asyncio.wait_for(collect(), timeout=60))
    print("RESULT " + json.dumps({"run_id": ref.workflow_run_id, "chunks": chunks}))
elif command == "push":
    scope = sys.argv[4] if len(sys.argv) > 4 else None
    event = hatchet.event.push(sys.argv[2], json.loads(sys.argv[3]), scope=scope)
    print("RESULT " + json.dumps({"event_id": event.event_id}))
elif command == "idempotent":
    key = sys.argv[2]
    first = idempotent.run_no_wait(OrderInput(order_id=key))
    try:
        again = {"created": idempotent.run_no_wait(OrderInput(order_id=key)).workflow_run_id}
    except IdempotencyCollisionError as e:
        again = {"existing": e.existing_run_external_id}
    other = idempotent.run_no_wait(OrderInput(order_id=key + "-other"))
    try:
        refs = idempotent.run_many_no_wait(
            [
                idempotent.create_bulk_run_item(input=OrderInput(order_id=key + "-bulk")),
                idempotent.create_bulk_run_item(input=OrderInput(order_id=key)),
            ]
        )
        bulk = {"created_all": [r.workflow_run_id for r in refs]}
    except BulkTriggerIdempotencyCollisionError as e:
        bulk = {
            "created": e.successful_workflow_run_external_ids,
            "existing": [c.existing_run_external_id for c in e.collisions],
        }
    result = {"first": first.workflow_run_id, "again": again, "other": other.workflow_run_id, "bulk": bulk}
    print("RESULT " + json.dumps(result))
else:
    sys.exit(f"unknown command {command}")
