// Throughput of js-tiktoken's "gpt2" encoding, single-threaded: reads FILE as UTF-8
// (one string), encodes it whole, and prints one JSON object
//   {"mb_per_s": ..., "bytes": ..., "tokens": ..., "seconds": ...}
// where seconds is the median over N timed encode calls (after one untimed warm-up),
// bytes is the UTF-8 size of the text and mb_per_s = bytes / 1e6 / seconds.
// A FILE ending in .gz is decompressed first. No special tokens.
//
// Usage: node tests/js/tiktoken_bench.mjs FILE [--repeat N]   (N defaults to 3)
import { readFileSync } from "node:fs";
import { gunzipSync } from "node:zlib";
import { Tiktoken } from "js-tiktoken/lite";
import gpt2 from "js-tiktoken/ranks/gpt2";

const args = process.argv.slice(2);
let file = null, repeat = 3;
for (let i = 0; i < args.length; i++) {
  if (args[i] === "--repeat") repeat = Number.parseInt(args[++i], 10);
  else if (file === null) file = args[i];
  else { console.error("unexpected argument: " + args[i]); process.exit(2); }
}
if (!file || !(repeat >= 1)) {
  console.error("usage: node tiktoken_bench.mjs FILE [--repeat N]");
  process.exit(2);
}

let buf = readFileSync(file);
if (file.endsWith(".gz")) buf = gunzipSync(buf);
const text = buf.toString("utf8");
const bytes = Buffer.byteLength(text, "utf8");
const enc = new Tiktoken(gpt2);

let tokens = enc.encode(text, [], []).length;  // warm-up (untimed)
const times = [];
for (let r = 0; r < repeat; r++) {
  const t0 = process.hrtime.bigint();
  const ids = enc.encode(text, [], []);
  const t1 = process.hrtime.bigint();
  times.push(Number(t1 - t0) / 1e9);
  tokens = ids.length;
}
times.sort((a, b) => a - b);
const mid = times.length >> 1;
const seconds = times.length % 2 ? times[mid] : (times[mid - 1] + times[mid]) / 2;
console.log(JSON.stringify({ mb_per_s: bytes / 1e6 / seconds, bytes, tokens, seconds }));
