// usage: node ops/bench/shared.mjs [--ops N] [--workers LIST] [--rounds R]
//
// The shared store (h2lua.shared) under contention: every worker runs get, incr or set on ONE key
// of one store in a loop (N operations per request, default 200000) while the others do the same,
// and the figure is operations per second: for the whole process (all operations / wall time of
// the batch) and per worker (that figure divided by the workers that served the batch). A batch is 4 requests per worker sent at once (each on its own
// connection, spread over the workers by SO_REUSEPORT). LIST is the worker counts to compare
// (default "1,<CPUs>"); "lua" is the same loop on a Lua table of the worker's own state (no store,
// no lock): the baseline. Medians of R rounds (default 3). Needs build/h2lua (ops/build); prints
// figures, never fails on speed. Run by ops/bench/run.
import os from 'node:os';
import path from 'node:path';
import { FIXTURES, request, startServer } from '../../spec/e2e/support/server.mjs';

const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : def;
};
const OPS = Number(opt('--ops', '200000'));
const ROUNDS = Number(opt('--rounds', '3'));
const CPUS = os.availableParallelism ? os.availableParallelism() : os.cpus().length;
const WORKER_COUNTS = opt('--workers', CPUS > 1 ? `1,${CPUS}` : '1').split(',').map(Number);
const OPERATIONS = ['get', 'incr', 'set', 'lua'];

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const fmt = (n) => (n >= 1e6 ? `${(n / 1e6).toFixed(2)} M` : `${(n / 1e3).toFixed(0)} k`).padStart(9);

async function batch(server, workers, op) {
  const n = 4 * workers;
  const t0 = process.hrtime.bigint();
  const results = await Promise.all(
    Array.from({ length: n }, async () => {
      const res = await request(server.port, `/bench?store=bench&op=${op}&n=${OPS}&k=hot`, { timeoutMs: 120000 });
      if (res.status !== 200) throw new Error(`/bench ${op}: ${res.status} ${res.text}`);
      return { worker: JSON.parse(res.text).worker };
    }),
  );
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  return { total: (n * OPS) / wall, workers: new Set(results.map((r) => r.worker)).size };
}

console.log(`h2lua.shared: ${OPS} operations per request on one key, 4 requests per worker at once, ` +
  `median of ${ROUNDS} rounds; ${CPUS} CPUs, load average ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
console.log(`${'workers'.padEnd(8)} ${'op'.padEnd(5)} ${'process ops/s'.padStart(14)} ${'per worker ops/s'.padStart(18)}  workers that served`);
for (const workers of WORKER_COUNTS) {
  const server = await startServer({
    env: { SCRIPTS_DIR: path.join(FIXTURES, 'shared'), WORKERS: String(workers), SHARED_STORES: 'cache:1m,bench:16m' },
  });
  try {
    for (const op of OPERATIONS) {
      await batch(server, workers, op); // warm-up: JIT, the key's entry
      const rounds = [];
      for (let r = 0; r < ROUNDS; r++) rounds.push(await batch(server, workers, op));
      const total = median(rounds.map((r) => r.total));
      const seen = Math.min(...rounds.map((r) => r.workers));
      const per = total / seen;
      console.log(`${String(workers).padEnd(8)} ${op.padEnd(5)} ${fmt(total).padStart(14)} ${fmt(per).padStart(18)}  ${seen} of ${workers}`);
    }
  } finally {
    await server.stop();
  }
}
