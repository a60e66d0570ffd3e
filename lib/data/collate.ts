/** Collation: dynamic padding to the longest row (optionally to a multiple of 8), masks, padding side; length grouping. */
import { NodetuneError, check } from '../errors';
import { IGNORE_INDEX } from './batch';
import type { Batch, Feature } from './batch';
import { Rng } from './random';

export interface CollateOptions {
  padTokenId: number;
  paddingSide?: 'left' | 'right';
  /** Round the padded length up to a multiple of this (8 suits tensor cores). */
  padToMultipleOf?: number;
  /** Pad every batch to exactly this length instead of the longest row. */
  padToLength?: number;
  /** Token-label tasks: a batch whose labels are all -100 is an error (default true). */
  requireLabels?: boolean;
}

function describe(features: Feature[]): string {
  const where = features.map((f) => f.source).filter((s) => s !== undefined).slice(0, 5).map((s) => `${s?.file}:${s?.line}`);
  return where.length ? ` (rows from ${where.join(', ')}${features.length > where.length ? ', ...' : ''})` : '';
}

export function collate(features: Feature[], opts: CollateOptions): Batch {
  check(Array.isArray(features) && features.length > 0, 'collate: at least one feature is required', 'features');
  check(Number.isInteger(opts.padTokenId), 'collate: padTokenId must be an integer', 'padTokenId');
  const left = opts.paddingSide === 'left';
  let len = Math.max(...features.map((f) => f.inputIds.length));
  if (opts.padToLength !== undefined) {
    check(opts.padToLength >= len, `collate: padToLength ${opts.padToLength} is shorter than the longest row (${len})`, 'padToLength');
    len = opts.padToLength;
  }
  const m = opts.padToMultipleOf;
  if (m !== undefined) {
    check(Number.isInteger(m) && m > 0, 'collate: padToMultipleOf must be a positive integer', 'padToMultipleOf');
    len = Math.ceil(len / m) * m;
  }
  const n = features.length;
  const inputIds = new Int32Array(n * len).fill(opts.padTokenId);
  const attentionMask = new Int32Array(n * len);
  const hasTypes = features.some((f) => f.tokenTypeIds !== undefined);
  const tokenTypeIds = hasTypes ? new Int32Array(n * len) : undefined;
  const seq2seq = features.some((f) => f.targetIds !== undefined);
  const tokenLabels = features.some((f) => f.labels !== undefined);
  check(!(seq2seq && (tokenLabels || features.some((f) => f.label !== undefined))), 'collate: features mix seq2seq targets with other labels', 'targetIds');
  const classLabels = features.some((f) => f.label !== undefined);
  check(!(tokenLabels && classLabels), 'collate: features mix token labels and class labels', 'labels');
  const qa = features.some((f) => f.startPosition !== undefined);
  const labels = tokenLabels ? new Int32Array(n * len).fill(IGNORE_INDEX) : classLabels ? new Int32Array(n) : undefined;
  const startPositions = qa ? new Int32Array(n) : undefined;
  const endPositions = qa ? new Int32Array(n) : undefined;
  let anyLabel = false;
  features.forEach((f, r) => {
    const k = f.inputIds.length;
    const off = r * len + (left ? len - k : 0);
    inputIds.set(f.inputIds, off);
    if (f.attentionMask) attentionMask.set(f.attentionMask, off); else attentionMask.fill(1, off, off + k);
    if (tokenTypeIds && f.tokenTypeIds) tokenTypeIds.set(f.tokenTypeIds, off);
    if (tokenLabels && labels) {
      check(f.labels !== undefined && f.labels.length === k, `collate: row ${r} has ${f.labels?.length ?? 'no'} labels for ${k} tokens`, 'labels');
      labels.set(f.labels, off);
      if (!anyLabel) anyLabel = f.labels.some((l) => l !== IGNORE_INDEX);
    } else if (classLabels && labels) {
      check(f.label !== undefined, `collate: row ${r} has no label`, 'label');
      labels[r] = f.label;
    }
    if (startPositions && endPositions) {
      const shift = left ? len - k : 0;
      startPositions[r] = (f.startPosition ?? 0) + shift;
      endPositions[r] = (f.endPosition ?? 0) + shift;
    }
  });
  if (tokenLabels && !anyLabel && opts.requireLabels !== false) {
    const first = features.find((f) => f.source)?.source;
    throw new NodetuneError('ERR_DATA',
      `every label in this batch is -100, so it has nothing to learn from and its loss would be a silent zero${describe(features)}; ` +
      'the completions were probably cut off by maxLength, or the prompts are too long',
      { file: first?.file, line: first?.line, field: 'labels' });
  }
  const batch: Batch = { inputIds, attentionMask, shape: [n, len], sources: features.map((f) => f.source) };
  if (seq2seq) Object.assign(batch, collateTargets(features));
  if (tokenTypeIds) batch.tokenTypeIds = tokenTypeIds;
  if (labels) batch.labels = labels;
  if (startPositions && endPositions) { batch.startPositions = startPositions; batch.endPositions = endPositions; }
  return batch;
}

/** Seq2seq targets: right-padded with -100 to the batch's longest target (their own length, not the inputs'). */
function collateTargets(features: Feature[]): { labels: Int32Array; labelShape: [number, number] } {
  features.forEach((f, r) => check(Array.isArray(f.targetIds) && f.targetIds.length > 0, `collate: row ${r} has no target ids`, 'targetIds'));
  const n = features.length;
  const len = Math.max(...features.map((f) => (f.targetIds as number[]).length));
  const labels = new Int32Array(n * len).fill(IGNORE_INDEX);
  features.forEach((f, r) => labels.set(f.targetIds as number[], r * len));
  return { labels, labelShape: [n, len] };
}

export interface BatchOrderOptions {
  batchSize: number;
  shuffle?: boolean;
  seed?: number;
  dropLast?: boolean;
}

function chunk(indices: number[], size: number, dropLast: boolean): number[][] {
  const out: number[][] = [];
  for (let i = 0; i < indices.length; i += size) {
    const b = indices.slice(i, i + size);
    if (b.length === size || !dropLast) out.push(b);
  }
  return out;
}

/** Batches of indices in order, or shuffled with a seed. */
export function batchIndices(n: number, opts: BatchOrderOptions): number[][] {
  check(Number.isInteger(opts.batchSize) && opts.batchSize > 0, 'batchSize must be a positive integer', 'batchSize');
  const idx = Array.from({ length: n }, (_, i) => i);
  if (opts.shuffle) new Rng(opts.seed ?? 0).shuffle(idx);
  return chunk(idx, opts.batchSize, opts.dropLast === true);
}

/**
 * Length-grouped batches: shuffle, cut into mega-batches of `megaBatch` batches, sort each by length so that a batch
 * holds rows of similar length (less padding), and shuffle the batch order; the longest batch goes first so that an
 * out-of-memory shows at once.
 */
export function lengthGroupedBatches(lengths: readonly number[], opts: BatchOrderOptions & { megaBatch?: number }): number[][] {
  check(Number.isInteger(opts.batchSize) && opts.batchSize > 0, 'batchSize must be a positive integer', 'batchSize');
  const rng = new Rng(opts.seed ?? 0);
  const idx = rng.shuffle(Array.from({ length: lengths.length }, (_, i) => i));
  const mega = opts.batchSize * (opts.megaBatch ?? 50);
  const batches: number[][] = [];
  for (let i = 0; i < idx.length; i += mega) {
    const group = idx.slice(i, i + mega).sort((a, b) => (lengths[b] as number) - (lengths[a] as number));
    batches.push(...chunk(group, opts.batchSize, false));
  }
  const full = opts.dropLast ? batches.filter((b) => b.length === opts.batchSize) : batches;
  rng.shuffle(full);
  let longest = 0;
  full.forEach((b, i) => { if ((lengths[b[0] as number] as number) > (lengths[(full[longest] as number[])[0] as number] as number)) longest = i; });
  if (full.length > 1) [full[0], full[longest]] = [full[longest] as number[], full[0] as number[]];
  return full;
}
