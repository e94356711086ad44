// The official TypeScript SDK's REST-backed public API against the embedded engine.
// usage: node rest_api.mjs <python worker name>   (prints `TS OK` when every check passed)
import sdk from '@hatchet-dev/typescript-sdk';
const { HatchetClient } = sdk;
const hatchet = HatchetClient.init();
const ok = (c, what) => { if (!c) throw new Error('FAILED: ' + what); console.log('ok:', what); };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function waitFor(what, f) { for (let i = 0; i < 150; i++) { const v = await f(); if (v) { console.log('ok:', what); return v; } await sleep(200); } throw new Error('timeout ' + what); }

const workers = await waitFor('worker listed', async () => ((await hatchet.workers.list()).rows || []).find((w) => w.name === process.argv[2]));
ok((await hatchet.workers.get(workers.metadata.id)).status === 'ACTIVE', 'worker get');
ok((await hatchet.workers.pause(workers.metadata.id)).status === 'PAUSED', 'pause');
ok(await hatchet.workers.isPaused(workers.metadata.id), 'isPaused');
ok((await hatchet.workers.unpause(workers.metadata.id)).status === 'ACTIVE', 'unpause');

// The Python worker registered "RestDag"; the TS SDK lower-cases names it triggers over gRPC, so
// runs are created through the REST trigger here.
const tenant = hatchet.tenantId;
const trigger = async (name, meta) => (await hatchet.api.v1WorkflowRunCreate(tenant, { workflowName: name, input: {}, additionalMetadata: meta || {} })).data.run.metadata.id;
const runId = await trigger('RestDag');
await waitFor('dag completed', async () => (await hatchet.runs.get_status(runId)) === 'COMPLETED');
const details = await hatchet.runs.get(runId);
ok(details.run.status === 'COMPLETED' && details.tasks.length === 2, 'runs.get');
ok((await hatchet.runs.get_status(runId)) === 'COMPLETED', 'runs.get_status');
const list = await hatchet.runs.list({ workflowIds: [details.run.workflowId], statuses: ['COMPLETED'] });
ok(list.rows.some((r) => r.workflowRunExternalId === runId), 'runs.list with filters');

const slowId = await trigger('RestSlow');
await waitFor('slow running', async () => (await hatchet.runs.get_status(slowId)) === 'RUNNING');
await hatchet.runs.cancel({ ids: [slowId] });
await waitFor('runs.cancel by id', async () => (await hatchet.runs.get_status(slowId)) === 'CANCELLED');
const slow2 = await trigger('RestSlow', { tsbatch: 'x1' });
await hatchet.runs.cancel({ filters: { since: new Date(Date.now() - 600000), additionalMetadata: { tsbatch: 'x1' } } });
await waitFor('runs.cancel by filter', async () => (await hatchet.runs.get_status(slow2)) === 'CANCELLED');
await hatchet.runs.replay({ ids: [slowId] });
await waitFor('runs.replay by id', async () => (await hatchet.runs.get_status(slowId)) !== 'CANCELLED');
await hatchet.runs.cancel({ ids: [slowId] });

const cron = await hatchet.crons.create('RestDag', { name: 'ts-cron', expression: '0 * * * *', input: {} });
ok(cron.cron === '0 * * * *', 'crons.create (lower-cased workflow name)');
ok((await hatchet.crons.list({})).rows.some((c) => c.metadata.id === cron.metadata.id), 'crons.list');
ok((await hatchet.crons.get(cron.metadata.id)).name === 'ts-cron', 'crons.get');
await hatchet.crons.delete(cron.metadata.id);
ok(!(await hatchet.crons.list({})).rows.some((c) => c.metadata.id === cron.metadata.id), 'crons.delete');

const sched = await hatchet.schedules.create('RestDag', { triggerAt: new Date(Date.now() + 3600000), input: {} });
ok((await hatchet.schedules.list({})).rows.some((s) => s.metadata.id === sched.metadata.id), 'schedules.create/list');
ok((await hatchet.schedules.get(sched.metadata.id)).workflowName === 'RestDag', 'schedules.get');
await hatchet.schedules.delete(sched.metadata.id);
ok(!(await hatchet.schedules.list({})).rows.some((s) => s.metadata.id === sched.metadata.id), 'schedules.delete');

const f = await hatchet.filters.create({ workflowId: details.run.workflowId, expression: 'input.x == 1', scope: 's', payload: { a: 1 } });
ok((await hatchet.filters.get(f.metadata.id)).scope === 's', 'filters.create/get');
ok((await hatchet.filters.list({ workflowIds: [details.run.workflowId] })).rows.length === 1, 'filters.list');
ok((await hatchet.filters.update(f.metadata.id, { expression: 'input.x == 2' })).expression === 'input.x == 2', 'filters.update');
await hatchet.filters.delete(f.metadata.id);
await hatchet.events.push('ts:event', { x: 1 });
ok(((await hatchet.events.list({})).rows || []).some((e) => e.key === 'ts:event'), 'events.list');
console.log('TS OK');
process.exit(0);
