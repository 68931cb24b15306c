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

  it('<%= %> writes every kind of value as the core\'s escape does, <%- %> as tostring does', async () => {
    const res = await h.server.get('/escape-values');
    assert.equal(res.status, 200);
    const expected = ['', 'plain', '&lt;&gt;&amp;&quot;&#39;', 'x&lt;y', '&amp;&amp;&amp;&amp;',
      '&lt;b&gt;&amp;&quot;&#39;', '0', '42', '-7', '1.5', null, null, 'true', 'false', '&lt;obj &amp; &#39;x&#39;&gt;'];
    for (let i = 1; i <= expected.length; i++) {
      const e = byId(res.text, `e${i}`);
      assert.equal(e, byId(res.text, `c${i}`), `value ${i}: <%= %> and escape() agree`);
      assert.equal(byId(res.text, `r${i}`), byId(res.text, `t${i}`), `value ${i}: <%- %> and tostring() agree`);
      if (i === 6) assert.equal(e, 'a&lt;b&gt;&amp;&quot;&#39;'.repeat(2000), 'a long string');
      else if (expected[i - 1] !== null) assert.equal(e, expected[i - 1], `value ${i}`);
    }
    assert.match(byId(res.text, 'e11'), /^(9007199254740992|9\.007199254741e\+15)$/, '2^53');
    assert.match(byId(res.text, 'e12'), /^1e\+300$/, '1e300');
    assert.equal(byId(res.text, 'nil-e'), '[]');
    assert.equal(byId(res.text, 'nil-r'), '[]');
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
