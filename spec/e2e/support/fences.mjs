// The fenced code blocks of a Markdown page, read one way for every test that runs the manual:
// docs.test.mjs (docs/lua-api.md's examples), docs_commands.test.mjs (every page's commands) and
// guides.test.mjs (the guides' steps). What each makes of a block's info string is said there.

/** The fenced blocks of a page's text, in order: { info (trimmed), code, line (of the opening fence) }. */
export function fencedBlocks(text) {
  const out = [];
  const re = /^```([^\n]*)\n([\s\S]*?)^```$/gm;
  for (let m; (m = re.exec(text)) !== null;) {
    out.push({ info: m[1].trim(), code: m[2], line: text.slice(0, m.index).split('\n').length });
  }
  return out;
}
