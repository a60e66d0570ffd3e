/**
 * Tokenization + collation throughput on a real corpus (Tiny Shakespeare), for both tokenizer engines, plus their
 * correctness on Hugging Face's test vectors. `benchTokenize` is called by the main bench runner; this file also runs
 * on its own: node dist/bench/tokenize.js [--quick]
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { AutoTokenizer } from '../lib/tokenizers';
import { DataLoader, LabelMap, readAll, readExamples } from '../lib/data';

const repoRoot = path.resolve(__dirname, '..', '..');
const assets = path.resolve(repoRoot, '..', 'shared', 'assets');

interface TsTokenizer { encode(text: string, o: { add_special_tokens: boolean }): { ids: number[] } }

function loadTsTokenizer(dir: string): TsTokenizer {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { Tokenizer } = require('@huggingface/tokenizers') as { Tokenizer: new (j: object, c: object) => TsTokenizer };
  const read = (f: string): object => (fs.existsSync(path.join(dir, f)) ? JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8')) as object : {});
  return new Tokenizer(read('tokenizer.json'), read('tokenizer_config.json'));
}

function vectors(name: string): Array<{ text: string; ids: string }> {
  const dir = path.join(assets, 'tokenizers/vectors');
  const texts = fs.readFileSync(path.join(dir, `ggml-vocab-${name}.gguf.inp`), 'utf8').split('\n__ggml_vocab_test__\n');
  const outs = fs.readFileSync(path.join(dir, `ggml-vocab-${name}.gguf.out`), 'utf8').split('\n');
  if (outs[outs.length - 1] === '') outs.pop();
  return outs.map((o, i) => ({ text: texts[i] as string, ids: o.trim() }));
}

function chunks(text: string, size: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < text.length; i += size) out.push(text.slice(i, i + size));
  return out;
}

const seconds = (t0: bigint): number => Number(process.hrtime.bigint() - t0) / 1e9;

export async function benchTokenize(opts: { quick: boolean }): Promise<Record<string, unknown>> {
  const corpusFile = path.join(assets, 'datasets/tinyshakespeare/input.txt');
  const gpt2Dir = path.join(assets, 'tokenizers/gpt2');
  const bertDir = path.join(assets, 'tokenizers/bert-base-uncased');
  if (!fs.existsSync(corpusFile) || !fs.existsSync(path.join(gpt2Dir, 'tokenizer.json'))) {
    return { skipped: `needs ${corpusFile} and ${gpt2Dir}/tokenizer.json` };
  }
  const full = fs.readFileSync(corpusFile, 'utf8');
  const text = opts.quick ? full.slice(0, 200_000) : full;
  // Other work on the machine (a C++ build, say) changes these figures a lot: record the load next to them.
  const out: Record<string, unknown> = { corpus: 'tinyshakespeare', chars: text.length, quick: opts.quick, cpus: os.cpus().length, loadAverage1m: os.loadavg()[0] };

  // Correctness on the test vectors, for both engines.
  const rust = await AutoTokenizer.fromPretrained(gpt2Dir);
  const rustBert = await AutoTokenizer.fromPretrained(bertDir);
  const tsGpt2 = loadTsTokenizer(gpt2Dir);
  const tsBert = loadTsTokenizer(bertDir);
  for (const [name, r, t] of [['gpt-2', rust, tsGpt2], ['bert-bge', rustBert, tsBert]] as const) {
    const vs = vectors(name);
    let rustOk = 0;
    let tsOk = 0;
    for (const v of vs) {
      if ((await r.encode(v.text, { addSpecialTokens: false })).ids.join(' ') === v.ids) rustOk++;
      if (t.encode(v.text, { add_special_tokens: false }).ids.join(' ') === v.ids) tsOk++;
    }
    out[`vectors_${name}`] = { total: vs.length, rustBinding: rustOk, typescript: tsOk };
  }

  // Tokens/s, byte-level BPE (GPT-2), the corpus in 4,000-character pieces.
  const pieces = chunks(text, 4000);
  await rust.encodeIds(pieces.slice(0, 64)); // warm the engine's caches and thread pool
  let t0 = process.hrtime.bigint();
  let tokens = 0;
  for (let i = 0; i < pieces.length; i += 64) for (const ids of await rust.encodeIds(pieces.slice(i, i + 64))) tokens += ids.length;
  const rustSec = seconds(t0);
  out.rustBindingTokensPerSec = Math.round(tokens / rustSec);
  out.tokens = tokens;

  // Lines as examples (short inputs: per-example overhead dominates).
  const lines = text.split('\n').filter((l) => l !== '');
  t0 = process.hrtime.bigint();
  let lineTokens = 0;
  for (let i = 0; i < lines.length; i += 1024) for (const ids of await rust.encodeIds(lines.slice(i, i + 1024))) lineTokens += ids.length;
  out.rustBindingLinesTokensPerSec = Math.round(lineTokens / seconds(t0));

  t0 = process.hrtime.bigint();
  let tsTokens = 0;
  const tsPieces = opts.quick ? pieces : pieces.slice(0, Math.ceil(pieces.length / 4));
  for (const p of tsPieces) tsTokens += tsGpt2.encode(p, { add_special_tokens: false }).ids.length;
  out.typescriptTokensPerSec = Math.round(tsTokens / seconds(t0));

  // The whole causal-LM path: stream the file, tokenize, pack into 256-token blocks, collate batches of 8.
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nodetune-bench-'));
  const file = path.join(tmp, 'corpus.txt');
  fs.writeFileSync(file, text);
  const loader = new DataLoader(() => readExamples(file, { format: 'corpus', chunkChars: 4000 }), {
    tokenizer: rust, task: 'causal-lm', batchSize: 8, blockSize: 256, shuffle: false,
  });
  t0 = process.hrtime.bigint();
  let batchTokens = 0;
  let batches = 0;
  for await (const b of loader) { batchTokens += b.inputIds.length; batches++; }
  out.causalLmPipelineTokensPerSec = Math.round(batchTokens / seconds(t0));
  out.causalLmBatches = batches;
  fs.rmSync(tmp, { recursive: true, force: true });

  // Classification: SST-2 with BERT WordPiece, read → format → length-grouped, padded batches of 32.
  const sst = path.join(assets, 'datasets/sst2/stsa.binary.train');
  if (fs.existsSync(sst)) {
    const examples = await readAll(sst, { format: 'label-text' });
    const subset = opts.quick ? examples.slice(0, 1000) : examples;
    t0 = process.hrtime.bigint();
    const cls = new DataLoader(subset, { tokenizer: rustBert, task: 'classification', batchSize: 32, groupByLength: true, labelMap: LabelMap.fromExamples(subset), padToMultipleOf: 8 });
    let real = 0;
    for await (const b of cls) real += b.attentionMask.reduce((a, m) => a + m, 0);
    const sec = seconds(t0);
    out.classificationExamplesPerSec = Math.round(subset.length / sec);
    out.classificationTokensPerSec = Math.round(real / sec);
    // The same with formatting in two worker threads (each loads its own tokenizer; start-up included).
    t0 = process.hrtime.bigint();
    const pooled = new DataLoader(subset, { tokenizer: rustBert, task: 'classification', batchSize: 32, groupByLength: true, labelMap: LabelMap.fromExamples(subset), padToMultipleOf: 8, workers: 2 });
    try {
      for await (const b of pooled) void b;
    } finally {
      await pooled.close();
    }
    out.classificationWorkers2ExamplesPerSec = Math.round(subset.length / seconds(t0));
  }
  return out;
}

if (require.main === module) {
  benchTokenize({ quick: process.argv.includes('--quick') }).then((r) => console.log(JSON.stringify(r, null, 2)), (e) => {
    console.error(e);
    process.exitCode = 1;
  });
}
