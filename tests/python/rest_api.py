"""Drives the official Python SDK's REST-backed public API against the embedded engine.

usage: rest_api.py worker <name>     runs a worker for the workflows below (until killed)
       rest_api.py client <worker>   exercises runs / schedules / crons / filters / workers /
                                     events and prints `OK` when every check passed
"""

import asyncio
import datetime
import json
import os
import sys
import time
import urllib.error
import urllib.request
import uuid
import warnings

from hatchet_sdk import Context, EmptyModel, Hatchet
from hatchet_sdk.clients.rest.models.v1_task_status import V1TaskStatus
from hatchet_sdk.clients.rest.models.v1_update_filter_request import V1UpdateFilterRequest
from hatchet_sdk.features.runs import BulkCancelReplayOpts, RunFilter

# run_no_wait() is deprecated in 1.43 but still the public call this suite exercises.
warnings.filterwarnings("ignore", category=DeprecationWarning)

hatchet = Hatchet()
STATE_DIR = os.environ["ACF_TEST_DIR"]

dag = hatchet.workflow(name="RestDag", on_crons=["*/5 * * * *"])


@dag.task()
def start(input: EmptyModel, ctx: Context) -> dict:
    return {"n": 1}


@dag.task(parents=[start])
def finish(input: EmptyModel, ctx: Context) -> dict:
    return {"n": ctx.task_output(start)["n"] + 1}


@hatchet.task(name="RestSlow", execution_timeout=datetime.timedelta(seconds=60))
async def slow(input: EmptyModel, ctx: Context) -> dict:
    for _ in range(600):
        if ctx.is_cancelled:
            return {"cancelled": True}
        await asyncio.sleep(0.1)
    return {"slept": True}


@hatchet.task(name="RestFlakyOnce")
def flaky_once(input: EmptyModel, ctx: Context) -> dict:
    # Fails on the first run of each workflow run; a replay then succeeds.
    marker = os.path.join(STATE_DIR, f"flaky-{ctx.workflow_run_id}")
    if not os.path.exists(marker):
        open(marker, "w").close()
        raise RuntimeError("first attempt fails")
    return {"replayed": True}


@hatchet.task(name="RestOnEvent", on_events=["rest:filtered"])
def on_event(input: EmptyModel, ctx: Context) -> dict:
    return {"filter_payload": ctx.filter_payload}


WORKFLOWS = [dag, slow, flaky_once, on_event]


def check(cond: bool, what: str) -> None:
    if not cond:
        raise AssertionError(what)
    print(f"ok: {what}", flush=True)


def wait_for(what: str, probe, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            print(f"ok: {what}", flush=True)
            return last
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


def raw(method: str, path: str, token: str | None) -> tuple[int, dict]:
    url = os.environ["HATCHET_CLIENT_SERVER_URL"] + path
    req = urllib.request.Request(url, method=method)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def client(worker_name: str) -> None:
    tenant = hatchet.tenant_id
    token = os.environ["HATCHET_CLIENT_TOKEN"]
    since = datetime.datetime.now(tz=datetime.timezone.utc) - datetime.timedelta(minutes=5)

    # Workers: listed, fetched, paused and unpaused.
    workers = wait_for(
        "worker listed",
        lambda: [w for w in (hatchet.workers.list().rows or []) if w.name == worker_name],
    )
    worker_id = workers[0].metadata.id
    w = hatchet.workers.get(worker_id)
    check(str(w.status.value) == "ACTIVE", "worker is ACTIVE")
    check("restdag:start" in [a.lower() for a in (w.actions or [])], "worker lists its actions")
    check(w.slot_config is not None and w.slot_config["default"].limit == 10, "worker slots reported")
    check(hatchet.workers.pause(worker_id).status.value == "PAUSED", "pause reports PAUSED")
    paused_ref = dag.run_no_wait()
    time.sleep(1.0)
    check(
        hatchet.runs.get_status(paused_ref.workflow_run_id) == V1TaskStatus.QUEUED,
        "a paused worker gets no work",
    )
    check(hatchet.workers.unpause(worker_id).status.value == "ACTIVE", "unpause reports ACTIVE")
    paused_ref.result()

    # Runs: get / status / task get / list with filters.
    ref = dag.run_no_wait(additional_metadata={"suite": "rest"})
    result = ref.result()
    check(result["finish"]["n"] == 2, "DAG completed")
    details = hatchet.runs.get(ref.workflow_run_id)
    check(details.run.status == V1TaskStatus.COMPLETED, "details status COMPLETED")
    check(len(details.tasks) == 2 and len(details.shape) == 2, "details list both tasks and the shape")
    check(details.run.output["finish"] == {"n": 2}, "run output keyed by task")
    start_shape = [s for s in details.shape if s.task_name == "start"][0]
    finish_task = [t for t in details.tasks if t.display_name == "finish"][0]
    check(start_shape.children_step_ids == [finish_task.step_id], "shape links start -> finish")
    kinds = {e.event_type.value for e in details.task_events}
    check({"QUEUED", "ASSIGNED", "FINISHED"} <= kinds, f"task events recorded ({sorted(kinds)})")
    check(hatchet.runs.get_status(ref.workflow_run_id) == V1TaskStatus.COMPLETED, "status endpoint")
    task = hatchet.runs.get_task_run(finish_task.task_external_id)
    check(task.output == {"n": 2} and task.status == V1TaskStatus.COMPLETED, "task get")
    workflow_id = details.run.workflow_id
    listed = hatchet.runs.list(
        since=since,
        workflow_ids=[workflow_id],
        statuses=[V1TaskStatus.COMPLETED],
        additional_metadata={"suite": "rest"},
    )
    check(
        [r.workflow_run_external_id for r in listed.rows] == [ref.workflow_run_id],
        "list filters by workflow, status and metadata",
    )
    # Two DAG runs so far, or more: under load the SDK may retry a trigger whose answer came late, which Hatchet
    # also turns into a second run. Whatever their number, only_tasks lists each run's two tasks.
    all_runs = hatchet.runs.list(since=since, workflow_ids=[workflow_id])
    only_tasks = hatchet.runs.list(since=since, workflow_ids=[workflow_id], only_tasks=True)
    check(
        len(all_runs.rows) >= 2 and len(only_tasks.rows) == 2 * len(all_runs.rows),
        f"only_tasks lists tasks ({len(only_tasks.rows)} for {len(all_runs.rows)} runs)",
    )
    created = hatchet.runs.create("RestDag", {}, additional_metadata={"via": "rest"})
    check(created.run.additional_metadata == {"via": "rest"}, "runs.create triggers over REST")

    # Cancel by id and by filter.
    slow_ref = slow.run_no_wait()
    wait_for(
        "slow run running",
        lambda: hatchet.runs.get_status(slow_ref.workflow_run_id) == V1TaskStatus.RUNNING,
    )
    hatchet.runs.cancel(slow_ref.workflow_run_id)
    wait_for(
        "cancel by id",
        lambda: hatchet.runs.get_status(slow_ref.workflow_run_id) == V1TaskStatus.CANCELLED,
    )
    batch = uuid.uuid4().hex
    refs = [slow.run_no_wait(additional_metadata={"batch": batch}) for _ in range(2)]
    hatchet.runs.bulk_cancel(
        BulkCancelReplayOpts(filters=RunFilter(since=since, additional_metadata={"batch": batch}))
    )
    wait_for(
        "cancel by filter",
        lambda: all(hatchet.runs.get_status(r.workflow_run_id) == V1TaskStatus.CANCELLED for r in refs),
    )

    # Replay by id and by filter.
    flaky_ref = flaky_once.run_no_wait()
    wait_for("flaky run failed", lambda: hatchet.runs.get_status(flaky_ref.workflow_run_id) == V1TaskStatus.FAILED)
    hatchet.runs.replay(flaky_ref.workflow_run_id)
    wait_for("replay by id", lambda: hatchet.runs.get_status(flaky_ref.workflow_run_id) == V1TaskStatus.COMPLETED)
    flaky2 = flaky_once.run_no_wait()
    wait_for("second flaky run failed", lambda: hatchet.runs.get_status(flaky2.workflow_run_id) == V1TaskStatus.FAILED)
    flaky_wf = hatchet.runs.get(flaky2.workflow_run_id).run.workflow_id
    hatchet.runs.bulk_replay(
        BulkCancelReplayOpts(
            filters=RunFilter(since=since, workflow_ids=[flaky_wf], statuses=[V1TaskStatus.FAILED])
        )
    )
    wait_for("replay by filter", lambda: hatchet.runs.get_status(flaky2.workflow_run_id) == V1TaskStatus.COMPLETED)

    # Scheduled runs: created, listed, fired; another deleted.
    at = datetime.datetime.now(tz=datetime.timezone.utc) + datetime.timedelta(seconds=1)
    sched = hatchet.scheduled.create("RestDag", at, {}, {"kind": "scheduled"})
    check(sched.workflow_name == "RestDag", "scheduled run created")
    check(sched.metadata.id in [s.metadata.id for s in (hatchet.scheduled.list().rows or [])], "scheduled run listed")
    fired = wait_for(
        "scheduled run fired and succeeded",
        lambda: (lambda s: s if s.workflow_run_status and s.workflow_run_status.value == "SUCCEEDED" else None)(
            hatchet.scheduled.get(sched.metadata.id)
        ),
    )
    check(hatchet.runs.get(fired.workflow_run_id).run.additional_metadata == {"kind": "scheduled"}, "scheduled run carries its metadata")
    later = hatchet.scheduled.create("RestDag", at + datetime.timedelta(hours=1), {}, {})
    hatchet.scheduled.delete(later.metadata.id)
    check(later.metadata.id not in [s.metadata.id for s in (hatchet.scheduled.list().rows or [])], "scheduled run deleted")

    # Crons: declared by the workflow and created over REST; listed, fetched, deleted.
    crons = hatchet.cron.list().rows or []
    check(any(c.cron == "*/5 * * * *" and c.method.value == "DEFAULT" for c in crons), "declared cron listed")
    cron = hatchet.cron.create("RestDag", "rest-cron", "0 * * * *", {}, {"k": "v"})
    check(cron.cron == "0 * * * *" and cron.name == "rest-cron", "cron created")
    check(hatchet.cron.get(cron.metadata.id).workflow_name == "RestDag", "cron get")
    try:
        hatchet.cron.create("RestDag", "bad", "* * *", {}, {})
        raise AssertionError("an invalid cron expression was accepted")
    except AssertionError:
        raise
    except Exception as e:  # the SDK validates first; either way it is refused
        check("cron" in str(e).lower() or "expression" in str(e).lower(), f"invalid cron refused ({type(e).__name__})")
    hatchet.cron.delete(cron.metadata.id)
    check(cron.metadata.id not in [c.metadata.id for c in (hatchet.cron.list().rows or [])], "cron deleted")

    # Filters: CRUD, and events gated by them.
    on_event_wf = [w for w in hatchet.workflows.list().rows or [] if w.name == "RestOnEvent"][0].metadata.id
    f = hatchet.filters.create(on_event_wf, "input.ok == true", "scope-a", {"from": "filter"})
    check(hatchet.filters.get(f.metadata.id).expression == "input.ok == true", "filter get")
    check(f.metadata.id in [x.metadata.id for x in hatchet.filters.list(workflow_ids=[on_event_wf]).rows or []], "filter list")
    upd = hatchet.filters.update(f.metadata.id, V1UpdateFilterRequest(payload={"from": "updated"}))
    check(upd.payload == {"from": "updated"}, "filter update")
    hatchet.event.push("rest:filtered", {"ok": False}, scope="scope-a")
    good = hatchet.event.push("rest:filtered", {"ok": True}, scope="scope-a")
    events = wait_for(
        "events listed with their runs",
        lambda: (lambda rows: rows if len(rows) == 2 and any(r.workflow_run_summary.succeeded == 1 for r in rows) else None)(
            hatchet.event.list(keys=["rest:filtered"]).rows or []
        ),
    )
    by_id = {e.metadata.id: e for e in events}
    good_runs = by_id[good.event_id].triggered_runs or []
    check(len(good_runs) == 1, "the matching event triggered one run")
    check(sum(len(e.triggered_runs or []) for e in events) == 1, "the non-matching event triggered none")
    out = hatchet.runs.get(good_runs[0].workflow_run_id).run.output
    check(list(out.values()) == [{"filter_payload": {"from": "updated"}}], f"run got the filter payload ({out})")
    hatchet.filters.delete(f.metadata.id)
    check(f.metadata.id not in [x.metadata.id for x in hatchet.filters.list().rows or []], "filter deleted")

    # Auth and unsupported endpoints.
    status, body = raw("GET", f"/api/v1/tenants/{tenant}/worker", None)
    check(status == 401 and body["errors"][0]["description"], "no token: 401 APIErrors")
    status, body = raw("GET", f"/api/v1/tenants/{tenant}/rate-limits", token)
    check(status == 501 and "rate-limits" in body["errors"][0]["description"], "unsupported endpoint: 501 naming it")
    status, body = raw("GET", f"/api/v1/stable/workflow-runs/{uuid.uuid4()}", token)
    check(status == 404, "unknown run: 404")
    print("OK", flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "worker":
        hatchet.worker(sys.argv[2], slots=10, workflows=WORKFLOWS).start()
    else:
        client(sys.argv[2])
