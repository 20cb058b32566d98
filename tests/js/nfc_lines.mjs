// NFC of each line of a hex file (one UTF-8 string per line, hex-encoded) with node's
// String.prototype.normalize(form) (ICU; process.versions.unicode): writes the hex of each result.
// Usage: node tests/js/nfc_lines.mjs IN.hex OUT.hex [NFC|NFD]
import { readFileSync, writeFileSync } from "node:fs";

const [inPath, outPath, form = "NFC"] = process.argv.slice(2);
if (!inPath || !outPath) {
  console.error("usage: node nfc_lines.mjs IN.hex OUT.hex");
  process.exit(2);
}
const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
let lines = readFileSync(inPath, "ascii").split("\n");
if (lines.length && lines[lines.length - 1] === "") lines.pop();
const out = lines.map((hex) => Buffer.from(decoder.decode(Buffer.from(hex, "hex")).normalize(form), "utf8").toString("hex"));
writeFileSync(outPath, out.join("\n") + "\n");
console.error(`nfc_lines: ${form} of ${lines.length} strings, node Unicode ${process.versions.unicode}, ICU ${process.versions.icu}`);
