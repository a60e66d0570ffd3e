/**
 * One fine-tuning run from a validated config: data, model, method, metrics before, training, metrics after, the
 * trained model or adapter written, and a summary. Used by `nodetune train` and the demo.
 */
import * as fs from 'fs';
import * as path from 'path';
import { AutoModel, Model, resolveModelDir } from '../models';
import type { Task } from '../models';
import { AutoTokenizer, resolveTokenizerDir } from '../tokenizers';
import type { PreTrainedTokenizer } from '../tokenizers';
import { DataLoader } from '../data';
import type { Feature } from '../data';
import { Trainer } from '../train';
import type { TrainingArgs } from '../train';
import { manualSeed } from '../rng';
import { Communicator } from '../distributed/communicator';
import { deviceForRank, isDistributed, readDistEnv } from '../distributed/env';
import { syncParameters } from '../distributed/sync';
import { runtimeInfo } from '../runtime';
import type { ConfigTask, TrainConfig } from './config/schema';
import { featurize, mlmOptions, prepareData } from './data';
import { applyMethod, isAdapterMethod } from './method';
import { resolveDemoModel } from './demo-models';
import { LABELS_FILE } from '../peft/adapter-info';
import { attachProgress, phaseWriter } from './progress';
import { collapseWarning } from './collapse';
import { formatTable, metricRows } from './table';
import { writeRunReport } from './run-report';

export const MODEL_TASK: Record<ConfigTask, Task> = {
  classification: 'sequence-classification', 'token-classification': 'token-classification', qa: 'question-answering',
  'causal-lm': 'causal-lm', instruction: 'causal-lm', chat: 'causal-lm', seq2seq: 'seq2seq-lm', 'masked-lm': 'masked-lm',
};

const TOKENIZER_FILES = ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'vocab.json', 'merges.txt', 'vocab.txt', 'spiece.model'];

/** Copies the tokenizer's files next to a saved model, so the folder loads on its own. */
export function copyTokenizerFiles(tokenizerDir: string, dir: string): void {
  fs.mkdirSync(dir, { recursive: true });
  for (const f of TOKENIZER_FILES) {
    if (!fs.existsSync(path.join(tokenizerDir, f))) continue;
    const to = path.join(dir, f);
    fs.copyFileSync(path.join(tokenizerDir, f), to);
    // A read-only source (a package's or the HF cache's files) would leave a copy its owner cannot overwrite or rerun into.
    fs.chmodSync(to, fs.statSync(to).mode | 0o200);
  }
}

export interface RunResult {
  before: { validation: Record<string, number> | null; test: Record<string, number> | null };
  after: { validation: Record<string, number> | null; test: Record<string, number> | null };
  /** The trained model folder (full / partial) or adapter folder (lora / adapter / prompt). */
  saved: string;
  report: string | null;
  trainable: { trainable: number; total: number; percent: number };
  steps: number;
  seconds: number;
  summary: string;
  model: Model;
  tokenizer: PreTrainedTokenizer;
}

export interface RunOptions {
  /** Progress output (default process.stderr). */
  stream?: NodeJS.WritableStream & { isTTY?: boolean };
  tty?: boolean;
  label?: string;
  /** A model already loaded (the demo reuses one); otherwise config.model is loaded. */
  model?: Model;
  tokenizer?: PreTrainedTokenizer;
  /** No progress output. */
  quiet?: boolean;
  /** Data parallel: this process's group (default: joined from the torchrun variables when WORLD_SIZE > 1). */
  communicator?: Communicator;
}

export async function runTraining(config: TrainConfig, o: RunOptions = {}): Promise<RunResult> {
  const started = Date.now();
  // The example configs name models built on first use (nodetune-demo/gpt2, nodetune-demo/encoder).
  const say = (s: string) => { if (!o.quiet) (o.stream ?? process.stderr).write(`${s}\n`); };
  // Each phase on screen as it starts, so no step of the run is silent for seconds (rank 0 alone once the group is known).
  let main = true;
  const showPhase = phaseWriter({ ...(o.stream ? { stream: o.stream } : {}), ...(o.label ? { label: o.label } : {}), quiet: o.quiet === true });
  const phase = (text: string) => { if (main) showPhase(text); };
  const c: TrainConfig = { ...config, model: await resolveDemoModel(config.model, say, !o.quiet) };
  const seed = c.seed ?? 42;
  // The model folder is checked first: a missing one is named as the model, not as the tokenizer found in it.
  const tokDir = resolveTokenizerDir(c.tokenizer ?? (o.model ? c.model : resolveModelDir(c.model)));
  phase('reading the data');
  const tokenizer = o.tokenizer ?? await AutoTokenizer.fromPretrained(tokDir);
  // Every source is read whole here, before anything is written under c.output: a failing query or URL leaves no run folder.
  const data = await prepareData(c.data, c.task);
  const labels = data.labels;
  // Started by `nodetune launch` or a torchrun-style launcher: join the group, one device per local rank.
  const comm = o.communicator ?? (isDistributed() ? await Communicator.fromEnv() : null);
  const device = c.device ?? (comm ? deviceForRank(readDistEnv().localRank, runtimeInfo().cudaDevices.length) : undefined);
  main = comm === null || comm.rank === 0;
  manualSeed(seed);
  if (!o.model) phase(`loading the model ${c.model}`);
  const model = o.model ?? await AutoModel.fromPretrained(c.model, {
    task: MODEL_TASK[c.task], quiet: true, seed,
    ...(labels && c.task === 'classification' ? { numLabels: labels.size } : {}),
    ...(labels && c.task === 'token-classification' ? { numLabels: labels.size } : {}),
    ...(device ? { device } : {}), ...(c.dtype ? { dtype: c.dtype } : {}), ...(c.quantize ? { quantize: c.quantize } : {}),
  });
  if (labels) Object.assign(model.config, labels.toConfig());
  await applyMethod(model, c.method, tokenizer, seed);
  if (comm) await syncParameters(model, comm);
  // The formatters keep the tokenizer's token type ids; models without token types (decoders) refuse them.
  const types = typeof model.config.type_vocab_size === 'number' && model.config.type_vocab_size > 0;
  const feats = async (ex: typeof data.train | null): Promise<Feature[] | string[] | undefined> => {
    if (!ex) return undefined;
    const f = await featurize(tokenizer, c.data, c.task, labels, ex);
    if (!types) for (const x of f) if (typeof x !== 'string') delete x.tokenTypeIds;
    return f;
  };
  const trainFeatures = (await feats(data.train))!;
  const validation = await feats(data.validation);
  const test = await feats(data.test);
  const args: TrainingArgs = { seed, ...(c.training as Partial<TrainingArgs>), outputDir: c.output };
  const batchSize = args.batchSize ?? 8;
  // The run writes the report itself once the "after" metrics are known (with its configuration and the comparison).
  const wantReport = args.report !== false;
  args.report = false;
  const perEpoch = Math.ceil(Math.ceil(trainFeatures.length / batchSize) / (args.gradientAccumulationSteps ?? 1));
  const totalSteps = args.maxSteps ?? Math.max(1, Math.ceil((args.epochs ?? 3) * perEpoch));
  let train: Feature[] | string[] | DataLoader = trainFeatures;
  if (c.data.augment) {
    train = new DataLoader(data.train, { tokenizer, task: 'classification', batchSize, split: 'train', seed, augment: c.data.augment,
      ...(labels ? { labelMap: labels } : {}), ...(c.data.maxLength !== undefined ? { maxLength: c.data.maxLength } : {}) });
    args.maxSteps = totalSteps;
  }
  const trainer = new Trainer({ model, tokenizer, train, ...(validation ? { validation } : {}), ...(test ? { test } : {}), args,
    ...(comm ? { communicator: comm } : {}), ...(c.task === 'masked-lm' ? { mlm: mlmOptions(c.data) } : {}) });
  if (validation || test) phase(`evaluating before training (${[validation && `validation: ${validation.length}`, test && `test: ${test.length}`].filter(Boolean).join(', ')} examples)`);
  const before = {
    validation: validation ? (await trainer.evaluate('validation')).metrics : null,
    test: test ? (await trainer.evaluate('test')).metrics : null,
  };
  const epochs = args.maxSteps === undefined ? Math.ceil(args.epochs ?? 3) : undefined;
  phase(`training: ${totalSteps} steps${epochs ? ` over ${epochs} epoch${epochs === 1 ? '' : 's'}` : ''} of ${trainFeatures.length} examples, batch size ${batchSize}`);
  const done = o.quiet || !main ? () => undefined : attachProgress(trainer, { totalSteps, ...(epochs ? { epochs } : {}), ...(o.stream ? { stream: o.stream } : {}), ...(o.tty !== undefined ? { tty: o.tty } : {}), ...(o.label ? { label: o.label } : {}) });
  let result;
  try {
    result = await trainer.train();
  } finally {
    done();
  }
  if (validation || (test && !result.testMetrics)) phase('evaluating after training');
  const validationAfter = validation ? await trainer.evaluate('validation') : null;
  const testAfter = result.testMetrics || !test ? null : await trainer.evaluate('test');
  const after = { validation: validationAfter?.metrics ?? null, test: result.testMetrics ?? testAfter?.metrics ?? null };
  // A classifier that predicts one class for every row: said at the end of the summary.
  const checked = validationAfter ? ['validation', validationAfter] as const : testAfter ? ['test', testAfter] as const : null;
  const collapsed = checked && c.task === 'classification' ? collapseWarning(checked[0], checked[1].confusion, labels ? labels.labels : null) : null;
  const saved = isAdapterMethod(c.method) ? path.join(c.output, 'adapter') : path.join(c.output, 'model');
  phase(`writing the ${isAdapterMethod(c.method) ? 'adapter' : 'model'}${wantReport ? ' and the report' : ''}`);
  if (!main) {
    // Rank 0 writes the result; the others only helped train.
  } else if (isAdapterMethod(c.method)) {
    await model.saveAdapter(saved);
    // PEFT's files carry no label names; `nodetune merge`, `eval` and `predict` read them from here.
    if (labels) fs.writeFileSync(path.join(saved, LABELS_FILE), JSON.stringify({ labels: labels.labels }, null, 2) + '\n');
  } else await model.savePretrained(saved);
  if (main) copyTokenizerFiles(tokDir, saved);
  if (comm) await comm.barrier();
  const summary = model.parameterSummary();
  const rows = [
    ...(before.validation && after.validation ? metricRows('validation', before.validation, after.validation) : []),
    ...(before.test && after.test ? metricRows('test', before.test, after.test) : []),
  ];
  const seconds = (Date.now() - started) / 1000;
  const checkedConfusion = checked?.[1].confusion ? { split: checked[0], matrix: checked[1].confusion } : null;
  const report = main && wantReport ? writeRunReport({ config: c, model, result, metricForBestModel: args.metricForBestModel ?? 'loss', batchSize,
    sizes: { train: trainFeatures.length, validation: validation?.length ?? null, test: test?.length ?? null }, before, after,
    confusion: checkedConfusion, labels: labels ? labels.labels : null, seconds }) : null;
  const text = !main ? `rank ${comm!.rank} of ${comm!.worldSize}: ${result.globalStep} steps; rank 0 wrote the results to ${saved}` : [
    ...data.notes,
    `method ${c.method.kind}: ${summary.trainable.toLocaleString('en-US')} of ${summary.total.toLocaleString('en-US')} parameters trained (${summary.percent.toFixed(2)}%), ${result.globalStep} steps in ${seconds.toFixed(1)} s`,
    rows.length > 0 ? formatTable(['metric', 'before', 'after', 'change'], rows) : 'no validation or test data: no metrics before/after',
    `${isAdapterMethod(c.method) ? 'adapter' : 'model'} written to ${saved}`,
    ...(report ? [`report: ${report}`] : []),
    ...(collapsed ? [collapsed] : []),
  ].join('\n');
  return {
    before, after, saved, report, steps: result.globalStep, seconds, summary: text, model, tokenizer,
    trainable: { trainable: summary.trainable, total: summary.total, percent: summary.percent },
  };
}
