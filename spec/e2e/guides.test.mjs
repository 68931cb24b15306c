// The guides in docs/ that build something, followed to the letter: docs/guide-resource.md and
// docs/testing.md. For each, a copy of the app (scripts, views, db, testing, spec/support) gets
// the guide's blocks in order — ```LANG file=PATH``` written to PATH, ```LANG insert=scripts/app.lua```
// put above its `return web.new {`, ```sh run``` run with bash in the copy's root (H2LUA_BIN is this
// test's server; it must exit 0, and each `# output: TEXT` line of the block must be in its output).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { BIN, ROOT } from './support/server.mjs';
import { fencedBlocks } from './support/fences.mjs';

const run = promisify(execFile);

/** The steps of a guide: { kind: 'file' | 'insert' | 'run', file, code, line }. */
export function steps(doc) {
  return fencedBlocks(fs.readFileSync(path.join(ROOT, doc), 'utf8')).flatMap((b) => {
    const m = /^\w+ (file|insert)=(\S+)$/.exec(b.info);
    if (m) return [{ kind: m[1], file: m[2], code: b.code, line: b.line }];
    if (b.info === 'sh run guide') return [{ kind: 'run', code: b.code, line: b.line }];
    return [];
  });
}

async function follow(doc, expected) {
  const all = steps(doc);
  assert.deepEqual(all.map((s) => s.file ?? 'run'), expected, `the steps of ${doc}`);
  const app = fs.mkdtempSync(path.join(os.tmpdir(), 'h2lua-guide-'));
  try {
    for (const d of ['scripts', 'views', 'db', 'testing', 'spec/support']) {
      fs.cpSync(path.join(ROOT, d), path.join(app, d), { recursive: true, dereference: true });
    }
    const env = { ...process.env, H2LUA_BIN: BIN };
    for (const s of all) {
      if (s.kind === 'file') {
        fs.mkdirSync(path.dirname(path.join(app, s.file)), { recursive: true });
        fs.writeFileSync(path.join(app, s.file), s.code);
      } else if (s.kind === 'insert') {
        const target = path.join(app, s.file);
        const text = fs.readFileSync(target, 'utf8');
        const at = text.indexOf('return web.new {');
        assert.ok(at >= 0, `${s.file} has "return web.new {"`);
        fs.writeFileSync(target, text.slice(0, at) + s.code + '\n' + text.slice(at));
      } else {
        const r = await run('bash', ['-euo', 'pipefail', '-c', s.code], { cwd: app, env, timeout: 300000 })
          .catch((err) => err);
        const out = `${r.stdout ?? ''}${r.stderr ?? ''}`;
        assert.equal(r.code ?? 0, 0, `${doc}:${s.line}: exit ${r.code}\n${out}`);
        for (const [, want] of s.code.matchAll(/^# output: (.*)$/gm)) {
          assert.ok(out.includes(want), `${doc}:${s.line}: the output holds ${JSON.stringify(want)}:\n${out}`);
        }
      }
    }
  } finally {
    fs.rmSync(app, { recursive: true, force: true });
  }
}

describe('the guides, followed', () => {
  it('docs/guide-resource.md: a second resource whose spec passes', async () => {
    await follow('docs/guide-resource.md', [
      'db/migrations/0004_contact.sql', 'scripts/models/contact.lua', 'scripts/handlers/contacts.lua',
      'views/partials/contact_fields.etlua', 'views/contacts.etlua', 'views/contact_edit.etlua', 'scripts/app.lua',
      'spec/app/contacts_spec.lua', 'run',
    ]);
  });

  it('docs/testing.md: every spec it writes passes, every command it shows runs', async () => {
    await follow('docs/testing.md', [
      'run', 'spec/app/hello_spec.lua', 'run', 'spec/app/forms_spec.lua', 'run', 'spec/app/api_example_spec.lua', 'run',
    ]);
  });
});
