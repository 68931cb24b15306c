// A node --test reporter for ops/test: one line per test that did not simply pass or fail, which
// node's own summary hides or miscounts.
//
//   node --test --test-reporter=spec --test-reporter-destination=stdout \
//        --test-reporter=./spec/e2e/support/tally.mjs --test-reporter-destination=FILE ...
//
// FILE gets, for each such test (file: test # reason):
//   skip       a skipped test or a skipped describe() (node's "skipped" count leaves out a skipped
//              suite and the tests in it); under ops/test (H2LUA_TEST_STRICT=1) each is a failure
//   todo-pass  a todo test that passed: the known bug it names is fixed, the test must become a
//              real test; a failure
//   todo       a todo test that still fails (a known bug); not a failure
// and a last line `tally: N skip, N todo-pass, N todo`.

import path from 'node:path';

const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../../..');

export default async function* tally(source) {
  const counts = { skip: 0, 'todo-pass': 0, todo: 0 };
  // the file of the it()/describe() call (events of files run at once may interleave, so no suite path)
  const where = (d) => `${d.file ? path.relative(ROOT, d.file) : '?'}: ${d.name}`;
  for await (const ev of source) {
    const d = ev.data;
    if (ev.type !== 'test:pass' && ev.type !== 'test:fail') continue;
    let kind = null;
    let reason = null;
    if (d.skip !== undefined && d.skip !== false) {
      kind = 'skip';
      reason = d.skip;
    } else if (d.todo !== undefined && d.todo !== false) {
      kind = ev.type === 'test:pass' ? 'todo-pass' : 'todo';
      reason = d.todo;
    }
    if (kind === null) continue;
    counts[kind]++;
    yield `${kind} ${where(d)}${typeof reason === 'string' ? ` # ${reason}` : ''}\n`;
  }
  yield `tally: ${counts.skip} skip, ${counts['todo-pass']} todo-pass, ${counts.todo} todo\n`;
}
