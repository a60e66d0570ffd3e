/** What every pipeline shares: loading the model and tokenizer, padding a batch, softmax, label names. */
import { check } from '../errors';
import { AutoModel, Model } from '../models';
import type { ModelDtype, Task } from '../models';
import { AutoTokenizer, PreTrainedTokenizer } from '../tokenizers';
import { LabelMap } from '../data/label';
import { adapterLabels } from '../peft/adapter-info';
import type { BatcherOptions } from './batcher';

export interface PipelineOptions extends BatcherOptions {
  /** A LoRA/adapter directory (PEFT layout) applied on top of the model. */
  adapter?: string;
  /** Tokenizer directory, or a loaded tokenizer (default: the model directory). */
  tokenizer?: string | PreTrainedTokenizer;
  device?: string;
  dtype?: ModelDtype;
}

export interface Loaded {
  model: Model;
  tokenizer: PreTrainedTokenizer;
  /** Longest input the model takes (positions, and the tokenizer's model_max_length). */
  maxLength: number;
  padId: number;
}

/** Loads a PEFT adapter folder as adapter `name` (the model's first adapter becomes its active one). */
export async function applyAdapter(model: Model, dir: string, name?: string): Promise<void> {
  check(typeof dir === 'string' && dir.length > 0, 'adapter: a directory is required', 'adapter');
  await model.loadAdapter(dir, name);
}

/** Loads the model (for `task`, or the task config.json's architectures name) and its tokenizer. */
export async function loadForTask(task: Task | undefined, modelDir: string, opts: PipelineOptions): Promise<Loaded> {
  check(typeof modelDir === 'string' && modelDir.length > 0, 'pipeline(task, modelDir): modelDir must be a non-empty string', 'modelDir');
  check(opts && typeof opts === 'object', 'pipeline(): options must be an object', 'options');
  // A classification adapter from `nodetune train` names its labels (and so its head size) in labels.json.
  const labels = typeof opts.adapter === 'string' && opts.adapter.length > 0 ? adapterLabels(opts.adapter) : null;
  const model = await AutoModel.fromPretrained(modelDir, {
    quiet: true,
    ...(task !== undefined ? { task } : {}),
    ...(opts.device !== undefined ? { device: opts.device } : {}),
    ...(opts.dtype !== undefined ? { dtype: opts.dtype } : {}),
    ...(labels ? { numLabels: labels.length } : {}),
  });
  if (opts.adapter !== undefined) await applyAdapter(model, opts.adapter);
  if (labels) Object.assign(model.config, new LabelMap(labels).toConfig());
  const tokenizer = opts.tokenizer instanceof PreTrainedTokenizer ? opts.tokenizer : await AutoTokenizer.fromPretrained(opts.tokenizer ?? modelDir);
  return { model, tokenizer, maxLength: maxLengthOf(model, tokenizer), padId: padIdOf(model, tokenizer) };
}

export function maxLengthOf(model: Model, tokenizer: PreTrainedTokenizer): number {
  const c = model.config as Record<string, unknown>;
  const raw = c.max_position_embeddings ?? c.n_positions ?? 512;
  // RoBERTa reserves the first pad_token_id + 1 positions.
  const positions = Number(raw) - (model.modelType === 'roberta' || model.modelType === 'xlm-roberta' ? Number(c.pad_token_id ?? 1) + 1 : 0);
  return Math.min(positions, tokenizer.modelMaxLength ?? positions);
}

/** The id padding is written with: config.json's pad_token_id first (what the model treats as padding, e.g. for
 * RoBERTa positions or a decoder classifier's last token), else the tokenizer's pad (or EOS), else 0. */
export function padIdOf(model: Model, tokenizer: PreTrainedTokenizer): number {
  const c = model.config as Record<string, unknown>;
  if (typeof c.pad_token_id === 'number') return c.pad_token_id;
  return tokenizer.padTokenId ?? (typeof c.eos_token_id === 'number' ? c.eos_token_id : 0);
}

/** Pads rows of ids to one length: right padding (encoders) or left padding (generation), with the mask. */
export function pad(rows: number[][], padId: number, side: 'left' | 'right'): { inputIds: number[][]; attentionMask: number[][]; width: number } {
  const width = Math.max(...rows.map((r) => r.length));
  const inputIds: number[][] = [];
  const attentionMask: number[][] = [];
  for (const r of rows) {
    const fill = new Array<number>(width - r.length).fill(padId);
    const ones = new Array<number>(r.length).fill(1);
    const zeros = new Array<number>(width - r.length).fill(0);
    inputIds.push(side === 'right' ? [...r, ...fill] : [...fill, ...r]);
    attentionMask.push(side === 'right' ? [...ones, ...zeros] : [...zeros, ...ones]);
  }
  return { inputIds, attentionMask, width };
}

/** Softmax of `n` values starting at `offset` of `logits`. */
export function softmax(logits: Float32Array, offset: number, n: number): number[] {
  let max = -Infinity;
  for (let i = 0; i < n; i++) max = Math.max(max, logits[offset + i]!);
  const out = new Array<number>(n);
  let sum = 0;
  for (let i = 0; i < n; i++) sum += out[i] = Math.exp(logits[offset + i]! - max);
  for (let i = 0; i < n; i++) out[i]! /= sum;
  return out;
}

/** Label names from config.json's id2label (LABEL_i where absent). */
export function labelNames(model: Model, n: number): string[] {
  const map = (model.config as Record<string, unknown>).id2label as Record<string, string> | undefined;
  return Array.from({ length: n }, (_, i) => map?.[String(i)] ?? `LABEL_${i}`);
}

/** Accepts one string or a non-empty array of strings. */
export function textsOf(input: unknown, what: string): { texts: string[]; single: boolean } {
  if (typeof input === 'string') return { texts: [input], single: true };
  check(Array.isArray(input) && input.length > 0 && input.every((t) => typeof t === 'string'), `${what}: expected a string or a non-empty array of strings`, 'input');
  return { texts: input as string[], single: false };
}
