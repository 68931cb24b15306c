// Templates rendered by the app through the core: escaping, HTML content type, run-time errors.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { describeServer } from './support/server.mjs';

/** The inner text of the element with id `id` in html (ids are unique in the fixture views). */
function byId(html, id) {
  const m = new RegExp(`<(\\w+) id="${id}">([\\s\\S]*?)</\\1>`).exec(html);
  assert.ok(m, `no element #${id} in:\n${html}`);
  return m[2];
}

const NASTY = `<script>alert("x")</script> & 'q'`;

describeServer('templates', {}, (h) => {
  it('<%= %> escapes & < > " \' and <%- %> does not', async () => {
    const res = await h.server.get(`/escape?s=${encodeURIComponent(NASTY)}`);
    assert.equal(res.status, 200);
    assert.equal(res.headers['content-type'], 'text/html; charset=utf-8');
    const escaped = byId(res.text, 'escaped');
    assert.doesNotMatch(escaped, /[<>"']/, 'no raw markup characters in the escaped output');
    assert.match(escaped, /&lt;script&gt;/);
    assert.match(escaped, /&quot;x&quot;/);
    assert.match(escaped, /&amp;/);
    assert.match(escaped, /&#0*39;|&apos;/);
    const decoded = escaped
      .replace(/&lt;/g, '<')
      .replace(/&gt;/g, '>')
      .replace(/&quot;/g, '"')
      .replace(/&#0*39;|&apos;/g, "'")
      .replace(/&amp;/g, '&');
    assert.equal(decoded, NASTY);
    assert.equal(byId(res.text, 'raw'), NASTY);
  });

  it('the layout wraps the view', async () => {
    const res = await h.server.get('/escape?s=x');
    assert.match(res.text, /^<!doctype html>/i);
    assert.match(res.text, /<title>escape<\/title>/);
  });

  it('UTF-8 passes through unchanged', async () => {
    const s = 'héllo ✓ 日本';
    const res = await h.server.get(`/escape?s=${encodeURIComponent(s)}`);
    assert.equal(byId(res.text, 'escaped'), s);
    assert.equal(Number(res.headers['content-length']), Buffer.byteLength(res.text));
  });

  it('a template that fails at run time gives a 500 page without details in production', async () => {
    const res = await h.server.get('/bad-template');
    assert.equal(res.status, 500);
    assert.equal(res.headers['content-type'], 'text/html; charset=utf-8');
    assert.doesNotMatch(res.text, /traceback|\.lua:\d+|\.etlua/);
    const ok = await h.server.get('/escape?s=after');
    assert.equal(ok.status, 200);
  });
});

describeServer('templates in development', { APP_ENV: 'development' }, (h) => {
  it('a template that fails at run time names the template on the 500 page', async () => {
    const res = await h.server.get('/bad-template');
    assert.equal(res.status, 500);
    assert.match(res.text, /bad\.etlua|bad:\d+|"bad"/);
  });
});
