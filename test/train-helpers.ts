/** Shared helpers of the trainer tests (test/4*.train-*.test.ts): tiny batches for the fixture models. */
import type { Batch, Feature } from '../lib/data/batch';
import { Rng } from '../lib/data/random';
import type { Model } from '../lib/models';

/** A right-padded causal-LM batch: `lengths[r]` real tokens in row r, padded to `len`; labels = ids (-100 on padding). */
export function lmBatch(rng: Rng, vocab: number, lengths: number[], len: number): Batch {
  const n = lengths.length;
  const inputIds = new Int32Array(n * len), attentionMask = new Int32Array(n * len), labels = new Int32Array(n * len).fill(-100);
  lengths.forEach((k, r) => {
    for (let t = 0; t < k; t++) {
      const id = 1 + rng.int(vocab - 1);
      inputIds[r * len + t] = id;
      attentionMask[r * len + t] = 1;
      labels[r * len + t] = id;
    }
  });
  return { inputIds, attentionMask, labels, shape: [n, len] };
}

/** `count` causal-LM batches of 2 rows with varying lengths. */
export function lmBatches(seed: number, count: number, vocab = 48): Batch[] {
  const rng = new Rng(seed);
  return Array.from({ length: count }, (_, i) => lmBatch(rng, vocab, [4 + (i % 3), 6], 6 + (i % 2)));
}

/** Classification features: the label is (first token) mod 3, so there is something to learn. */
export function clsFeatures(seed: number, count: number, vocab = 32): Feature[] {
  const rng = new Rng(seed);
  return Array.from({ length: count }, () => {
    const len = 3 + rng.int(4);
    const inputIds = Array.from({ length: len }, () => 1 + rng.int(vocab - 1));
    return { inputIds, label: inputIds[0]! % 3 };
  });
}

export function snapshot(model: Model): Map<string, Float32Array> {
  return new Map(model.parameters().map((p) => [p.name, Float32Array.from(model.getParameter(p.name).data() as Float32Array)]));
}

export function maxDiff(a: Map<string, Float32Array>, b: Map<string, Float32Array>): number {
  let m = 0;
  for (const [k, x] of a) {
    const y = b.get(k)!;
    for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i]! - y[i]!));
  }
  return m;
}
