// compare.mjs — compares the C renderer's output with the oracles', case by case, per template, and checks
// the assistant spans: in bounds, disjoint, and (for the templates that emit contents whole or trimmed)
// exactly the content as the template emits it (Llama 3.x: Python's str.strip of it; Qwen2.5, SmolLM2: the
// content; Qwen3: ends with the answer after any </think>).
//
// usage: node compare.mjs CORPUS.jsonl C.jsonl [--jinja2 PY.jsonl] [--hf HF.jsonl] [--hf-raw HF_RAW.jsonl]
//   --jinja2   Python's Jinja2 in transformers' environment (oracle_jinja2.py): the normative oracle
//   --hf       @huggingface/jinja with Python's strip and trim (oracle.mjs --python-strip)
//   --hf-raw   @huggingface/jinja as published: only counted (its JavaScript strip/trim semantics differ)
// A case matches an oracle when both give the same text, or both fail. Tool conversations ("tools" cases)
// are compared byte for byte like the others; their spans may be refused when an assistant content is not
// a string, or absent from the output when there is a tool-calling turn (Qwen2.5 prints no empty content
// then, Llama 3.2 no content at all), and are checked as above otherwise.
// Exits 1 on any mismatch with --jinja2 or --hf, or any span failure.
import fs from "node:fs";

const read = (p) => fs.readFileSync(p, "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l));
const argv = process.argv.slice(2);
const corpus = read(argv[0]), mine = read(argv[1]);
const oracles = {};
for (let k = 2; k + 1 < argv.length; k += 2) oracles[argv[k].replace(/^--/, "")] = read(argv[k + 1]);
for (const [name, o] of Object.entries({ C: mine, ...oracles }))
  if (o.length !== corpus.length) {
    console.error(`compare: ${name} has ${o.length} lines, the corpus ${corpus.length}`);
    process.exit(1);
  }
const PY_WS = /^[\t-\r\u001c-\u0020\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+|[\t-\r\u001c-\u0020\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+$/g;
const pyStrip = (s) => s.replace(PY_WS, "");
const lstripNl = (s) => s.replace(/^\n+/, "");

function expectedSpan(template, m) {
  if (template.startsWith("llama3")) return pyStrip(m.content);
  if (template === "qwen2_5" || template === "smollm2") return m.content;
  return null;
}

function checkSpans(c, r) {
  const buf = Buffer.from(r.text, "utf8");
  const assist = c.messages.map((m, i) => [m, i]).filter(([m]) => m.role === "assistant");
  if (r.spans.length !== assist.length) return `expected ${assist.length} spans, got ${r.spans.length}`;
  const sorted = [...r.spans].sort((a, b) => a[1] - b[1]);
  for (let k = 0; k < sorted.length; k++) {
    const [, s, e] = sorted[k];
    if (s > e || e > buf.length) return `span [${s}, ${e}) out of bounds`;
    if (k && s < sorted[k - 1][2]) return "spans overlap";
  }
  for (let k = 0; k < assist.length; k++) {
    const [m, i] = assist[k];
    const [mi, s, e] = r.spans[k];
    if (mi !== i) return `span ${k} is for message ${mi}, expected ${i}`;
    const got = buf.subarray(s, e).toString("utf8");
    const want = expectedSpan(c.template, m);
    if (want !== null && got !== want) return `message ${i}: span text ${JSON.stringify(got.slice(0, 80))} != ${JSON.stringify(want.slice(0, 80))}`;
    if (want === null) {
      const answer = m.content.includes("</think>") ? lstripNl(m.content.split("</think>").at(-1)) : null;
      if (answer !== null && !got.endsWith(answer)) return `message ${i}: span does not end with the answer`;
      if (answer === null && got !== m.content && got !== lstripNl(m.content)) return `message ${i}: span text differs from the content`;
    }
  }
  return null;
}

const same = (o, r) => (o.error !== undefined && r.error !== undefined) || (o.error === undefined && r.error === undefined && o.text === r.text);
function describe(o, r) {
  if (o.error !== undefined || r.error !== undefined)
    return `oracle ${o.error !== undefined ? "error: " + o.error : "ok"}, C ${r.error !== undefined ? "error: " + r.error : "ok"}`;
  let k = 0;
  while (k < o.text.length && o.text[k] === r.text[k]) k++;
  return `texts differ at char ${k}: oracle ${JSON.stringify(o.text.slice(k, k + 60))} / C ${JSON.stringify(r.text.slice(k, k + 60))}`;
}

const stats = {};
let bad = 0;
for (let i = 0; i < corpus.length; i++) {
  const c = corpus[i], r = mine[i];
  const st = (stats[c.template] ??= { cases: 0, c_error: 0, span_fail: 0, span_refused: 0, same: {}, diff: {} });
  st.cases++;
  if (r.error !== undefined) st.c_error++;
  for (const [name, o] of Object.entries(oracles)) {
    const ok = same(o[i], r);
    st.same[name] = (st.same[name] || 0) + (ok ? 1 : 0);
    if (ok || name === "hf-raw") continue;
    st.diff[name] = (st.diff[name] || 0) + 1;
    bad++;
    if (st.diff[name] <= 3) console.log(`MISMATCH (${name}) ${c.template} case ${c.id}: ${describe(o[i], r)}`);
  }
  if (r.text !== undefined) {
    const nonString = c.messages.some((m) => m.role === "assistant" && typeof m.content !== "string");
    const toolTurn = c.messages.some((m) => m.role === "assistant" && m.tool_calls);
    let why;
    if (r.span_error !== undefined)
      why = nonString && /content is not a string/.test(r.span_error) ? null
          : toolTurn && /does not appear/.test(r.span_error) ? null : "refused: " + r.span_error;
    else why = nonString ? "spans given for a non-string content" : checkSpans(c, r);
    if (r.span_error !== undefined && !why) st.span_refused++;
    if (why) {
      st.span_fail++;
      bad++;
      if (st.span_fail <= 3) console.log(`SPAN ${c.template} case ${c.id}: ${why}`);
    }
  }
}
const names = Object.keys(oracles);
console.log(["template  ", "cases", "C-errors", ...names.map((n) => `same-as-${n}`), "span-failures", "spans-refused(tool turns)"].join("  "));
for (const [t, s] of Object.entries(stats))
  console.log([t.padEnd(10), String(s.cases).padStart(5), String(s.c_error).padStart(8),
    ...names.map((n) => String(s.same[n] || 0).padStart(`same-as-${n}`.length)),
    String(s.span_fail).padStart(13), String(s.span_refused).padStart(25)].join("  "));
process.exit(bad ? 1 : 0);
