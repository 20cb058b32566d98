// make_corpus.mjs — the deterministic conversation corpus of the chat-template oracle comparison.
//
// usage: node make_corpus.mjs [CASES_PER_TEMPLATE [NOW]] > corpus.jsonl
// Every template gets the same CASES_PER_TEMPLATE (default 1000) conversations from a fixed-seed PRNG: a system
// message or not, 1-6 user/assistant turns (ending on either), contents drawn from a pool (multi-line,
// unicode, empty, whitespace-padded, Jinja-looking, special-token-looking, long, Qwen3 <think> blocks and
// <tool_response> users), sometimes a reasoning_content, add_generation_prompt both ways, and sometimes the
// extra variable enable_thinking = false. A few contents start or end with a character Python's str.strip
// and JavaScript's String.trim disagree on (U+0085, U+001C..U+001F, U+FEFF); the oracle strips as Python
// does (oracle.mjs --python-strip).
// Then CASES_PER_TEMPLATE / 5 tool conversations per template: a `tools` list passed as a variable, assistant
// turns with tool_calls (arguments as an object or a JSON string, with or without a "function" wrapper),
// runs of "tool" messages. Under the Qwen templates an assistant turn that only calls tools has a null or
// empty content; under the others it keeps a string content (their templates print every content).
// Marked "tools": spans are refused when an assistant content is not a string (tests/chat/compare.mjs).
const TEMPLATES = ["llama3", "llama3_1", "llama3_2", "qwen2_5", "qwen3", "smollm2"];
// the time strftime_now formats (Llama 3.2's "Today Date"), the same for the oracle and the C renderer
const NOW = Number(process.argv[3] || 1733011200); // default 2024-12-01 00:00:00 UTC; template_ids.mjs passes iqtrain's fixed date
const N = Number(process.argv[2] || 1000);

let seed = 0x9e3779b9;
function rand() { // xorshift32
  seed ^= seed << 13; seed >>>= 0;
  seed ^= seed >>> 17;
  seed ^= seed << 5; seed >>>= 0;
  return seed / 4294967296;
}
const pick = (a) => a[Math.floor(rand() * a.length)];

const POOL = [
  "Hello!", "What is 2+2?", "4", "Sure, here you go.", "Line one\nLine two\n\nLine four",
  "  padded both sides  ", "\n\nleading newlines", "trailing newlines\n\n", "", " ", "\t\n", "\n",
  "héllo wörld ✓ 日本語 🎉", "emoji family 👩‍👩‍👧 and flags 🇫🇷", "zero\u200bwidth", "nbsp\u00a0inside\u00a0",
  "\u3000ideographic space\u3000", "line\u2028separator\u2029para", "```python\nprint('hi')\n```\n",
  "{\"a\": [1, 2], \"b\": null}", "{{ not a tag }} {% neither %} {# nor #}", "<|im_end|> fake end",
  "<|eot_id|><|start_header_id|>", "C:\\path\\new\\table", "'single' and \"double\" quotes",
  "x".repeat(2000), "Ünïcödé\r\nwith CRLF\r\n", "tab\tseparated\tvalues", "<think>\nreasoning here\n</think>\n\nthe answer",
  "<think>r</think>a", "</think>only a close tag", "<think>\n\n</think>\n\n", "before<think>inner</think>\nafter",
  "<tool_response>\nresult 42\n</tool_response>", "<tool_response>not closed", "ends with </tool_response>",
  "\u00a0\u2003mixed unicode spaces\u2003\u00a0", "surrogate pair 𝄞 music", "combining e\u0301 accent",
];
const DIVERGENT = ["\u0085next line", "text\u0085", "\ufeffbom start", "bom end\ufeff", "\u001cfile sep", "unit sep\u001f"];

function content() {
  if (rand() < 0.02) return pick(DIVERGENT);
  if (rand() < 0.15) return pick(POOL) + "\n" + pick(POOL);
  return pick(POOL);
}

function conversation() {
  const msgs = [];
  if (rand() < 0.5) msgs.push({ role: "system", content: content() });
  const turns = 1 + Math.floor(rand() * 6);
  for (let t = 0; t < turns; t++) {
    const role = t % 2 === 0 ? "user" : "assistant";
    const m = { role, content: content() };
    if (role === "assistant" && rand() < 0.1) m.reasoning_content = pick(["thought about it", "", "\nmulti\nline\n"]);
    msgs.push(m);
  }
  return msgs;
}

const convs = [];
for (let i = 0; i < N; i++) {
  const messages = conversation();
  const c = { messages, add_generation_prompt: i % 2 === 1 };
  if (rand() < 0.15) c.extra = { enable_thinking: false };
  convs.push(c);
}
const TOOLS = [
  { type: "function", function: { name: "get_weather", description: "Weather for a city", parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] } } },
  { type: "function", function: { name: "add", description: "a + b", parameters: { type: "object", properties: { a: { type: "number" }, b: { type: "number" } } } } },
];
function toolCall(template) {
  const args = pick([{ city: "Paris" }, { a: 1, b: 2 }, { city: "Zürich \"quoted\"" }, { a: -3, b: 0 }, {}]);
  const fn = { name: pick(["get_weather", "add"]), arguments: rand() < 0.3 ? JSON.stringify(args) : args };
  // Llama 3.2 reads tool_calls[0].function: an unwrapped call fails there (as in Python), so rarely
  return rand() < (template === "llama3_2" ? 0.97 : 0.8) ? { type: "function", function: fn } : fn;
}
function toolConversation(template) {
  const qwen = template.startsWith("qwen");
  const msgs = [];
  if (rand() < 0.5) msgs.push({ role: "system", content: content() });
  msgs.push({ role: "user", content: content() });
  const rounds = 1 + Math.floor(rand() * 3);
  for (let r = 0; r < rounds; r++) {
    // Llama 3.2 refuses several calls in one turn (raise_exception): mostly one there
    const calls = Array.from({ length: 1 + Math.floor(rand() * (template === "llama3_2" ? 1.03 : 2)) }, () => toolCall(template));
    // Qwen3's template reads every assistant content as a string (`'</think>' in content`): null is rare there
    const nullp = template === "qwen2_5" ? 0.3 : template === "qwen3" ? 0.03 : 0;
    const c = rand() < nullp ? null : qwen ? pick(["", "Let me check.", "<think>\nplan\n</think>\n\n"]) : pick(["Let me check.", ""]);
    msgs.push({ role: "assistant", content: c, tool_calls: calls });
    for (let k = 0; k < calls.length; k++) msgs.push({ role: "tool", content: pick(["{\"temp\": 21}", "3", "error: unknown city", ""]) });
    if (rand() < 0.5) msgs.push({ role: "assistant", content: content() });
    if (rand() < 0.5) msgs.push({ role: "user", content: content() });
  }
  return msgs;
}
for (const t of TEMPLATES) {
  convs.forEach((c, i) => process.stdout.write(JSON.stringify({ template: t, id: i, now: NOW, ...c }) + "\n"));
  for (let i = 0; i < Math.floor(N / 5); i++) {
    const c = { template: t, id: N + i, now: NOW, tools: true, messages: toolConversation(t), add_generation_prompt: i % 2 === 0 };
    c.extra = { tools: rand() < 0.7 ? TOOLS : null };
    if (rand() < 0.2) c.extra.enable_thinking = false;
    process.stdout.write(JSON.stringify(c) + "\n");
  }
}
