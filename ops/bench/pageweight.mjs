#!/usr/bin/env node
// usage: node ops/bench/pageweight.mjs [RUNS]
//   The entries list with 50 entries in Debian's Chromium (spec/e2e/support/pageweight.mjs, on
//   H2LUA_BIN or build/h2lua and a private MariaDB): the bytes of a first and a repeat view, and
//   RUNS (default 3) Lighthouse 12.2.3 mobile reports, with their median. Prints the figures
//   against the targets (first view <= 40 KB, repeat <= 6 KB, performance >= 0.99, the other
//   categories 1.0); lighthouse.test.mjs asserts all but performance, which depends on the
//   machine's load. Not a test: exits 0 whatever the figures.
import { measureViews, runLighthouse, startSite } from '../../spec/e2e/support/pageweight.mjs';

const runs = Number(process.argv[2] ?? 3);
const site = await startSite('flaskcrud_bench_pageweight');
try {
  const v = await measureViews(site.url);
  console.log(`browser: first view of / (${v.rows} entries) ${v.first} bytes (target <= 40000): ${v.firstRequests.join(', ')}`);
  console.log(`browser: repeat view ${v.repeat} bytes (target <= 6000): ${v.repeatRequests.join(', ')}`);
  const all = [];
  for (let i = 1; i <= runs; i++) {
    const s = await runLighthouse(site.url);
    all.push(s);
    console.log(`lighthouse run ${i}: performance ${s.performance}, accessibility ${s.accessibility}, `
      + `best-practices ${s['best-practices']}, seo ${s.seo}, total byte weight ${s.bytes}`
      + `${s.failed.length ? `; below 1: ${s.failed.join(', ')}` : ''}`);
  }
  const median = (k) => {
    const xs = all.map((s) => s[k]).sort((a, b) => a - b);
    return xs.length % 2 ? xs[(xs.length - 1) / 2] : (xs[xs.length / 2 - 1] + xs[xs.length / 2]) / 2;
  };
  console.log(`lighthouse (mobile, median of ${runs}): performance ${median('performance')} (target >= 0.99), `
    + `accessibility ${median('accessibility')}, best-practices ${median('best-practices')}, seo ${median('seo')} (targets 1.0)`);
} finally {
  await site.stop();
}
