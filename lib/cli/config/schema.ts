/** The schema of `nodetune train CONFIG.yaml`: what each key may hold, and the typed config it gives. */
import { FIELDS } from '../../data/example';
import type { HttpSource, PostgresSource } from '../../data/sources/spec';
import { PII_ACTIONS } from '../../data/pii/scrub';
import type { PiiOptions } from '../../data/pii/scrub';
import { PII_TYPES } from '../../data/pii/detectors';
import type { Spec } from './validate';

export const TASKS = ['classification', 'token-classification', 'qa', 'causal-lm', 'instruction', 'chat', 'seq2seq', 'masked-lm'] as const;
export type ConfigTask = (typeof TASKS)[number];
export const METHODS = ['full', 'partial', 'lora', 'adapter', 'prompt'] as const;
export type MethodKind = (typeof METHODS)[number];
export const POLICIES = ['head', 'bitfit', 'lastLayers', 'include'] as const;
export const FORMATS = ['jsonl', 'json', 'csv', 'tsv', 'text', 'corpus', 'label-text'] as const;
/** TrainingArgs the config may set (outputDir comes from `output`). */
export const TRAINING_KEYS = ['epochs', 'maxSteps', 'batchSize', 'gradientAccumulationSteps', 'learningRate', 'optimizer', 'adamBeta1', 'adamBeta2',
  'adamEpsilon', 'weightDecay', 'momentum', 'maxGradNorm', 'lrScheduler', 'warmupSteps', 'warmupRatio', 'minLrRatio', 'numCycles', 'power', 'lrEnd',
  'reduceOnPlateau', 'seed', 'shuffle', 'evalStrategy', 'evalSteps', 'loggingSteps', 'saveStrategy', 'saveSteps', 'saveTotalLimit', 'metricForBestModel',
  'greaterIsBetter', 'loadBestAtEnd', 'earlyStoppingPatience', 'earlyStoppingThreshold', 'resumeFrom', 'report', 'tensorboard',
  'predictWithGenerate', 'generationMaxNewTokens', 'generationNumBeams'] as const;
/** data keys of one task only. */
export const SEQ2SEQ_KEYS = ['sourceTemplate', 'targetTemplate', 'maxSourceLength', 'maxTargetLength', 'truncateTarget'] as const;
export const MLM_KEYS = ['mlmProbability', 'wholeWordMasking'] as const;

/** A file path (relative to the config), `-` (standard input), an http(s) URL, { url, bearer?, format? } or { postgres: { url, query, ... } }. */
export type DataSourceConfig = string | PostgresSource | HttpSource;

export interface DataConfig {
  train: DataSourceConfig;
  validation?: DataSourceConfig;
  test?: DataSourceConfig;
  format?: (typeof FORMATS)[number];
  columns?: Record<string, string>;
  /** Read at most this many examples from each file. */
  limit?: number;
  /** Held-out fractions cut from `train` when no validation/test file is given. */
  split?: { validation?: number; test?: number; seed?: number; stratify?: boolean };
  clean?: { stripHtml?: boolean; dedupe?: 'exact' | 'normalized' | false; minChars?: number; maxChars?: number; normalize?: 'NFC' | 'NFKC'; whitespace?: 'collapse' | 'trim';
    /** PII scrubbing: true (mask every type) or the options (docs/DATA.md). */
    pii?: boolean | PiiOptions };
  /** Overlap of train with validation/test (on by default when there is held-out data); `drop` removes the leaked rows from train. */
  leakage?: boolean | { check?: boolean; drop?: boolean; nearDuplicates?: boolean; nearDuplicateThreshold?: number };
  augment?: { synonymReplacement?: number; randomInsertion?: number; randomSwap?: number; randomDeletion?: number; probability?: number; seed?: number };
  maxLength?: number;
  blockSize?: number;
  stride?: number;
  /** Label names in id order (default: sorted from the training data). */
  labels?: string[];
  /** seq2seq: templates over each record's fields ('{question}', '{answers.text.0}'); default '{prompt}' / '{completion}'. */
  sourceTemplate?: string;
  targetTemplate?: string;
  /** seq2seq: source tokens (cut to it) and target tokens (longer is an error unless truncateTarget), EOS included. */
  maxSourceLength?: number;
  maxTargetLength?: number;
  truncateTarget?: boolean;
  /** masked-lm: share of tokens masked (default 0.15) and whole-word masking. */
  mlmProbability?: number;
  wholeWordMasking?: boolean;
}

export interface MethodConfig {
  kind: MethodKind;
  policy?: (typeof POLICIES)[number];
  lastLayers?: number;
  include?: string[];
  exclude?: string[];
  trainEmbeddings?: boolean;
  r?: number;
  alpha?: number;
  dropout?: number;
  targetModules?: string[] | string;
  useRslora?: boolean;
  reduction?: number;
  numVirtualTokens?: number;
  init?: 'random' | 'vocab' | 'text';
  initText?: string;
}

export interface TrainConfig {
  /** The model folder or repo id (`model: { path, quantize }` in the file sets quantize too). */
  model: string;
  /** Keep the frozen base's linear weights quantized (model.quantize in the file). */
  quantize?: 'int8' | 'nf4';
  tokenizer?: string;
  task: ConfigTask;
  output: string;
  device?: string;
  dtype?: 'float32' | 'bfloat16' | 'float16';
  seed?: number;
  data: DataConfig;
  method: MethodConfig;
  training: Record<string, unknown>;
}

const frac: Spec = { type: 'number', min: 0, max: 1 };
const posInt: Spec = { type: 'number', integer: true, min: 1 };
const piiAction: Spec = { type: 'string', enum: PII_ACTIONS };
const PII_SCHEMA: Spec = {
  type: 'oneOf', describe: 'true, false or a mapping of action, types, defaultRegion, salt', options: [{ type: 'boolean' }, {
    type: 'object', fields: {
      action: piiAction, types: { type: 'object', fields: Object.fromEntries(PII_TYPES.map((t) => [t, piiAction])) },
      defaultRegion: { type: 'string' }, salt: { type: 'string' },
    },
  }],
};
const LEAKAGE_SCHEMA: Spec = {
  type: 'oneOf', describe: 'true, false or a mapping of check, drop, nearDuplicates, nearDuplicateThreshold', options: [{ type: 'boolean' }, {
    type: 'object', fields: { check: { type: 'boolean' }, drop: { type: 'boolean' }, nearDuplicates: { type: 'boolean' }, nearDuplicateThreshold: { type: 'number', min: 0.01, max: 1 } },
  }],
};

export const TRAIN_SCHEMA: Spec = {
  type: 'object',
  fields: {
    model: {
      type: 'oneOf', required: true, describe: 'a model folder or repo id, or a mapping of path and quantize', options: [{ type: 'string' }, {
        type: 'object', fields: { path: { type: 'string', required: true }, quantize: { type: 'string', enum: ['int8', 'nf4'] } },
      }],
    },
    tokenizer: { type: 'string' },
    task: { type: 'string', required: true, enum: TASKS },
    output: { type: 'string', required: true },
    device: { type: 'string' },
    dtype: { type: 'string', enum: ['float32', 'bfloat16', 'float16'] },
    seed: { type: 'number', integer: true, min: 0 },
    data: {
      type: 'object', required: true, fields: {
        // Sources: checked by validateSource (config/source.ts), which names the key inside a { postgres } or { url }.
        train: { type: 'any', required: true },
        validation: { type: 'any' },
        test: { type: 'any' },
        format: { type: 'string', enum: FORMATS },
        columns: { type: 'map', keys: FIELDS },
        limit: posInt,
        split: { type: 'object', fields: { validation: frac, test: frac, seed: { type: 'number', integer: true, min: 0 }, stratify: { type: 'boolean' } } },
        clean: {
          type: 'object', fields: {
            stripHtml: { type: 'boolean' },
            dedupe: { type: 'oneOf', options: [{ type: 'string', enum: ['exact', 'normalized'] }, { type: 'boolean' }], describe: 'exact, normalized or false' },
            minChars: { type: 'number', integer: true, min: 0 },
            maxChars: posInt,
            normalize: { type: 'string', enum: ['NFC', 'NFKC'] },
            whitespace: { type: 'string', enum: ['collapse', 'trim'] },
            pii: PII_SCHEMA,
          },
        },
        leakage: LEAKAGE_SCHEMA,
        augment: {
          type: 'object', fields: {
            synonymReplacement: frac, randomInsertion: frac, randomSwap: frac, randomDeletion: frac, probability: frac,
            seed: { type: 'number', integer: true, min: 0 },
          },
        },
        maxLength: posInt,
        blockSize: posInt,
        stride: { type: 'number', integer: true, min: 0 },
        labels: { type: 'strings' },
        sourceTemplate: { type: 'string' },
        targetTemplate: { type: 'string' },
        maxSourceLength: posInt,
        maxTargetLength: posInt,
        truncateTarget: { type: 'boolean' },
        mlmProbability: { type: 'number', min: 0.001, max: 0.999 },
        wholeWordMasking: { type: 'boolean' },
      },
    },
    method: {
      type: 'object', required: true, fields: {
        kind: { type: 'string', required: true, enum: METHODS },
        policy: { type: 'string', enum: POLICIES },
        lastLayers: posInt,
        include: { type: 'strings' },
        exclude: { type: 'strings' },
        trainEmbeddings: { type: 'boolean' },
        r: posInt,
        alpha: { type: 'number', min: 0 },
        dropout: { type: 'number', min: 0, max: 0.99 },
        targetModules: { type: 'oneOf', options: [{ type: 'strings' }, { type: 'string' }], describe: "a list of module names or 'all-linear'" },
        useRslora: { type: 'boolean' },
        reduction: posInt,
        numVirtualTokens: posInt,
        init: { type: 'string', enum: ['random', 'vocab', 'text'] },
        initText: { type: 'string' },
      },
    },
    training: { type: 'object', fields: Object.fromEntries(TRAINING_KEYS.map((k) => [k, { type: 'any' } as Spec])) },
  },
};
