/**
 * The Trainer's view of data: prepared batches, features to collate, or any (async) iterable of batches; a per-epoch
 * seeded batch order so the data position can be checkpointed; merging of micro-batches; model inputs from a batch.
 */
import { NodetuneError } from '../errors';
import type { Batch, Feature } from '../data/batch';
import { IGNORE_INDEX } from '../data/batch';
import { collate } from '../data/collate';
import { mlmSeed } from '../data/mlm';
import type { MlmCollator, MlmFeature } from '../data/mlm';
import { shardIndices } from '../distributed/sampler';
import { Rng } from '../data/random';
import type { IdsInput, Labels } from '../models';

/** Raw texts (string[]) are for masked-lm models (tokenized by the Trainer's tokenizer, then masked). */
export type TrainData = Batch[] | Feature[] | string[] | Iterable<Batch> | AsyncIterable<Batch>;

/** Dynamic masking for masked-lm training: every batch is masked afresh (seeded by seed, epoch, batch). */
export interface MlmData {
  collator: MlmCollator;
  /** Turns raw texts into features (needed when the data are strings). */
  tokenize?: (texts: string[]) => Promise<MlmFeature[]>;
}

function isBatch(x: unknown): x is Batch {
  return !!x && typeof x === 'object' && (x as Batch).inputIds instanceof Int32Array && Array.isArray((x as Batch).shape);
}

function isFeature(x: unknown): x is Feature {
  return !!x && typeof x === 'object' && Array.isArray((x as Feature).inputIds);
}

/** A split's data, able to produce the micro-batches of epoch e (shuffled with seed + e) from a given position. */
export class EpochData {
  private readonly batches: Batch[] | null = null;
  private features: Feature[] | null = null;
  private readonly texts: string[] | null = null;
  private readonly iterable: Iterable<Batch> | AsyncIterable<Batch> | null = null;

  constructor(readonly name: string, data: TrainData, private readonly opts: { batchSize: number; padTokenId: number; shuffle: boolean; seed: number; rank?: number; worldSize?: number; mlm?: MlmData }) {
    if (Array.isArray(data)) {
      if (data.length === 0) throw new NodetuneError('ERR_DATA', `${name}: the data are empty`, { field: name });
      if (data.every(isBatch)) this.batches = data as Batch[];
      else if (data.every(isFeature)) this.features = data as Feature[];
      else if (data.every((x) => typeof x === 'string')) {
        if (!opts.mlm?.tokenize)
          throw new NodetuneError('ERR_DATA', `${name}: raw texts train masked-lm models (with a tokenizer); for causal LM pack them into blocks first (data.packCausalLM, or DataLoader with task 'causal-lm' and blockSize)`, { field: name });
        this.texts = data as string[];
      }
      else {
        const i = (data as unknown[]).findIndex((x) => !isBatch(x) && !isFeature(x));
        throw new NodetuneError('ERR_DATA', `${name}[${i}] is neither a Batch ({ inputIds: Int32Array, shape }) nor a Feature ({ inputIds: number[] }); arrays must hold one kind`, { field: name });
      }
    } else if (data && (typeof (data as AsyncIterable<Batch>)[Symbol.asyncIterator] === 'function' || typeof (data as Iterable<Batch>)[Symbol.iterator] === 'function')) {
      this.iterable = data as Iterable<Batch> | AsyncIterable<Batch>;
    } else throw new NodetuneError('ERR_DATA', `${name}: expected an array of batches or features, or an (async) iterable of batches`, { field: name });
  }

  /** Micro-batches per epoch, or null when the source is an iterable of unknown length. */
  get length(): number | null {
    const world = this.opts.worldSize ?? 1;
    if (this.batches) return Math.ceil(this.batches.length / world);
    const n = this.features?.length ?? this.texts?.length;
    if (n !== undefined) return Math.ceil(Math.ceil(n / world) / this.opts.batchSize);
    return null;
  }

  /** The epoch's order (seeded by seed + epoch, the same on every rank), then this rank's shard of it. */
  private order(n: number, epoch: number, shuffle: boolean): number[] {
    const rank = this.opts.rank ?? 0;
    const worldSize = this.opts.worldSize ?? 1;
    if (worldSize > 1) return shardIndices(n, { rank, worldSize, epoch, seed: this.opts.seed, shuffle });
    const idx = Array.from({ length: n }, (_, i) => i);
    return shuffle ? new Rng(this.opts.seed + epoch).shuffle(idx) : idx;
  }

  /** The micro-batches of epoch `epoch`, skipping the first `skip` (a resumed position). */
  async *epoch(epoch: number, skip = 0, shuffle = this.opts.shuffle): AsyncGenerator<Batch> {
    const mlm = this.opts.mlm;
    const masked = (b: Batch, index: number): Batch => (mlm ? mlm.collator.mask(b, mlmSeed(this.opts.seed, epoch, index)) : b);
    if (this.texts && !this.features) this.features = await mlm!.tokenize!(this.texts);
    if (this.batches) {
      const order = this.order(this.batches.length, epoch, shuffle);
      for (let i = skip; i < order.length; i++) yield masked(this.batches[order[i]!]!, i);
    } else if (this.features) {
      const order = this.order(this.features.length, epoch, shuffle);
      const size = this.opts.batchSize;
      for (let b = skip; b * size < order.length; b++) {
        const rows = order.slice(b * size, (b + 1) * size).map((i) => this.features![i]!);
        yield mlm ? mlm.collator.collate(rows, mlmSeed(this.opts.seed, epoch, b), { padTokenId: this.opts.padTokenId })
          : collate(rows, { padTokenId: this.opts.padTokenId });
      }
    } else {
      // An iterable is read by every rank; rank r keeps items r, r + worldSize, ...
      const rank = this.opts.rank ?? 0;
      const worldSize = this.opts.worldSize ?? 1;
      let i = 0;
      let mine = 0;
      for await (const b of this.iterable as AsyncIterable<Batch>) {
        if (!isBatch(b)) throw new NodetuneError('ERR_DATA', `${this.name}: item ${i} of epoch ${epoch} is not a Batch ({ inputIds: Int32Array, shape })`, { field: this.name });
        if (i++ % worldSize !== rank) continue;
        if (mine >= skip) yield masked(b, mine);
        mine++;
      }
    }
  }
}

/** Concatenates micro-batches into one batch (rows right-padded to the longest: mask 0, labels -100, pad id): the batch an
 * accumulation window must equal (the Trainer sends windows as micro-batches, Model.trainStep with an array). */
export function mergeBatches(batches: Batch[], padTokenId: number): Batch {
  if (batches.length === 1) return batches[0]!;
  if (batches.some((b) => b.labelShape)) return mergeSeq2Seq(batches, padTokenId);
  const len = Math.max(...batches.map((b) => b.shape[1]));
  const rows = batches.reduce((a, b) => a + b.shape[0], 0);
  const tokenLabels = batches[0]!.labels !== undefined && batches[0]!.labels.length === batches[0]!.shape[0] * batches[0]!.shape[1] && batches[0]!.shape[1] > 1;
  const hasTypes = batches.some((b) => b.tokenTypeIds);
  const hasLabels = batches[0]!.labels !== undefined;
  const qa = batches[0]!.startPositions !== undefined;
  const out: Batch = { inputIds: new Int32Array(rows * len).fill(padTokenId), attentionMask: new Int32Array(rows * len), shape: [rows, len] };
  if (hasTypes) out.tokenTypeIds = new Int32Array(rows * len);
  if (hasLabels) out.labels = tokenLabels ? new Int32Array(rows * len).fill(IGNORE_INDEX) : new Int32Array(rows);
  if (qa) (out.startPositions = new Int32Array(rows)), (out.endPositions = new Int32Array(rows));
  let r0 = 0;
  batches.forEach((b, k) => {
    const [n, t] = b.shape;
    if ((b.labels !== undefined) !== hasLabels || (b.startPositions !== undefined) !== qa)
      throw new NodetuneError('ERR_DATA', `micro-batch ${k} of an accumulation window has different label fields than the first`, { field: 'labels' });
    for (let r = 0; r < n; r++) {
      const src = r * t, dst = (r0 + r) * len;
      out.inputIds.set(b.inputIds.subarray(src, src + t), dst);
      out.attentionMask.set(b.attentionMask.subarray(src, src + t), dst);
      if (out.tokenTypeIds && b.tokenTypeIds) out.tokenTypeIds.set(b.tokenTypeIds.subarray(src, src + t), dst);
      if (out.labels && b.labels) {
        if (tokenLabels) out.labels.set(b.labels.subarray(src, src + t), dst);
        else out.labels[r0 + r] = b.labels[r]!;
      }
      if (qa) (out.startPositions![r0 + r] = b.startPositions![r]!), (out.endPositions![r0 + r] = b.endPositions![r]!);
    }
    r0 += n;
  });
  return out;
}

/** Seq2seq micro-batches: inputs as above, targets right-padded with -100 to the longest target of the window. */
function mergeSeq2Seq(batches: Batch[], padTokenId: number): Batch {
  const k = batches.findIndex((b) => !b.labelShape || !b.labels);
  if (k >= 0) throw new NodetuneError('ERR_DATA', `micro-batch ${k} of an accumulation window has no seq2seq targets (labelShape) while others have`, { field: 'labels' });
  const inputs = mergeBatches(batches.map((b) => ({ inputIds: b.inputIds, attentionMask: b.attentionMask, shape: b.shape })), padTokenId);
  const len = Math.max(...batches.map((b) => b.labelShape![1]));
  const labels = new Int32Array(inputs.shape[0] * len).fill(IGNORE_INDEX);
  let r0 = 0;
  for (const b of batches) {
    const [n, t] = b.labelShape!;
    for (let r = 0; r < n; r++) labels.set(b.labels!.subarray(r * t, (r + 1) * t), (r0 + r) * len);
    r0 += n;
  }
  return { ...inputs, labels, labelShape: [inputs.shape[0], len] };
}

export type ModelTask = 'base' | 'seq2seq-lm' | 'causal-lm' | 'masked-lm' | 'sequence-classification' | 'token-classification' | 'question-answering';

/** Model inputs and labels in the model's convention (null when the batch has none) of one batch. */
/**
 * The model's inputs for a batch. `tokenTypes` says whether the model has token-type embeddings; when it has none,
 * all-zero token type ids (what tokenizers emit for single texts) are left out, and non-zero ones are passed on so the
 * model refuses them with a clear error.
 */
export function modelInputs(batch: Batch, task: ModelTask, tokenTypes = true): { inputIds: IdsInput; attentionMask: IdsInput; tokenTypeIds?: IdsInput; labels: Labels | null } {
  const shape = batch.shape;
  const out: { inputIds: IdsInput; attentionMask: IdsInput; tokenTypeIds?: IdsInput; labels: Labels | null } = {
    inputIds: { data: batch.inputIds, shape }, attentionMask: { data: batch.attentionMask, shape }, labels: null,
  };
  if (batch.tokenTypeIds && (tokenTypes || batch.tokenTypeIds.some((v) => v !== 0))) out.tokenTypeIds = { data: batch.tokenTypeIds, shape };
  if (task === 'question-answering') {
    if (batch.startPositions && batch.endPositions) {
      const l = new Int32Array(shape[0] * 2);
      for (let i = 0; i < shape[0]; i++) (l[2 * i] = batch.startPositions[i]!), (l[2 * i + 1] = batch.endPositions[i]!);
      out.labels = { data: l, shape: [shape[0], 2] };
    }
  } else if (batch.labels && batch.labelShape) {
    out.labels = { data: batch.labels, shape: batch.labelShape };
  } else if (batch.labels) {
    if (task === 'seq2seq-lm') throw new NodetuneError('ERR_DATA', 'a seq2seq-lm model needs seq2seq batches (targets with their own labelShape: data.formatSeq2Seq features, collated)', { field: 'labels' });
    out.labels = task === 'sequence-classification' ? batch.labels : { data: batch.labels, shape };
  }
  return out;
}

/** Non-padding tokens of a batch. */
export function countTokens(batch: Batch): number {
  let n = 0;
  for (let i = 0; i < batch.attentionMask.length; i++) n += batch.attentionMask[i]!;
  return n;
}
