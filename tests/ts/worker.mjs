// The TypeScript SDK worker: serves every workflow of workflows.mjs until killed.
import { all, hatchet } from './workflows.mjs';

const worker = await hatchet.worker('ts-interop-worker', { workflows: all, slots: 20, durableSlots: 5 });
await worker.start();
