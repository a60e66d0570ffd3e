/**
 * DataLoader: examples → formatted features → collated batches, prepared ahead while the consumer (a native training
 * step) runs. Tokenization runs in the Rust engine's own threads (its calls are asynchronous), so the JavaScript thread
 * only orders, pads and copies.
 */
import { NodetuneError, check } from '../errors';
import type { PreTrainedTokenizer } from '../tokenizers/tokenizer';
import { Augmenter } from './augment';
import type { AugmentOptions } from './augment';
import type { Batch, Feature } from './batch';
import { batchIndices, collate, lengthGroupedBatches } from './collate';
import type { Example, Task } from './example';
import { featurizeFor } from './featurize';
import type { FeaturizeOptions } from './featurize';
import type { LabelMap } from './label';
import { packCausalLM } from './pack';
import { Rng } from './random';
import { FeaturePool } from './workers';
import type { Seq2SeqFormat } from './seq2seq';

export interface LoaderOptions {
  tokenizer: PreTrainedTokenizer;
  task: Task;
  batchSize: number;
  /** Augmentation and shuffling default on only for 'train'. */
  split?: 'train' | 'validation' | 'test';
  shuffle?: boolean;
  seed?: number;
  /** Batch rows of similar length together (less padding). */
  groupByLength?: boolean;
  padToMultipleOf?: number;
  /** Defaults to the tokenizer's padding side. */
  paddingSide?: 'left' | 'right';
  maxLength?: number;
  /** classification / token classification: label → id. */
  labelMap?: LabelMap;
  /** EDA augmentation, applied on the fly to training data only (classification). */
  augment?: Augmenter | AugmentOptions;
  /** Batches prepared ahead of the consumer; default 2. */
  prefetch?: number;
  /** causal-lm: tokens per block. */
  blockSize?: number;
  /** seq2seq: source/target templates and lengths (maxLength, when given, is the source length). */
  seq2seq?: Seq2SeqFormat;
  /** qa: tokens shared by neighbouring windows. */
  stride?: number;
  dropLast?: boolean;
  /** causal-lm streams: blocks held for shuffling; default 1024. */
  shuffleBuffer?: number;
  /**
   * Worker threads that format examples, each with its own tokenizer (0, the default: format on this thread; the
   * engine's encoding runs in native threads either way). Worth it when formatting itself is heavy: chat templates,
   * QA windows, many short examples on a machine with spare cores. Call close() when done.
   */
  workers?: number;
}

/** Pulls up to `n` items ahead from an async iterator, so that producing overlaps consuming. */
export async function* prefetch<T>(source: AsyncIterable<T>, n: number): AsyncGenerator<T> {
  const it = source[Symbol.asyncIterator]();
  const queue: Array<Promise<IteratorResult<T>>> = [];
  const pull = (): void => {
    const p = it.next();
    p.catch(() => undefined); // surfaced when awaited in order
    queue.push(p);
  };
  try {
    for (let i = 0; i < Math.max(1, n); i++) pull();
    for (;;) {
      const r = await (queue.shift() as Promise<IteratorResult<T>>);
      if (r.done) return;
      pull();
      yield r.value;
    }
  } finally {
    await it.return?.();
  }
}

type Source = readonly Example[] | (() => AsyncIterable<Example>);

export class DataLoader implements AsyncIterable<Batch> {
  /** Epochs started so far; each epoch reshuffles (seed + epoch) and draws fresh augmentations. */
  epoch = 0;
  private cache: Feature[] | undefined;
  private pool: FeaturePool | undefined;
  private readonly augmenter: Augmenter | undefined;
  private readonly split: 'train' | 'validation' | 'test';

  constructor(private readonly source: Source, readonly options: LoaderOptions) {
    const o = options;
    check(o.tokenizer !== undefined, 'DataLoader: a tokenizer is required', 'tokenizer');
    check(Number.isInteger(o.batchSize) && o.batchSize > 0, `DataLoader: batchSize must be a positive integer, got ${String(o.batchSize)}`, 'batchSize');
    check(o.prefetch === undefined || (Number.isInteger(o.prefetch) && o.prefetch >= 0), 'DataLoader: prefetch must be a non-negative integer', 'prefetch');
    check(o.workers === undefined || (Number.isInteger(o.workers) && o.workers >= 0), 'DataLoader: workers must be a non-negative integer', 'workers');
    this.split = o.split ?? 'train';
    if (o.augment !== undefined) {
      check(this.split === 'train', `DataLoader: augmentation applies to training data only, not to the ${this.split} split`, 'augment');
      check(o.task === 'classification', `DataLoader: augmentation is label-preserving for classification only, not ${o.task}`, 'augment');
      this.augmenter = o.augment instanceof Augmenter ? o.augment : new Augmenter(o.augment);
    }
    if (o.task === 'causal-lm') check(Number.isInteger(o.blockSize) && (o.blockSize as number) > 1, 'DataLoader: causal-lm needs blockSize (an integer > 1)', 'blockSize');
    if (typeof source === 'function') check(o.task === 'causal-lm', 'DataLoader: streaming sources are for causal-lm; load other tasks into memory', 'source');
  }

  private get shuffle(): boolean {
    return this.options.shuffle ?? this.split === 'train';
  }

  private get padTokenId(): number {
    return this.options.tokenizer.requireTokenId('pad', 'padding a batch');
  }

  private featureOptions(): FeaturizeOptions {
    const o = this.options;
    const f: FeaturizeOptions = { task: o.task };
    if (o.maxLength !== undefined) f.maxLength = o.maxLength;
    if (o.stride !== undefined) f.stride = o.stride;
    if (o.blockSize !== undefined) f.blockSize = o.blockSize;
    if (o.labelMap) f.labels = [...o.labelMap.labels];
    if (o.seq2seq) f.seq2seq = { ...o.seq2seq };
    return f;
  }

  /** Formats a slice of examples for the task: in worker threads when `workers` is set, else here. */
  async featurize(examples: Example[]): Promise<Feature[]> {
    const workers = this.options.workers ?? 0;
    if (workers > 0 && this.options.task !== 'causal-lm') {
      this.pool ??= new FeaturePool(this.options.tokenizer, this.featureOptions(), workers);
      return this.pool.featurize(examples);
    }
    return featurizeFor(this.options.tokenizer, this.featureOptions(), examples);
  }

  /** Stops the worker threads, if any were started. */
  async close(): Promise<void> {
    const pool = this.pool;
    this.pool = undefined;
    await pool?.close();
  }

  private collateRows(rows: Feature[]): Batch {
    const o = this.options;
    return collate(rows, {
      padTokenId: this.padTokenId,
      paddingSide: o.paddingSide ?? o.tokenizer.paddingSide,
      ...(o.padToMultipleOf !== undefined ? { padToMultipleOf: o.padToMultipleOf } : {}),
    });
  }

  /** All features, formatted once and kept (no augmentation, in-memory data). */
  private async allFeatures(): Promise<Feature[]> {
    if (this.cache === undefined) {
      const all = [...(this.source as readonly Example[])];
      if (this.options.task === 'causal-lm') this.cache = await this.featurize(all); // packing runs across documents
      else {
        const parts: Example[][] = [];
        for (let i = 0; i < all.length; i += 256) parts.push(all.slice(i, i + 256));
        this.cache = (await Promise.all(parts.map((p) => this.featurize(p)))).flat();
      }
    }
    if (this.cache.length === 0) throw new NodetuneError('ERR_DATA', 'DataLoader: the dataset produced no features (is it empty, or shorter than one block?)', {});
    return this.cache;
  }

  private order(lengths: readonly number[], epochSeed: number): number[][] {
    const o = this.options;
    const base = { batchSize: o.batchSize, seed: epochSeed, dropLast: o.dropLast === true };
    if (o.groupByLength) return lengthGroupedBatches(lengths, { ...base, shuffle: this.shuffle });
    return batchIndices(lengths.length, { ...base, shuffle: this.shuffle });
  }

  private async *inMemory(epochSeed: number): AsyncGenerator<Batch> {
    const examples = this.source as readonly Example[];
    if (examples.length === 0) throw new NodetuneError('ERR_DATA', `DataLoader: the ${this.split} split has no examples`, {});
    const expands = this.options.task === 'qa' || this.options.task === 'causal-lm';
    if (this.augmenter === undefined || expands) {
      const features = await this.allFeatures();
      for (const rows of this.order(features.map((f) => f.inputIds.length), epochSeed)) {
        yield this.collateRows(rows.map((i) => features[i] as Feature));
      }
      return;
    }
    // Augmented training data: reformat each batch on the fly, ordered by the unaugmented lengths.
    const lengths = this.options.groupByLength ? (await this.allFeatures()).map((f) => f.inputIds.length) : examples.map(() => 0);
    const aug = this.augmenter;
    for (const rows of this.order(lengths, epochSeed)) {
      const batch = rows.map((i) => aug.augment(examples[i] as Example));
      yield this.collateRows(await this.featurize(batch));
    }
  }

  private async *streamed(epochSeed: number): AsyncGenerator<Batch> {
    const o = this.options;
    const rng = new Rng(epochSeed);
    const size = this.shuffle ? o.shuffleBuffer ?? 1024 : o.batchSize;
    const buffer: Feature[] = [];
    let any = false;
    const blocks = packCausalLM(o.tokenizer, (this.source as () => AsyncIterable<Example>)(), { blockSize: o.blockSize as number });
    for await (const block of blocks) {
      any = true;
      buffer.push(block);
      if (buffer.length >= size) {
        if (this.shuffle) rng.shuffle(buffer);
        while (buffer.length >= o.batchSize) yield this.collateRows(buffer.splice(0, o.batchSize));
      }
    }
    if (this.shuffle) rng.shuffle(buffer);
    while (buffer.length >= o.batchSize || (buffer.length > 0 && !o.dropLast)) yield this.collateRows(buffer.splice(0, o.batchSize));
    if (!any) throw new NodetuneError('ERR_DATA', `DataLoader: the stream produced no ${o.blockSize}-token block`, {});
  }

  /** One epoch of batches, prepared `prefetch` batches ahead. */
  batches(): AsyncGenerator<Batch> {
    const seed = (this.options.seed ?? 0) + this.epoch;
    this.epoch++;
    const gen = typeof this.source === 'function' ? this.streamed(seed) : this.inMemory(seed);
    return prefetch(gen, this.options.prefetch ?? 2);
  }

  [Symbol.asyncIterator](): AsyncIterator<Batch> {
    return this.batches();
  }
}
