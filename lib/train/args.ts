/** TrainingArgs: every hyperparameter of a Trainer run, validated with messages naming the field; defaults follow transformers' TrainingArguments. */
import { NodetuneError } from '../errors';
import { didYouMean } from '../util/suggest';
import { SCHEDULE_TYPES, ScheduleType, PlateauOptions } from './schedules';

export interface TrainingArgs {
  /** Checkpoints, metrics.jsonl and report.html go here. */
  outputDir: string;
  /** Passes over the training data (default 3); ignored when maxSteps is set. */
  epochs?: number;
  /** Optimizer steps to run; wins over epochs. */
  maxSteps?: number;
  /** Rows per micro-batch when the training data are features to collate (default 8); prepared batches keep their size. */
  batchSize?: number;
  /** Micro-batches per optimizer step (default 1). */
  gradientAccumulationSteps?: number;
  learningRate?: number;
  optimizer?: 'adamw' | 'sgd';
  adamBeta1?: number;
  adamBeta2?: number;
  adamEpsilon?: number;
  /** Decoupled weight decay (AdamW); the native optimizer exempts biases and norm weights. */
  weightDecay?: number;
  /** SGD momentum (default 0). */
  momentum?: number;
  /** Global gradient-norm clipping; null disables it (default 1.0). */
  maxGradNorm?: number | null;
  lrScheduler?: ScheduleType;
  warmupSteps?: number;
  warmupRatio?: number;
  /** cosine: floor as a fraction of learningRate. */
  minLrRatio?: number;
  numCycles?: number;
  /** polynomial schedule. */
  power?: number;
  lrEnd?: number;
  /** Reduce the lr when the monitored metric stops improving (applied on top of lrScheduler). */
  reduceOnPlateau?: PlateauOptions;
  /** Seeds the batch order (default 42). */
  seed?: number;
  /** Shuffle the training batches each epoch (default true). */
  shuffle?: boolean;
  evalStrategy?: 'no' | 'steps' | 'epoch';
  evalSteps?: number;
  loggingSteps?: number;
  saveStrategy?: 'no' | 'steps' | 'epoch';
  saveSteps?: number;
  /** Keep at most this many checkpoints (the best one is never deleted). */
  saveTotalLimit?: number;
  /** 'loss' or a metric name from evaluate() (default 'loss'). */
  metricForBestModel?: string;
  /** Default: false for losses and perplexity, true for other metrics. */
  greaterIsBetter?: boolean;
  loadBestAtEnd?: boolean;
  /** Stop after this many evaluations in a row without improvement of metricForBestModel. */
  earlyStoppingPatience?: number;
  earlyStoppingThreshold?: number;
  /** A checkpoint directory, or 'latest' for the newest one in outputDir. */
  resumeFrom?: string;
  /** Write report.html at the end (default true). */
  report?: boolean;
  /** Also write TensorBoard event files to <outputDir>/tensorboard (default false). */
  tensorboard?: boolean;
  /** A NaN/Inf loss or gradient norm: 'error' stops with an error naming the step (default); 'skip' drops that update and counts it. */
  onNonFinite?: 'error' | 'skip';
  /** 'bf16': autocast to bfloat16 with float32 master weights (CPU and CUDA); 'fp16': float16 with dynamic loss scaling (CUDA);
   * 'auto': bf16 where the device has fast bf16 (CPU with AVX512-BF16 or AMX, CUDA compute capability 8.0+), else fp32; default 'fp32'. */
  precision?: 'fp32' | 'bf16' | 'fp16' | 'auto';
  /** Recompute each block's activations in backward instead of keeping them: less memory, ~1 more forward per step (default false). */
  gradientCheckpointing?: boolean;
  /** Dropout probabilities for this run, overriding config.json's (keys: embedding, attention, hidden, classifier). */
  dropout?: { embedding?: number; attention?: number; hidden?: number; classifier?: number };
  /** Evaluate by generating (as Seq2SeqTrainer): adds exact_match, f1, rougeL (0-1) and bleu (0-100) to the metrics (default false). */
  predictWithGenerate?: boolean;
  /** Tokens generated per evaluation row with predictWithGenerate (default 64). */
  generationMaxNewTokens?: number;
  /** Beams for that generation (default 1: greedy). */
  generationNumBeams?: number;
}

export type ResolvedArgs = Required<Omit<TrainingArgs, 'maxSteps' | 'reduceOnPlateau' | 'resumeFrom' | 'saveTotalLimit' | 'warmupSteps' | 'warmupRatio' | 'earlyStoppingPatience' | 'greaterIsBetter' | 'maxGradNorm' | 'dropout'>> & {
  dropout: { embedding?: number; attention?: number; hidden?: number; classifier?: number } | null;
  maxSteps: number | null;
  reduceOnPlateau: PlateauOptions | null;
  resumeFrom: string | null;
  saveTotalLimit: number | null;
  warmupSteps: number | null;
  warmupRatio: number | null;
  earlyStoppingPatience: number | null;
  greaterIsBetter: boolean;
  maxGradNorm: number | null;
};

const KNOWN = new Set(['outputDir', 'epochs', 'maxSteps', 'batchSize', 'gradientAccumulationSteps', 'learningRate', 'optimizer', 'adamBeta1', 'adamBeta2',
  'adamEpsilon', 'weightDecay', 'momentum', 'maxGradNorm', 'lrScheduler', 'warmupSteps', 'warmupRatio', 'minLrRatio', 'numCycles', 'power', 'lrEnd',
  'reduceOnPlateau', 'seed', 'shuffle', 'evalStrategy', 'evalSteps', 'loggingSteps', 'saveStrategy', 'saveSteps', 'saveTotalLimit', 'metricForBestModel',
  'greaterIsBetter', 'loadBestAtEnd', 'earlyStoppingPatience', 'earlyStoppingThreshold', 'resumeFrom', 'report', 'tensorboard', 'onNonFinite', 'dropout', 'gradientCheckpointing', 'precision',
  'predictWithGenerate', 'generationMaxNewTokens', 'generationNumBeams']);

const DROPOUT_KEYS = ['embedding', 'attention', 'hidden', 'classifier'];

function dropoutArg(v: unknown): ResolvedArgs['dropout'] {
  if (v === undefined || v === null) return null;
  if (typeof v !== 'object' || Array.isArray(v)) fail('dropout', `must be an object with keys ${DROPOUT_KEYS.join(', ')}, got ${show(v)}`);
  for (const [k, p] of Object.entries(v as Record<string, unknown>)) {
    if (!DROPOUT_KEYS.includes(k)) fail(`dropout.${k}`, `unknown key (allowed: ${DROPOUT_KEYS.join(', ')})`);
    if (typeof p !== 'number' || !(p >= 0 && p < 1)) fail(`dropout.${k}`, `must be a probability in [0, 1), got ${show(p)}`);
  }
  return v as ResolvedArgs['dropout'];
}

function fail(field: string, message: string): never {
  throw new NodetuneError('ERR_CONFIG', `TrainingArgs.${field}: ${message}`, { field });
}

const show = (v: unknown): string => (v === undefined ? 'undefined' : JSON.stringify(v));

function int(a: Record<string, unknown>, field: string, min: number, dflt: number | null): number | null {
  const v = a[field];
  if (v === undefined || v === null) return dflt;
  if (!Number.isSafeInteger(v) || (v as number) < min) fail(field, `must be an integer >= ${min}, got ${show(v)}`);
  return v as number;
}

function num(a: Record<string, unknown>, field: string, lo: number, hi: number, dflt: number, open: { lo?: boolean; hi?: boolean } = {}): number {
  const v = a[field];
  if (v === undefined) return dflt;
  const ok = typeof v === 'number' && Number.isFinite(v) && (open.lo ? v > lo : v >= lo) && (open.hi ? v < hi : v <= hi);
  if (!ok) fail(field, `must be a number in ${open.lo ? '(' : '['}${lo}, ${hi}${open.hi ? ')' : ']'}, got ${show(v)}`);
  return v as number;
}

function oneOf<T extends string>(a: Record<string, unknown>, field: string, allowed: readonly T[], dflt: T): T {
  const v = a[field];
  if (v === undefined) return dflt;
  if (!allowed.includes(v as T)) fail(field, `must be one of ${allowed.map((x) => `'${x}'`).join(', ')}, got ${show(v)}`);
  return v as T;
}

function bool(a: Record<string, unknown>, field: string, dflt: boolean): boolean {
  const v = a[field];
  if (v === undefined) return dflt;
  if (typeof v !== 'boolean') fail(field, `must be true or false, got ${show(v)}`);
  return v;
}

/** Validates `args` and fills in the defaults; `hasValidation` picks the default evaluation strategy. */
export function resolveArgs(args: TrainingArgs, hasValidation: boolean): ResolvedArgs {
  if (!args || typeof args !== 'object') throw new NodetuneError('ERR_CONFIG', 'TrainingArgs: args must be an object', { field: 'args' });
  const a = args as unknown as Record<string, unknown>;
  for (const k of Object.keys(a)) if (!KNOWN.has(k)) fail(k, `unknown option${didYouMean(k, [...KNOWN])}; known: ${[...KNOWN].join(', ')}`);
  if (typeof a.outputDir !== 'string' || a.outputDir.length === 0) fail('outputDir', `must be a non-empty path, got ${show(a.outputDir)}`);
  const inf = Number.MAX_VALUE;
  const evalStrategy = oneOf(a, 'evalStrategy', ['no', 'steps', 'epoch'] as const, hasValidation ? 'epoch' : 'no');
  if (evalStrategy !== 'no' && !hasValidation) fail('evalStrategy', `is '${evalStrategy}' but no validation data was given`);
  const saveStrategy = oneOf(a, 'saveStrategy', ['no', 'steps', 'epoch'] as const, 'no');
  const evalSteps = int(a, 'evalSteps', 1, 500)!;
  const saveSteps = int(a, 'saveSteps', 1, 500)!;
  const metric = a.metricForBestModel ?? 'loss';
  if (typeof metric !== 'string' || metric.length === 0) fail('metricForBestModel', `must be a metric name such as 'loss' or 'accuracy', got ${show(metric)}`);
  const lowerIsBetter = metric === 'loss' || metric.endsWith('loss') || metric === 'perplexity';
  const loadBestAtEnd = bool(a, 'loadBestAtEnd', false);
  const patience = int(a, 'earlyStoppingPatience', 1, null);
  if ((loadBestAtEnd || patience !== null) && evalStrategy === 'no')
    fail(loadBestAtEnd ? 'loadBestAtEnd' : 'earlyStoppingPatience', 'needs evaluations: give validation data and evalStrategy \'steps\' or \'epoch\'');
  if (loadBestAtEnd && saveStrategy !== evalStrategy)
    fail('saveStrategy', `must match evalStrategy ('${evalStrategy}') with loadBestAtEnd (the best model is restored from its checkpoint), got '${saveStrategy}'`);
  if (loadBestAtEnd && saveStrategy === 'steps' && saveSteps % evalSteps !== 0)
    fail('saveSteps', `must be a multiple of evalSteps (${evalSteps}) with loadBestAtEnd, got ${saveSteps}`);
  const maxGradNorm = a.maxGradNorm === null ? null : num(a, 'maxGradNorm', 0, inf, 1.0, { lo: true });
  const plateau = a.reduceOnPlateau;
  if (plateau !== undefined && (plateau === null || typeof plateau !== 'object')) fail('reduceOnPlateau', `must be an object of plateau options, got ${show(plateau)}`);
  if (plateau !== undefined && evalStrategy === 'no') fail('reduceOnPlateau', 'needs evaluations: give validation data and evalStrategy \'steps\' or \'epoch\'');
  const resumeFrom = a.resumeFrom;
  if (resumeFrom !== undefined && (typeof resumeFrom !== 'string' || resumeFrom.length === 0)) fail('resumeFrom', `must be a checkpoint directory or 'latest', got ${show(resumeFrom)}`);
  const greater = a.greaterIsBetter;
  if (greater !== undefined && typeof greater !== 'boolean') fail('greaterIsBetter', `must be true or false, got ${show(greater)}`);
  return {
    outputDir: a.outputDir as string,
    epochs: num(a, 'epochs', 0, inf, 3, { lo: true }),
    maxSteps: int(a, 'maxSteps', 1, null),
    batchSize: int(a, 'batchSize', 1, 8)!,
    gradientAccumulationSteps: int(a, 'gradientAccumulationSteps', 1, 1)!,
    learningRate: num(a, 'learningRate', 0, inf, 5e-5),
    optimizer: oneOf(a, 'optimizer', ['adamw', 'sgd'] as const, 'adamw'),
    adamBeta1: num(a, 'adamBeta1', 0, 1, 0.9, { hi: true }),
    adamBeta2: num(a, 'adamBeta2', 0, 1, 0.999, { hi: true }),
    adamEpsilon: num(a, 'adamEpsilon', 0, inf, 1e-8, { lo: true }),
    weightDecay: num(a, 'weightDecay', 0, inf, 0),
    momentum: num(a, 'momentum', 0, 1, 0, { hi: true }),
    maxGradNorm,
    lrScheduler: oneOf(a, 'lrScheduler', SCHEDULE_TYPES, 'linear'),
    warmupSteps: int(a, 'warmupSteps', 0, null),
    warmupRatio: a.warmupRatio === undefined ? null : num(a, 'warmupRatio', 0, 1, 0),
    minLrRatio: num(a, 'minLrRatio', 0, 1, 0),
    numCycles: num(a, 'numCycles', 0, inf, 0.5),
    power: num(a, 'power', 0, inf, 1),
    lrEnd: num(a, 'lrEnd', 0, inf, 1e-7),
    reduceOnPlateau: (plateau as PlateauOptions | undefined) ?? null,
    seed: int(a, 'seed', 0, 42)!,
    shuffle: bool(a, 'shuffle', true),
    evalStrategy,
    evalSteps,
    loggingSteps: int(a, 'loggingSteps', 1, 10)!,
    saveStrategy,
    saveSteps,
    saveTotalLimit: int(a, 'saveTotalLimit', 1, null),
    metricForBestModel: metric,
    greaterIsBetter: (greater as boolean | undefined) ?? !lowerIsBetter,
    loadBestAtEnd,
    earlyStoppingPatience: patience,
    earlyStoppingThreshold: num(a, 'earlyStoppingThreshold', 0, inf, 0),
    resumeFrom: (resumeFrom as string | undefined) ?? null,
    report: bool(a, 'report', true),
    tensorboard: bool(a, 'tensorboard', false),
    onNonFinite: oneOf(a, 'onNonFinite', ['error', 'skip'] as const, 'error'),
    dropout: dropoutArg(a.dropout),
    gradientCheckpointing: bool(a, 'gradientCheckpointing', false),
    precision: oneOf(a, 'precision', ['fp32', 'bf16', 'fp16', 'auto'] as const, 'fp32'),
    predictWithGenerate: bool(a, 'predictWithGenerate', false),
    generationMaxNewTokens: int(a, 'generationMaxNewTokens', 1, 64)!,
    generationNumBeams: int(a, 'generationNumBeams', 1, 1)!,
  };
}
