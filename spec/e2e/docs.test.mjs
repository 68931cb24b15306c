// docs/lua-api.md, run: every `lua example` block as a handler of a real h2lua on a real MariaDB
// (its asserts must hold, its response must have the status and text it says), and the
// walk-through's files written into a copy of the app whose own e2e test is then run.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { startMariaDB } from './support/mariadb.mjs';
import { APP_DIRS, waitReady } from './support/client.mjs';
import { BIN, ROOT, startServer } from './support/server.mjs';
import { fencedBlocks } from './support/fences.mjs';

const run = promisify(execFile);
const DOC = path.join(ROOT, 'docs/lua-api.md');

const DOC_BLOCKS = fencedBlocks(fs.readFileSync(DOC, 'utf8'));
const EXAMPLES = DOC_BLOCKS.filter((b) => b.info === 'lua example').map((b, i) => {
  const req = /^-- request: (GET|POST) ?(.*)$/m.exec(b.code);
  const expect = /^-- expect: (\d{3}) ?(.*)$/m.exec(b.code);
  return {
    n: i + 1,
    line: b.line,
    code: b.code,
    method: req ? req[1] : 'GET',
    query: req && req[1] === 'GET' ? req[2] : '',
    body: req && req[1] === 'POST' && !req[2].startsWith('multipart ') ? req[2] : undefined,
    // "-- request: POST multipart {JSON}": field -> text, or {filename, type, data} (or a list of
    // them), sent as multipart/form-data by Node's own encoder (FormData)
    multipart: req && req[1] === 'POST' && req[2].startsWith('multipart ') ? JSON.parse(req[2].slice(10)) : undefined,
    status: expect ? Number(expect[1]) : 200,
    text: expect ? expect[2] : 'ok',
  };
});
const WALKTHROUGH = DOC_BLOCKS.filter((b) => /^\w+ (file|insert)=/.test(b.info)).map((b) => {
  const [, kind, file] = /^\w+ (file|insert)=(\S+)$/.exec(b.info);
  return { kind, file, code: b.code };
});

// The examples' app: each example is the body of the handler of /docs/N (Lua long strings keep
// their text as written), on the entries app's libraries and views.
function examplesApp() {
  const defs = EXAMPLES.map((e) => {
    const level = '='.repeat(8);
    return `{ method = "${e.method}", line = ${e.line}, src = [${level}[${e.code}]${level}] },`;
  });
  return `local h2lua = require "h2lua"
local http = require "lib.http"
local router = require "lib.router"
local view = require "lib.view"
local web = require "lib.web"
local EXAMPLES = {
${defs.join('\n')}
}
local r = router.new()
for i, e in ipairs(EXAMPLES) do
    local chunk = assert(load("local req = ...\\n" .. e.src, "=docs/lua-api.md:" .. e.line, "t", _ENV))
    r:route(e.method, "/docs/" .. i, function(req)
        local res = chunk(req)
        if res == nil then return http.text("ok") end
        return res
    end)
end
return web.new { router = r, view = view.load(h2lua.config.views_dir), env = h2lua.config.app_env }
`;
}

function copyTree(from, to) {
  fs.cpSync(from, to, { recursive: true, dereference: true });
}

describe('docs/lua-api.md', () => {
  let db;
  let tmp;
  let server;

  before(async () => {
    db = await startMariaDB();
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'h2lua-docs-'));
    const scripts = path.join(tmp, 'scripts');
    copyTree(APP_DIRS.SCRIPTS_DIR, scripts);
    fs.writeFileSync(path.join(scripts, 'app.lua'), examplesApp());
    server = await startServer({
      env: {
        ...APP_DIRS,
        SCRIPTS_DIR: scripts,
        MAX_UPLOAD: '20', // the section "File uploads"
        DATABASE_URL: db.url(await db.freshDatabase('flaskcrud_docs')),
        SHARED_STORES: 'cache:1m,counters:64k,limits:1m', // the sections "Shared store" and "Rate limits"
      },
    });
    await waitReady(server);
  });

  after(async () => {
    if (server) await server.stop({ signal: 'SIGKILL' });
    if (db) await db.destroy();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('has examples for every section and a walk-through', () => {
    assert.ok(EXAMPLES.length >= 12, `${EXAMPLES.length} examples`);
    assert.deepEqual(WALKTHROUGH.map((w) => w.file), [
      'db/migrations/0003_note.sql', 'scripts/handlers/notes.lua', 'views/notes.etlua', 'scripts/app.lua',
      'spec/e2e/notes.test.mjs',
    ]);
  });

  for (const e of EXAMPLES) {
    it(`the example at line ${e.line} answers ${e.status}`, async () => {
      const opts = { method: e.method, headers: { 'x-demo': 'docs' } };
      if (e.body !== undefined) {
        opts.headers['content-type'] = 'application/x-www-form-urlencoded';
        opts.body = e.body;
      }
      if (e.multipart !== undefined) {
        const fd = new FormData();
        for (const [name, v] of Object.entries(e.multipart)) {
          for (const f of Array.isArray(v) ? v : [v]) {
            if (typeof f === 'string') fd.append(name, f);
            else fd.append(name, new Blob([f.data], { type: f.type ?? '' }), f.filename);
          }
        }
        const encoded = new Request('http://docs/', { method: 'POST', body: fd });
        opts.headers['content-type'] = encoded.headers.get('content-type');
        opts.body = Buffer.from(await encoded.arrayBuffer());
      }
      const res = await server.request(`/docs/${e.n}${e.query}`, opts);
      assert.equal(res.status, e.status, `${res.text}\n${server.stderr.slice(-2000)}`);
      assert.ok(res.text.includes(e.text), `the body holds ${JSON.stringify(e.text)}: ${res.text}`);
    });
  }

  it("the walk-through's files make a working app whose own test passes", async () => {
    const app = path.join(tmp, 'walkthrough');
    for (const d of ['scripts', 'views', 'db', 'spec/e2e/support', 'spec/support']) copyTree(path.join(ROOT, d), path.join(app, d));
    fs.symlinkSync(path.join(ROOT, 'spec/e2e/node_modules'), path.join(app, 'spec/e2e/node_modules'));
    for (const w of WALKTHROUGH) {
      const target = path.join(app, w.file);
      if (w.kind === 'file') {
        fs.writeFileSync(target, w.code);
      } else {
        const text = fs.readFileSync(target, 'utf8');
        const at = text.indexOf('return web.new {');
        assert.ok(at >= 0, `${w.file} has "return web.new {"`);
        fs.writeFileSync(target, text.slice(0, at) + w.code + '\n' + text.slice(at));
      }
    }
    const test = path.join(app, 'spec/e2e/notes.test.mjs');
    const env = { ...process.env, H2LUA_BIN: BIN };
    delete env.NODE_TEST_CONTEXT; // a test run of its own, not a subtest of this one
    const r = await run(process.execPath, ['--test', test], {
      cwd: path.join(app, 'spec/e2e'),
      env,
      timeout: 240000,
    }).catch((err) => err);
    const out = `${r.stdout ?? ''}${r.stderr ?? ''}`;
    assert.equal(r.code ?? 0, 0, out);
    assert.match(out, /^# pass 2$/m, out);
    assert.match(out, /^# fail 0$/m, out);
  });

  it('exits 0 on SIGTERM without a sanitizer report', async () => {
    await server.stopClean();
  });
});
