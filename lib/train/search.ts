/**
 * Hyperparameter search: grid or seeded random over learning rate, batch size, LoRA rank and epochs, with a trial
 * budget; each trial trains a fresh model in its own directory (its report kept), trials ranked by the validation metric.
 */
import * as fs from 'fs';
import * as path from 'path';
import { NodetuneError } from '../errors';
import { Rng } from '../data/random';
import type { TrainingArgs } from './args';
import type { TrainData } from './data';
import { Trainer, TrainerModel, TrainerOptions } from './trainer';

export type Range = { min: number; max: number; log?: boolean };

export interface SearchSpace {
  learningRate?: number[] | Range;
  batchSize?: number[];
  /** Handed to the model factory, which adds the LoRA adapters. */
  loraRank?: number[];
  epochs?: number[];
}

export interface TrialParams {
  learningRate?: number;
  batchSize?: number;
  loraRank?: number;
  epochs?: number;
}

export interface SearchOptions {
  strategy: 'grid' | 'random';
  space: SearchSpace;
  /** Trials to run at most (required for random; grid runs the first `trials` combinations). */
  trials?: number;
  seed?: number;
  /** A fresh model per trial (apply params.loraRank here). */
  model: (params: TrialParams) => Promise<TrainerModel>;
  tokenizer?: TrainerOptions['tokenizer'];
  train: TrainData;
  validation: TrainData;
  /** Shared args; each trial's outputDir is <args.outputDir>/trial-<n>. */
  args: TrainingArgs;
}

export interface TrialResult {
  index: number;
  params: TrialParams;
  /** The validation value of args.metricForBestModel after training (null when the trial failed). */
  metric: number | null;
  metrics: Record<string, number> | null;
  outputDir: string;
  report: string | null;
  error: string | null;
}

export interface SearchResult {
  metric: string;
  greaterIsBetter: boolean;
  /** Best first; failed trials last. */
  trials: TrialResult[];
  best: TrialResult | null;
  /** search.json with the ranking. */
  file: string;
}

function fail(field: string, message: string): never {
  throw new NodetuneError('ERR_CONFIG', `search.${field}: ${message}`, { field: `search.${field}` });
}

function checkList(name: string, v: unknown, integer: boolean): void {
  if (!Array.isArray(v) || v.length === 0) fail(`space.${name}`, `must be a non-empty array of values, got ${JSON.stringify(v)}`);
  v.forEach((x, i) => {
    if (typeof x !== 'number' || !(x > 0) || (integer && !Number.isSafeInteger(x))) fail(`space.${name}[${i}]`, `must be a positive ${integer ? 'integer' : 'number'}, got ${JSON.stringify(x)}`);
  });
}

/** The parameter sets a search will try, in order. */
export function searchTrials(strategy: 'grid' | 'random', space: SearchSpace, trials: number | undefined, seed = 0): TrialParams[] {
  if (strategy !== 'grid' && strategy !== 'random') fail('strategy', `must be 'grid' or 'random', got ${JSON.stringify(strategy)}`);
  if (!space || typeof space !== 'object') fail('space', 'must be an object');
  const keys = Object.keys(space) as (keyof SearchSpace)[];
  const known = ['learningRate', 'batchSize', 'loraRank', 'epochs'];
  for (const k of keys) if (!known.includes(k)) fail(`space.${k}`, `unknown parameter (searchable: ${known.join(', ')})`);
  if (keys.length === 0) fail('space', 'names no parameter to search');
  if (trials !== undefined && !(Number.isSafeInteger(trials) && trials >= 1)) fail('trials', `must be a positive integer, got ${JSON.stringify(trials)}`);
  for (const k of keys) {
    const v = space[k];
    if (k === 'learningRate' && v && !Array.isArray(v)) {
      const r = v as Range;
      if (strategy === 'grid') fail('space.learningRate', 'a grid needs a list of values, not a range');
      if (!(typeof r.min === 'number' && typeof r.max === 'number' && r.min > 0 && r.max >= r.min)) fail('space.learningRate', `a range needs 0 < min <= max, got ${JSON.stringify(v)}`);
    } else checkList(k, v, k !== 'learningRate');
  }
  if (strategy === 'grid') {
    let combos: TrialParams[] = [{}];
    for (const k of keys) combos = combos.flatMap((c) => (space[k] as number[]).map((x) => ({ ...c, [k]: x })));
    return trials === undefined ? combos : combos.slice(0, trials);
  }
  if (trials === undefined) fail('trials', 'a random search needs a trial budget');
  const rng = new Rng(seed);
  return Array.from({ length: trials }, () => {
    const p: TrialParams = {};
    for (const k of keys) {
      const v = space[k]!;
      if (Array.isArray(v)) p[k] = v[rng.int(v.length)]!;
      else {
        const r = v as Range, u = rng.next();
        p[k] = r.log === false ? r.min + u * (r.max - r.min) : Math.exp(Math.log(r.min) + u * (Math.log(r.max) - Math.log(r.min)));
      }
    }
    return p;
  });
}

/** Runs the trials one after another and ranks them by the validation metric. */
export async function hyperparameterSearch(options: SearchOptions): Promise<SearchResult> {
  if (!options || typeof options !== 'object') fail('options', 'must be an object');
  if (typeof options.model !== 'function') fail('model', 'must be a function (params) => Promise<Model> giving a fresh model per trial');
  if (options.validation === undefined) fail('validation', 'a search ranks trials by a validation metric: give validation data');
  const params = searchTrials(options.strategy, options.space, options.trials, options.seed);
  const base = options.args;
  if (!base || typeof base.outputDir !== 'string') fail('args.outputDir', 'the search needs args.outputDir');
  if (options.space.batchSize && Array.isArray(options.train) && options.train.length > 0 && !Array.isArray((options.train[0] as { inputIds: unknown }).inputIds))
    fail('space.batchSize', 'the training data are prepared batches, whose size is fixed; pass features to collate to search batch sizes');
  const results: TrialResult[] = [];
  let metricName = base.metricForBestModel ?? 'loss';
  let greater = false;
  for (let i = 0; i < params.length; i++) {
    const p = params[i]!;
    const dir = path.join(base.outputDir, `trial-${i}`);
    const { loraRank: _rank, ...trainParams } = p;
    const args: TrainingArgs = { ...base, ...trainParams, outputDir: dir, report: true };
    const r: TrialResult = { index: i, params: p, metric: null, metrics: null, outputDir: dir, report: null, error: null };
    try {
      const trainer = new Trainer({ model: await options.model(p), train: options.train, validation: options.validation, args,
        ...(options.tokenizer ? { tokenizer: options.tokenizer } : {}) });
      metricName = trainer.args.metricForBestModel;
      greater = trainer.args.greaterIsBetter;
      const res = await trainer.train();
      const { metrics } = await trainer.evaluate('validation');
      r.metrics = metrics;
      const v = metrics[metricName.replace(/^eval_/, '')];
      if (v === undefined) throw new NodetuneError('ERR_CONFIG', `metricForBestModel '${metricName}' is not among the metrics (${Object.keys(metrics).join(', ')})`, { field: 'metricForBestModel' });
      r.metric = v;
      r.report = res.report;
    } catch (e) {
      if (e instanceof NodetuneError && e.code === 'ERR_CONFIG') throw e;
      r.error = (e as Error).message;
    }
    results.push(r);
  }
  const ranked = [...results].sort((a, b) => {
    if (a.metric === null || b.metric === null) return a.metric === null ? (b.metric === null ? a.index - b.index : 1) : -1;
    return greater ? b.metric - a.metric : a.metric - b.metric;
  });
  const file = path.join(base.outputDir, 'search.json');
  fs.mkdirSync(base.outputDir, { recursive: true });
  fs.writeFileSync(file, JSON.stringify({ strategy: options.strategy, metric: metricName, greaterIsBetter: greater, trials: ranked }, null, 2) + '\n');
  return { metric: metricName, greaterIsBetter: greater, trials: ranked, best: ranked[0]?.metric !== null ? ranked[0]! : null, file };
}
