// The TypeScript SDK as a trigger client: runs every scenario at once against the embedded engine
// and prints `RESULT <json>` (one entry per scenario: `{ok: output}` or `{err: message}`), for
// tests/tests/engine_ts.rs to judge. Everything here goes over gRPC; cancel/replay/list are REST
// calls in this SDK and are driven from Rust instead (see the test's docs).
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  dag, durable, dynamic, exceptNewest, exceptOldest, executionTimeout, hatchet, nonRetryable,
  roundRobin, scheduleTimeout, sharedA, sharedB, simple,
} from './workflows.mjs';

const settle = async (promise) => {
  try {
    return { ok: await promise };
  } catch (e) {
    return { err: String(e?.message ?? e) };
  }
};
const pause = (ms) => new Promise((r) => setTimeout(r, ms));
const records = (name) => {
  try {
    return readFileSync(join(process.env.ACF_TEST_DIR, `${name}.jsonl`), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l));
  } catch {
    return [];
  }
};

/** Lets the tasks recording into `name` finish (see `windowTask`). */
const release = (name) => writeFileSync(join(process.env.ACF_TEST_DIR, `release-${name}`), '');

/**
 * Triggers `[workflow, input]` pairs in order (each acknowledged before the next), releases the
 * scenario's tasks, then awaits every output.
 */
const inOrder = async (name, triggers) => {
  const refs = [];
  for (const [workflow, input] of triggers) refs.push(await workflow.runNoWait(input));
  release(name);
  return { all: await Promise.all(refs.map((r) => settle(r.output))) };
};

const scenarios = {
  simple: () => settle(simple.run({ msg: 'hello' })),
  dag: () => settle(dag.run({ n: 4 })),
  non_retryable: () => settle(nonRetryable.run({})),
  event: () => settle(hatchet.events.push('ts:event', { hello: 'world' }).then((e) => ({ event_id: e.eventId }))),
  durable: async () => {
    const ref = await durable.runNoWait({ id: 'd1' });
    let done = false;
    const output = settle(ref.output).finally(() => {
      done = true;
    });
    // The wait is registered some time after the sleep ends; resend until the run finishes.
    while (!done) {
      if (records('ts-durable').length > 0) await hatchet.events.push('ts:resume', { id: 'd1' });
      await pause(200);
    }
    return output;
  },
  round_robin: () =>
    inOrder('ts-round-robin', [
      [roundRobin, { group: 'a' }],
      [roundRobin, { group: 'a' }],
      [roundRobin, { group: 'a' }],
      [roundRobin, { group: 'b' }],
    ]),
  max_runs_expression: () =>
    inOrder('ts-dynamic', [
      [dynamic, { account: 'p', tier: 'premium' }],
      [dynamic, { account: 'p', tier: 'premium' }],
      [dynamic, { account: 'p', tier: 'premium' }],
      [dynamic, { account: 'b', tier: 'basic' }],
      [dynamic, { account: 'b', tier: 'basic' }],
    ]),
  tenant_scoped: () =>
    inOrder('ts-shared', [
      [sharedA, { label: 'a1' }],
      [sharedB, { label: 'b1' }],
      [sharedA, { label: 'a2' }],
      [sharedB, { label: 'b2' }],
    ]),
  except_newest: () =>
    inOrder('ts-except-newest', ['A', 'B', 'C'].map((label) => [exceptNewest, { label, group: 'g' }])),
  except_oldest: () =>
    inOrder('ts-except-oldest', ['A', 'B', 'C'].map((label) => [exceptOldest, { label, group: 'g' }])),
  execution_timeout: () => settle(executionTimeout.run({})),
  schedule_timeout: () => settle(scheduleTimeout.run({})),
  rust_worker: () => settle(hatchet.run('rust-echo', { msg: 'from ts' })),
};

const entries = await Promise.all(
  Object.entries(scenarios).map(async ([name, run]) => {
    const started = Date.now();
    const result = await run();
    return [name, { ...result, ms: Date.now() - started }];
  }),
);
console.log(`RESULT ${JSON.stringify(Object.fromEntries(entries))}`);
process.exit(0);
