// Encode every case of a hex corpus (one hex-encoded byte string per line) with
// js-tiktoken's "gpt2" encoding and write one line per case: the ids separated by
// single spaces (empty line for the empty case), or "SKIP" for a case that is not
// valid UTF-8 (js-tiktoken works on JS strings, so it cannot see raw bytes).
// No special tokens: "<|endoftext|>" in the text is encoded as ordinary text.
//
// Usage: node tests/js/tiktoken_ids.mjs CORPUS.hex OUT.ids
import { readFileSync, writeFileSync } from "node:fs";
import { Tiktoken } from "js-tiktoken/lite";
import gpt2 from "js-tiktoken/ranks/gpt2";

const [inPath, outPath] = process.argv.slice(2);
if (!inPath || !outPath) {
  console.error("usage: node tiktoken_ids.mjs CORPUS.hex OUT.ids");
  process.exit(2);
}

const enc = new Tiktoken(gpt2);
// fatal: reject invalid UTF-8; ignoreBOM: keep a leading U+FEFF as text.
const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

let lines = readFileSync(inPath, "ascii").split("\n");
if (lines.length && lines[lines.length - 1] === "") lines.pop();

const out = [];
let skipped = 0, tokens = 0;
for (const hex of lines) {
  const bytes = Buffer.from(hex, "hex");
  if (bytes.length * 2 !== hex.length) throw new Error("bad hex line: " + hex.slice(0, 40));
  let text;
  try {
    text = decoder.decode(bytes);
  } catch {
    out.push("SKIP");
    skipped++;
    continue;
  }
  // allowedSpecial = [] and disallowedSpecial = []: special-token text is plain text.
  const ids = enc.encode(text, [], []);
  tokens += ids.length;
  out.push(ids.join(" "));
}
writeFileSync(outPath, out.join("\n") + "\n");
console.error(`tiktoken_ids: ${lines.length} cases, ${skipped} skipped (invalid UTF-8), ${tokens} tokens`);
