// Time bounds that hold on a loaded machine (2 shared cores) as on a large one: a bound is asserted
// on a percentile of many samples, never on one sample, so one stall of the machine does not fail it.
// Files that assert time bounds start with a line `// timing: ...`; ops/test runs them one at a time
// after the others.
//
//   const ms = await timeSamples(20, () => server.get('/healthz'));
//   assert.ok(percentile(ms, 95) < 100, `/healthz: ${describeMs(ms)}`);

/** Runs fn(i) n times one after the other; resolves the milliseconds each call took. */
export async function timeSamples(n, fn) {
  const out = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await fn(i);
    out.push(performance.now() - t0);
  }
  return out;
}

/** The p-th percentile (0 < p <= 100, nearest rank) of the values; fails on no value. */
export function percentile(values, p) {
  if (values.length === 0) throw new Error('percentile of no sample');
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

/** "p50 1.2, p95 3.4, max 5.6 ms of 20" for an assertion message. */
export function describeMs(values) {
  const f = (v) => v.toFixed(1);
  return `p50 ${f(percentile(values, 50))}, p95 ${f(percentile(values, 95))}, max ${f(Math.max(...values))} ms of ${values.length}`;
}
