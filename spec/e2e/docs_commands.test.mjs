// The manual's commands, run: every fenced block of README.md, docs/*.md, image/README.md and
// ops/aws/README.md names its language, and every shell block is either run here or says why not
// and what covers it. No block is skipped in silence: a block this file cannot classify fails it.
// (docs.test.mjs runs docs/lua-api.md's Lua.)
//
// The fences:
//   ```sh run            run here, in a directory that mirrors the checkout (every top-level entry
//                        a symlink, build/h2lua the binary under test: H2LUA_BIN), with a clean
//                        environment (PATH, LANG, a temporary HOME and TMPDIR), by
//                        `bash -e -o pipefail`. It must exit 0, and its output (stdout and
//                        stderr) must hold the text after every `# => ` in the block — at least
//                        one. `# => ` is what a reader sees as the output of the command before it.
//   ```sh run server     the same, against the server that `ops/run` would start: the entries app
//                        on a real MariaDB, started by this file with METRICS_TOKEN (which the
//                        block's environment carries too). In the block `localhost:8080` and
//                        `PORT=8080` name that server's port, and `127.0.0.1:3307/flaskcrud`
//                        (ops/run's database: the same user and password as the test MariaDB)
//                        the server's database.
//   ```sh run guide      a step of a guide (docs/testing.md, docs/guide-resource.md): run by
//                        spec/e2e/guides.test.mjs in the copy of the app the guide's files make.
//   ```sh norun: REASON  not run here: REASON says why, and names what covers it — `covered by P`
//                        (P an existing path of the checkout, or `ops/test STAGE`) — or says
//                        `no test:` and why none does.
//   ```LANG ...          any other language (text for output and pictures, lua, sql, ...) is not a
//                        command; such a block whose line reads like a command (ops/..., curl ...,
//                        build/h2lua ...) fails: it must be a ```sh block.
// The links of the same pages are checked too: every relative link leads to a file, and every
// #anchor to a heading of its page; and the code's pointers into docs/ name files that exist.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startMariaDB } from './support/mariadb.mjs';
import { APP_DIRS, waitReady } from './support/client.mjs';
import { BIN, ROOT, sanitizerReport, startServer } from './support/server.mjs';
import { fencedBlocks } from './support/fences.mjs';

const PAGES = [
  'README.md',
  ...fs.readdirSync(path.join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).sort().map((f) => `docs/${f}`),
  'image/README.md', // the manual's pages on the image and AWS live beside their code
  'ops/aws/README.md',
];
const STAGES = /^ALL_STAGES=\(([^)]*)\)$/m.exec(fs.readFileSync(path.join(ROOT, 'ops/test'), 'utf8'))[1].trim().split(/\s+/);
const METRICS_TOKEN = 'docs-metrics-token-0123456789';
const DB_NAME = 'flaskcrud_docs_commands';
const LOOKS_LIKE_A_COMMAND = /^(\$ |sudo |apt-get |ops\/|build(-asan)?\/h2lua\b|h2lua (serve|migrate|healthcheck)\b|curl |node --test|kill -)/;

/** What is wrong with a `norun:` reason, or null. */
function reasonProblem(reason) {
  if (reason.length < 20) return `the reason is too short to say anything: "${reason}"`;
  const covered = [...reason.matchAll(/covered by ([^\s,;()]+)(?: ([\w-]+))?/g)];
  if (covered.length === 0 && !/no test: \S/.test(reason)) return 'the reason names no "covered by PATH|ops/test STAGE" and says no "no test: why"';
  for (const [, what, next] of covered) {
    if (what === 'ops/test') {
      if (!STAGES.includes(next)) return `"covered by ops/test ${next}": no such stage (${STAGES.join(' ')})`;
    } else if (!fs.existsSync(path.join(ROOT, what.replace(/[.:]$/, '')))) {
      return `"covered by ${what}": no such file in the checkout`;
    }
  }
  return null;
}

/** Every block of every page, classified: { page, line, kind: run|server|norun|other, ... , problem }. */
function classify() {
  const all = [];
  for (const page of PAGES) {
    const text = fs.readFileSync(path.join(ROOT, page), 'utf8');
    const fences = text.split('\n').filter((l) => l.startsWith('```')).length;
    if (fences % 2 !== 0) all.push({ page, line: 0, kind: 'bad', problem: `${fences} fence lines: one is not closed` });
    for (const b of fencedBlocks(text)) {
      const at = { page, line: b.line, code: b.code, info: b.info };
      const lang = b.info.split(/\s+/)[0];
      const rest = b.info.slice(lang.length).trim();
      if (lang === '') {
        all.push({ ...at, kind: 'bad', problem: 'the fence names no language (```text for output and pictures, ```sh for commands)' });
      } else if (['bash', 'shell', 'console', 'zsh', 'shell-session'].includes(lang)) {
        all.push({ ...at, kind: 'bad', problem: `commands go in \`\`\`sh run / \`\`\`sh norun: blocks, not \`\`\`${lang}` });
      } else if (lang === 'sh') {
        if (rest === 'run' || rest === 'run server') {
          const expects = [];
          for (const l of b.code.split('\n')) {
            const m = /(?:^|\s)# => (.*)$/.exec(l);
            if (m) expects.push(m[1].trim());
          }
          const problem = expects.length === 0 ? 'a run block expects nothing (add "# => TEXT" after a command)'
            : expects.includes('') ? 'an empty "# =>"' : null;
          all.push({ ...at, kind: rest === 'run' ? 'run' : 'server', expects, problem });
        } else if (rest === 'run guide') {
          const guided = ['docs/testing.md', 'docs/guide-resource.md'];
          all.push({ ...at, kind: 'norun', problem: guided.includes(page) ? null : `\`\`\`sh run guide outside the guides guides.test.mjs follows (${guided.join(', ')})` });
        } else if (rest.startsWith('norun:')) {
          all.push({ ...at, kind: 'norun', problem: reasonProblem(rest.slice('norun:'.length).trim()) });
        } else {
          all.push({ ...at, kind: 'bad', problem: `\`\`\`${b.info}: a sh block is "sh run", "sh run server", "sh run guide" or "sh norun: REASON"` });
        }
      } else {
        const cmd = b.code.split('\n').find((l) => LOOKS_LIKE_A_COMMAND.test(l.trim()));
        all.push({ ...at, kind: 'other', problem: cmd ? `a \`\`\`${lang} block with a command in it ("${cmd.trim()}"): make it a sh block` : null });
      }
    }
  }
  return all;
}

const ALL = classify();
const RUN = ALL.filter((b) => b.kind === 'run' || b.kind === 'server');

/** GitHub's anchors of a page's headings (outside code blocks). */
function anchors(text) {
  const seen = new Map();
  const out = new Set();
  for (const line of text.replace(/^```[^\n]*\n[\s\S]*?^```$/gm, '').split('\n')) {
    const m = /^#{1,6} (.*)$/.exec(line);
    if (!m) continue;
    const base = m[1].trim().toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, '').replace(/\s/g, '-');
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n === 0 ? base : `${base}-${n}`);
  }
  return out;
}

/** The relative links of a page: { target, anchor, line }. */
function links(text) {
  const out = [];
  const prose = text.replace(/^```[^\n]*\n[\s\S]*?^```$/gm, (m) => m.replace(/[^\n]/g, ''));
  for (const m of prose.matchAll(/\]\(([^)\s]+)\)/g)) {
    const href = m[1];
    if (/^[a-z]+:/.test(href)) continue;
    const [target, anchor] = href.split('#');
    out.push({ target, anchor, line: prose.slice(0, m.index).split('\n').length });
  }
  return out;
}

function runBlock(code, cwd, env) {
  return new Promise((resolve) => {
    const child = spawn('bash', ['-e', '-o', 'pipefail', '-c', code], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { out += d; });
    const timer = setTimeout(() => child.kill('SIGKILL'), 60000);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, out });
    });
  });
}

describe('the commands of the manual', () => {
  let tmp;
  let mirror;
  let db;
  let server;

  before(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'h2lua-docs-commands-'));
    mirror = path.join(tmp, 'checkout');
    fs.mkdirSync(mirror);
    for (const e of fs.readdirSync(ROOT)) {
      if (['.git', '.run', 'build', 'build-asan'].includes(e)) continue;
      fs.symlinkSync(path.join(ROOT, e), path.join(mirror, e));
    }
    fs.mkdirSync(path.join(mirror, 'build'));
    fs.symlinkSync(BIN, path.join(mirror, 'build/h2lua'));
    for (const d of ['home', 'tmp']) fs.mkdirSync(path.join(tmp, d));
    if (RUN.some((b) => b.kind === 'server')) {
      db = await startMariaDB();
      await db.freshDatabase(DB_NAME);
      server = await startServer({ env: { ...APP_DIRS, DATABASE_URL: db.url(DB_NAME), METRICS_TOKEN } });
      await waitReady(server);
    }
  });

  after(async () => {
    if (server) await server.stop({ signal: 'SIGKILL' });
    if (db) await db.destroy();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('every block of every page is run, or says why not and what covers it', () => {
    const problems = ALL.filter((b) => b.problem).map((b) => `${b.page}:${b.line}: ${b.problem}`);
    assert.deepEqual(problems, []);
    // the manual shows commands, and runs most of what it shows
    assert.ok(RUN.length >= 15, `${RUN.length} blocks run`);
    assert.ok(RUN.some((b) => b.kind === 'server'), 'some blocks run against a server');
    for (const page of PAGES.filter((p) => p !== 'docs/lua-api.md')) {
      assert.ok(ALL.some((b) => b.page === page && b.kind !== 'other'), `${page} shows a command`);
    }
  });

  for (const b of RUN) {
    it(`${b.page}:${b.line} (sh ${b.kind === 'server' ? 'run server' : 'run'}) exits 0 and prints what it says`, async () => {
      let code = b.code;
      const env = {
        PATH: process.env.PATH || '/usr/bin:/bin',
        LANG: 'C.UTF-8',
        HOME: path.join(tmp, 'home'),
        TMPDIR: path.join(tmp, 'tmp'),
      };
      for (const k of ['ASAN_OPTIONS', 'UBSAN_OPTIONS', 'LSAN_OPTIONS']) {
        if (process.env[k] !== undefined) env[k] = process.env[k];
      }
      if (b.kind === 'server') {
        code = code.replaceAll('localhost:8080', `127.0.0.1:${server.port}`)
          .replaceAll('PORT=8080', `PORT=${server.port}`)
          .replaceAll('127.0.0.1:3307/flaskcrud', `127.0.0.1:${db.port}/${DB_NAME}`);
        env.METRICS_TOKEN = METRICS_TOKEN;
      }
      const r = await runBlock(code, mirror, env);
      assert.equal(r.signal, null, `killed by ${r.signal} (60 s):\n${r.out}`);
      assert.equal(r.code, 0, `exit code ${r.code}:\n${r.out}`);
      for (const e of b.expects) assert.ok(r.out.includes(e), `the output holds ${JSON.stringify(e)}:\n${r.out}`);
      const report = sanitizerReport(r.out);
      assert.equal(report, null, report ?? '');
    });
  }

  it('every relative link leads to a file, and every #anchor to a heading of it', () => {
    const problems = [];
    for (const page of PAGES) {
      const text = fs.readFileSync(path.join(ROOT, page), 'utf8');
      for (const l of links(text)) {
        const file = l.target === '' ? path.join(ROOT, page) : path.resolve(path.dirname(path.join(ROOT, page)), l.target);
        if (!fs.existsSync(file)) {
          problems.push(`${page}:${l.line}: ${l.target}: no such file`);
        } else if (l.anchor !== undefined && file.endsWith('.md') && !anchors(fs.readFileSync(file, 'utf8')).has(l.anchor)) {
          problems.push(`${page}:${l.line}: ${l.target}#${l.anchor}: no such heading`);
        }
      }
    }
    assert.deepEqual(problems, []);
  });

  it("the code's pointers into the manual name pages that exist", () => {
    const problems = [];
    const walk = (dir) => {
      for (const e of fs.readdirSync(path.join(ROOT, dir), { withFileTypes: true })) {
        const rel = path.join(dir, e.name);
        if (e.isDirectory()) {
          if (e.name !== 'node_modules') walk(rel);
        } else if (e.isFile() && fs.statSync(path.join(ROOT, rel)).size < 1000000) {
          const text = fs.readFileSync(path.join(ROOT, rel), 'utf8');
          for (const m of text.matchAll(/\bdocs\/([\w-]+\.md)(?:#([\w-]+))?/g)) {
            const target = path.join(ROOT, 'docs', m[1]);
            if (!fs.existsSync(target)) problems.push(`${rel}: docs/${m[1]}: no such page`);
            else if (m[2] && !anchors(fs.readFileSync(target, 'utf8')).has(m[2])) problems.push(`${rel}: docs/${m[1]}#${m[2]}: no such heading`);
          }
          for (const m of text.matchAll(/README\.md#([\w-]+)/g)) {
            if (!anchors(fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8')).has(m[1])) problems.push(`${rel}: README.md#${m[1]}: no such heading`);
          }
        }
      }
    };
    for (const dir of ['core', 'ops', 'spec', 'scripts', 'image', 'views', 'db']) walk(dir);
    assert.deepEqual(problems, []);
  });

  it('the server the blocks ran against exits 0 on SIGTERM without a sanitizer report', async () => {
    assert.ok(server, 'a server was started');
    await server.stopClean();
  });
});
