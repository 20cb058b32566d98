// oracle.mjs — renders the corpus with @huggingface/jinja (transformers.js's template engine), passing what
// transformers passes: messages, add_generation_prompt, tools = null, documents = null, the template's
// bos_token and eos_token when set, and the case's extra variables. The package's strftime_now reads a clock
// fixed at the case's `now` (UTC), as the C renderer formats iq_chat_vars.now.
//
// usage: node oracle.mjs ROOT CORPUS.jsonl [--python-strip SCRATCH_DIR] > ORACLE.jsonl
//        (one {"text"} or {"error"} per line)
//
// --python-strip: makes the oracle strip as Python does. @huggingface/jinja 0.5.11 ignores the argument of
// str.strip/lstrip/rstrip (its `x.lstrip('\n')` strips all whitespace, Python's only newlines; Qwen3's
// template calls content.lstrip('\n') and reasoning_content.strip('\n')), and its strips and `trim` filter
// use JavaScript's whitespace, which differs from Python's str.isspace on U+001C..U+001F, U+0085 (Python
// strips them) and U+FEFF (JavaScript strips it). With this flag the oracle runs a copy of the package
// (written to SCRATCH_DIR; the package itself is untouched) whose strip, lstrip, rstrip and trim follow
// Python; nothing else changes.
import fs from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";

const [root, corpusPath, flag, scratch] = process.argv.slice(2);
let jinjaPath = path.join(root, "tests/js/node_modules/@huggingface/jinja/dist/index.js");
if (flag === "--python-strip") {
  let src = fs.readFileSync(jinjaPath, "utf8");
  const fix = (name, l, r) => {
    const re = new RegExp(`"${name}",\\s*new FunctionValue\\(\\(\\) => \\{\\s*return new StringValue\\(this\\.value\\.(trim|trimStart|trimEnd)\\(\\)\\);`);
    if (!re.test(src)) throw new Error(`oracle: cannot patch ${name} in ${jinjaPath}`);
    src = src.replace(re, `"${name}", new FunctionValue((args) => { return new StringValue(__pyStrip(this.value, args, ${l}, ${r}));`);
  };
  fix("strip", true, true);
  fix("lstrip", true, false);
  fix("rstrip", false, true);
  const trimRe = /case "trim":\s*return new StringValue\(operand\.value\.trim\(\)\);/;
  if (!trimRe.test(src)) throw new Error(`oracle: cannot patch the trim filter in ${jinjaPath}`);
  src = src.replace(trimRe, 'case "trim": return new StringValue(__pyStrip(operand.value, [], true, true));');
  src = `const __PY_WS = new Set(Array.from("\\t\\n\\v\\f\\r\\x1c\\x1d\\x1e\\x1f \\x85\\xa0\\u1680\\u2000\\u2001\\u2002\\u2003\\u2004\\u2005\\u2006\\u2007\\u2008\\u2009\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000"));
function __pyStrip(s, args, l, r) {
  const chars = args && args.length ? args[0].value : null;
  const set = chars === null || chars === undefined ? __PY_WS : new Set(Array.from(chars));
  const cps = Array.from(s);
  let a = 0, b = cps.length;
  if (l) while (a < b && set.has(cps[a])) a++;
  if (r) while (b > a && set.has(cps[b - 1])) b--;
  return cps.slice(a, b).join("");
}
` + src;
  fs.mkdirSync(scratch, { recursive: true });
  jinjaPath = path.join(scratch, "hf_jinja_python_strip.mjs");
  fs.writeFileSync(jinjaPath, src);
}
const { Template } = await import(pathToFileURL(jinjaPath).href);
const fixtures = path.join(root, "tests/fixtures/chat_templates");
// strftime_now is the package's own, reading a clock fixed at the case's `now`, in UTC
process.env.TZ = "UTC";
let fixedNow = 0;
const RealDate = Date;
globalThis.Date = class extends RealDate {
  constructor(...args) {
    if (args.length === 0) super(fixedNow);
    else super(...args);
  }
  static now() { return fixedNow; }
};
const templates = {};
const out = [];
for (const line of fs.readFileSync(corpusPath, "utf8").split("\n")) {
  if (!line) continue;
  const c = JSON.parse(line);
  if (!templates[c.template]) {
    const cfg = JSON.parse(fs.readFileSync(path.join(fixtures, c.template + ".json"), "utf8"));
    templates[c.template] = { t: new Template(cfg.chat_template), cfg };
  }
  const { t, cfg } = templates[c.template];
  const vars = { messages: c.messages, add_generation_prompt: c.add_generation_prompt, tools: null, documents: null };
  if (cfg.bos_token != null) vars.bos_token = cfg.bos_token;
  if (cfg.eos_token != null) vars.eos_token = cfg.eos_token;
  Object.assign(vars, c.extra || {});
  fixedNow = (c.now || 0) * 1000;
  try {
    out.push(JSON.stringify({ text: t.render(vars) }));
  } catch (e) {
    out.push(JSON.stringify({ error: String(e.message || e) }));
  }
}
process.stdout.write(out.join("\n") + "\n");
