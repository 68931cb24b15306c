// The entries list as a browser gets it, with 50 entries (support/pageweight.mjs): a first view
// of at most 40 KB over the wire, a repeat view of at most 6 KB (Bootstrap and the app's files come
// from the cache: fingerprinted, immutable), and Lighthouse (12.2.3, mobile, Debian's Chromium)
// scoring accessibility, best practices and SEO 1.0. Performance depends on the machine's load:
// it is printed here and by ops/bench/run, never asserted.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { CHROMIUM, ENTRIES, measureViews, runLighthouse, startSite } from './support/pageweight.mjs';

const haveChromium = fs.existsSync(CHROMIUM);

if (!haveChromium && process.env.CI === 'true') {
  it('Chromium is installed for the Lighthouse test', () => {
    assert.fail(`${CHROMIUM} is not installed (ops/test installs it: apt-get install chromium)`);
  });
}

describe(`the list page with ${ENTRIES} entries in Chromium and Lighthouse`, {
  skip: haveChromium ? false : `${CHROMIUM} is not installed (apt-get install chromium)`,
}, () => {
  let site;

  before(async () => {
    site = await startSite('flaskcrud_lighthouse');
  });

  after(async () => {
    if (site) await site.stop();
  });

  it('first view at most 40 KB, repeat view at most 6 KB', { timeout: 240000 }, async (t) => {
    const v = await measureViews(site.url);
    t.diagnostic(`first view ${v.first} bytes: ${v.firstRequests.join(', ')}`);
    t.diagnostic(`repeat view ${v.repeat} bytes: ${v.repeatRequests.join(', ')}`);
    assert.equal(v.rows, ENTRIES, 'the page lists every entry');
    assert.ok(v.first <= 40000, `first view ${v.first} bytes: ${v.firstRequests.join(', ')}`);
    assert.ok(v.repeat <= 6000, `repeat view ${v.repeat} bytes: ${v.repeatRequests.join(', ')}`);
    assert.equal(v.repeatRequests.length, 1, `only the page is downloaded again: ${v.repeatRequests.join(', ')}`);
  });

  it('Lighthouse (mobile): accessibility, best practices and SEO 1.0', { timeout: 240000 }, async (t) => {
    const s = await runLighthouse(site.url);
    t.diagnostic(`lighthouse: performance ${s.performance}, accessibility ${s.accessibility}, `
      + `best-practices ${s['best-practices']}, seo ${s.seo}, total byte weight ${s.bytes}`);
    assert.deepEqual(s.failed, [], 'no failing audit in the asserted categories');
    assert.equal(s.accessibility, 1);
    assert.equal(s['best-practices'], 1);
    assert.equal(s.seo, 1);
  });
});
