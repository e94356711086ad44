// Workflows served by the TypeScript SDK worker in tests/tests/engine_ts.rs. Tasks append JSON
// lines to `$ACF_TEST_DIR/<name>.jsonl` so the Rust test can check what ran, when and how often.
import { appendFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { ConcurrencyLimitStrategy, HatchetClient, NonRetryableError } from '@hatchet-dev/typescript-sdk/v1/index.js';

export const hatchet = HatchetClient.init();

const dir = process.env.ACF_TEST_DIR;

export function record(name, value) {
  appendFileSync(join(dir, `${name}.jsonl`), `${JSON.stringify({ ...value, at: Date.now() })}\n`);
}

const sleep = (ms, signal) =>
  new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(timer);
      reject(new Error('aborted'));
    });
  });

/**
 * A task body that holds its concurrency slot until the client released the scenario (after all of
 * its triggers were acknowledged, so queueing never depends on how fast triggers arrive), then for
 * `ms` more, and records the window it ran in.
 */
const windowTask = (name, ms) => async (input, ctx) => {
  while (!existsSync(join(dir, `release-${name}`))) await sleep(20, ctx.abortController.signal);
  const start = Date.now();
  await sleep(ms, ctx.abortController.signal);
  record(name, { ...input, start, end: Date.now(), run: ctx.workflowRunId() });
  return { start };
};

export const simple = hatchet.task({
  name: 'ts-simple',
  fn: async (input) => ({ upper: String(input.msg).toUpperCase() }),
});

// DAG: parent outputs flow to children; `second` fails once and succeeds on its retry.
export const dag = hatchet.workflow({ name: 'ts-dag' });
const first = dag.task({ name: 'first', fn: async (input) => ({ value: input.n + 1 }) });
const second = dag.task({
  name: 'second',
  parents: [first],
  retries: 2,
  fn: async (_input, ctx) => {
    record('ts-dag-second', { retry: ctx.retryCount() });
    if (ctx.retryCount() === 0) throw new Error('first attempt fails');
    const parent = await ctx.parentOutput(first);
    return { value: parent.value * 10, attempt: ctx.retryCount() };
  },
});
dag.task({
  name: 'third',
  parents: [first, second],
  fn: async (_input, ctx) => {
    const a = await ctx.parentOutput(first);
    const b = await ctx.parentOutput(second);
    return { sum: a.value + b.value };
  },
});

export const nonRetryable = hatchet.task({
  name: 'ts-non-retryable',
  retries: 3,
  fn: async (_input, ctx) => {
    record('ts-non-retryable', { retry: ctx.retryCount() });
    throw new NonRetryableError('this error must not be retried');
  },
});

export const onEvent = hatchet.task({
  name: 'ts-on-event',
  onEvents: ['ts:event'],
  fn: async (input, ctx) => {
    record('ts-on-event', { input, run: ctx.workflowRunId() });
    return { seen: input };
  },
});

export const durable = hatchet.durableTask({
  name: 'ts-durable',
  executionTimeout: '1m',
  fn: async (input, ctx) => {
    const before = Date.now();
    await ctx.sleepFor('1s');
    const slept = Date.now() - before;
    record('ts-durable', { phase: 'slept', slept });
    const event = await ctx.waitForEvent('ts:resume', `input.id == '${input.id}'`);
    return { slept_ms: slept, event };
  },
});

export const roundRobin = hatchet.task({
  name: 'ts-round-robin',
  concurrency: { expression: 'input.group', maxRuns: 1, limitStrategy: ConcurrencyLimitStrategy.GROUP_ROUND_ROBIN },
  fn: windowTask('ts-round-robin', 200),
});

export const dynamic = hatchet.task({
  name: 'ts-dynamic',
  concurrency: [
    {
      expression: 'input.account',
      maxRuns: "input.tier == 'premium' ? 2 : 1",
      limitStrategy: ConcurrencyLimitStrategy.GROUP_ROUND_ROBIN,
    },
  ],
  fn: windowTask('ts-dynamic', 300),
});

const sharedLimit = {
  name: 'ts-shared-limit',
  isTenantScoped: true,
  expression: "'all'",
  maxRuns: 1,
  limitStrategy: ConcurrencyLimitStrategy.GROUP_ROUND_ROBIN,
};
export const sharedA = hatchet.task({ name: 'ts-shared-a', concurrency: [sharedLimit], fn: windowTask('ts-shared', 200) });
export const sharedB = hatchet.task({ name: 'ts-shared-b', concurrency: [sharedLimit], fn: windowTask('ts-shared', 200) });

export const exceptNewest = hatchet.task({
  name: 'ts-except-newest',
  concurrency: { expression: 'input.group', maxRuns: 1, limitStrategy: ConcurrencyLimitStrategy.CANCEL_QUEUED_EXCEPT_NEWEST },
  fn: windowTask('ts-except-newest', 100),
});
export const exceptOldest = hatchet.task({
  name: 'ts-except-oldest',
  concurrency: { expression: 'input.group', maxRuns: 1, limitStrategy: ConcurrencyLimitStrategy.CANCEL_QUEUED_EXCEPT_OLDEST },
  fn: windowTask('ts-except-oldest', 100),
});

// Cancelled from Rust (the TS SDK cancels over REST); records that the abort signal fired.
export const cancellable = hatchet.task({
  name: 'ts-cancellable',
  executionTimeout: '1m',
  fn: async (_input, ctx) => {
    record('ts-cancellable', { phase: 'started', run: ctx.workflowRunId() });
    try {
      await sleep(30_000, ctx.abortController.signal);
    } catch {
      record('ts-cancellable', { phase: 'aborted', run: ctx.workflowRunId() });
      throw new Error('cancelled');
    }
    return { finished: true };
  },
});

export const executionTimeout = hatchet.task({
  name: 'ts-execution-timeout',
  executionTimeout: '1s',
  fn: async (_input, ctx) => {
    try {
      await sleep(10_000, ctx.abortController.signal);
    } catch {
      record('ts-execution-timeout', { phase: 'aborted' });
      throw new Error('aborted by timeout');
    }
    return { finished: true };
  },
});

// No worker has the required label, so the task stays queued until its schedule timeout.
export const scheduleTimeout = hatchet.task({
  name: 'ts-schedule-timeout',
  scheduleTimeout: '1s',
  desiredWorkerLabels: { pool: { value: 'nowhere', required: true } },
  fn: async () => ({ ran: true }),
});

export const all = [
  simple, dag, nonRetryable, onEvent, durable, roundRobin, dynamic, sharedA, sharedB,
  exceptNewest, exceptOldest, cancellable, executionTimeout, scheduleTimeout,
];
