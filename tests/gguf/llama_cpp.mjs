// llama_cpp.mjs — runs GGUF files in llama.cpp through node-llama-cpp's prebuilt binary (CPU only, nothing
// downloaded or built at run time) for tests/gguf/test_gguf.sh.
//
//   node llama_cpp.mjs info                      prints {"buildType", "release", "gpu"} of the binding
//   node llama_cpp.mjs JOBS.json                 runs the jobs, each writing JSON lines to its "out":
//     {"kind": "gen", "gguf": F, "prompts": F.jsonl, "max_new": N, "out": F}
//         per prompt row (its "prompt" string): {"row", "prompt_ids", "ids", "eos"}: the prompt tokenized
//         without special tokens, then greedy (temperature 0) continuation from those ids alone (no BOS added),
//         stopping after max_new tokens or at an end-of-generation token (not included; eos = true)
//     {"kind": "tok", "gguf": F, "docs": F.jsonl, "out": F}
//         per document (its "text" string): {"row", "ids"}, tokenized without special tokens, vocabulary only
import fs from "node:fs";
import {getLlama, LlamaLogLevel} from "node-llama-cpp";

const llama = await getLlama({
    gpu: false, build: "never", usePrebuiltBinaries: true, skipDownload: true, progressLogs: false,
    logLevel: LlamaLogLevel.error, maxThreads: 1,
});
if (llama.buildType !== "prebuilt") throw new Error(`expected node-llama-cpp's prebuilt binary, got ${llama.buildType}`);

if (process.argv[2] === "info") {
    console.log(JSON.stringify({buildType: llama.buildType, release: llama.llamaCppRelease.release, gpu: llama.gpu}));
    process.exit(0);
}

const readRows = (path) => fs.readFileSync(path, "utf8").split("\n").filter((l) => l.length > 0).map((l) => JSON.parse(l));

async function generate(job) {
    const model = await llama.loadModel({modelPath: job.gguf, gpuLayers: 0});
    const context = await model.createContext({contextSize: 256, threads: 1, batchSize: 256, sequences: 1});
    const seq = context.getSequence();
    const lines = [];
    for (const [row, r] of readRows(job.prompts).entries()) {
        await seq.clearHistory();
        const promptIds = model.tokenize(r.prompt, false);
        const ids = [];
        let eos = false;
        for await (const t of seq.evaluate(promptIds, {temperature: 0})) {
            if (model.isEogToken(t)) {
                eos = true;
                break;
            }
            ids.push(t);
            if (ids.length >= job.max_new) break;
        }
        if (ids.length < job.max_new) eos = true; // the generator ends at an end-of-generation token
        lines.push(JSON.stringify({row, prompt_ids: promptIds, ids, eos}));
    }
    fs.writeFileSync(job.out, lines.join("\n") + "\n");
    await context.dispose();
    await model.dispose();
}

async function tokenize(job) {
    const model = await llama.loadModel({modelPath: job.gguf, vocabOnly: true});
    const lines = readRows(job.docs).map((r, row) => JSON.stringify({row, ids: model.tokenize(r.text, false)}));
    fs.writeFileSync(job.out, lines.join("\n") + "\n");
    await model.dispose();
}

for (const job of JSON.parse(fs.readFileSync(process.argv[2], "utf8"))) {
    if (job.kind === "gen") await generate(job);
    else if (job.kind === "tok") await tokenize(job);
    else throw new Error(`unknown job kind ${job.kind}`);
}
