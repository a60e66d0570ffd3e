/**
 * Leakage between the training data and the held-out splits: validation/test rows whose text is also in train
 * exactly, after normalisation (NFKC, case, punctuation, spacing), or nearly (MinHash over word shingles, LSH bands,
 * confirmed by exact Jaccard similarity). The report holds counts and row locations, never the texts.
 */
import { createHash } from 'crypto';
import { check } from '../errors';
import { normalizedKey } from './clean';
import type { Example, Source } from './example';
import { LshIndex, MinHasher, jaccard, lshBands } from './minhash';

export interface LeakageOptions {
  /** Look for near-duplicates too (MinHash); default true. */
  nearDuplicates?: boolean;
  /** Jaccard similarity of word shingles from which two texts are near-duplicates; default 0.8. */
  threshold?: number;
  numPermutations?: number;
  shingleSize?: number;
  /** How many leaked pairs the report lists with their locations; default 20. */
  maxPairs?: number;
}

export type LeakKind = 'exact' | 'normalized' | 'near';
export type HeldOutSplit = 'validation' | 'test';

/** Where a row is: its file and line when read from a file, else its 1-based row number in the split. */
export type RowLocation = Source | { row: number };

export interface LeakPair {
  split: HeldOutSplit;
  kind: LeakKind;
  /** Jaccard similarity of the word shingles (1 for exact and normalised matches). */
  similarity: number;
  heldOut: RowLocation;
  train: RowLocation;
}

export interface SplitLeakage {
  rows: number;
  /** Rows with any match in train, and by their closest kind of match. */
  leaked: number;
  exact: number;
  normalized: number;
  near: number;
}

export interface LeakageReport {
  trainRows: number;
  threshold: number | null;
  splits: Partial<Record<HeldOutSplit, SplitLeakage>>;
  /** 0-based indices of the training rows that match some held-out row (what `drop` removes). */
  leakedTrainRows: number[];
  /** The first `maxPairs` matches. */
  pairs: LeakPair[];
}

/** The text a model sees of an example: every text field, the QA context, chat contents, words. */
export function exampleText(ex: Example): string {
  const parts: string[] = [];
  for (const v of [ex.text, ex.textPair, ex.prompt, ex.completion, ex.question, ex.context]) if (typeof v === 'string') parts.push(v);
  ex.messages?.forEach((m) => parts.push(m.content));
  if (ex.tokens) parts.push(ex.tokens.join(' '));
  return parts.join('\n');
}

const digest = (s: string): string => createHash('sha1').update(s).digest('base64').slice(0, 16);
const locate = (ex: Example, i: number): RowLocation => (ex.source ? { ...ex.source } : { row: i + 1 });

function indexBy(keys: string[]): Map<string, number[]> {
  const m = new Map<string, number[]>();
  keys.forEach((k, i) => {
    const ids = m.get(k);
    if (ids) ids.push(i);
    else m.set(k, [i]);
  });
  return m;
}

function validate(o: LeakageOptions): void {
  check(o.threshold === undefined || (typeof o.threshold === 'number' && o.threshold > 0 && o.threshold <= 1),
    `leakage: threshold must be a number in (0, 1], got ${String(o.threshold)}`, 'threshold');
  check(o.maxPairs === undefined || (Number.isInteger(o.maxPairs) && o.maxPairs >= 0), `leakage: maxPairs must be a non-negative integer, got ${String(o.maxPairs)}`, 'maxPairs');
}

/** Compares each validation/test row with the training rows. */
export function findLeakage(splits: { train: readonly Example[]; validation?: readonly Example[] | null; test?: readonly Example[] | null },
  opts: LeakageOptions = {}): LeakageReport {
  validate(opts);
  const near = opts.nearDuplicates !== false;
  const threshold = opts.threshold ?? 0.8;
  const maxPairs = opts.maxPairs ?? 20;
  const texts = splits.train.map(exampleText);
  const exact = indexBy(texts.map(digest));
  const normalized = indexBy(texts.map((t) => digest(normalizedKey(t))));
  const hasher = near ? new MinHasher({ ...(opts.numPermutations ? { numPermutations: opts.numPermutations } : {}), ...(opts.shingleSize ? { shingleSize: opts.shingleSize } : {}) }) : null;
  const shingles = hasher ? texts.map((t) => hasher.shingles(t)) : [];
  const { bands, rows } = lshBands(hasher?.numPermutations ?? 1, threshold);
  const lsh = new LshIndex(bands, rows);
  if (hasher) shingles.forEach((s, i) => { if (s.length > 0) lsh.add(i, hasher.signature(s)); });

  const report: LeakageReport = { trainRows: texts.length, threshold: near ? threshold : null, splits: {}, leakedTrainRows: [], pairs: [] };
  const leakedTrain = new Set<number>();
  for (const split of ['validation', 'test'] as const) {
    const held = splits[split];
    if (!held) continue;
    const s: SplitLeakage = { rows: held.length, leaked: 0, exact: 0, normalized: 0, near: 0 };
    held.forEach((ex, i) => {
      const text = exampleText(ex);
      const matches = new Map<number, { kind: LeakKind; similarity: number }>();
      exact.get(digest(text))?.forEach((t) => matches.set(t, { kind: 'exact', similarity: 1 }));
      normalized.get(digest(normalizedKey(text)))?.forEach((t) => { if (!matches.has(t)) matches.set(t, { kind: 'normalized', similarity: 1 }); });
      const sh = hasher?.shingles(text);
      if (hasher && sh && sh.length > 0)
        for (const t of lsh.candidates(hasher.signature(sh))) {
          if (matches.has(t)) continue;
          const similarity = jaccard(sh, shingles[t]!);
          if (similarity >= threshold) matches.set(t, { kind: 'near', similarity });
        }
      if (matches.size === 0) return;
      s.leaked++;
      const kinds = [...matches.values()].map((m) => m.kind);
      s[kinds.includes('exact') ? 'exact' : kinds.includes('normalized') ? 'normalized' : 'near']++;
      for (const [t, m] of [...matches].sort((a, b) => a[0] - b[0])) {
        leakedTrain.add(t);
        if (report.pairs.length < maxPairs)
          report.pairs.push({ split, kind: m.kind, similarity: m.similarity, heldOut: locate(ex, i), train: locate(splits.train[t]!, t) });
      }
    });
    report.splits[split] = s;
  }
  report.leakedTrainRows = [...leakedTrain].sort((a, b) => a - b);
  return report;
}

/** The training rows that match no held-out row. */
export function dropLeaked<T extends Example>(train: readonly T[], report: LeakageReport): T[] {
  const leaked = new Set(report.leakedTrainRows);
  return train.filter((_, i) => !leaked.has(i));
}

/** One line: "leakage: validation 2 of 50 rows in train (exact 1, normalized 0, near-duplicate 1); 3 train rows". */
export function describeLeakage(r: LeakageReport): string {
  const parts = (['validation', 'test'] as const).filter((k) => r.splits[k]).map((k) => {
    const s = r.splits[k]!;
    return `${k} ${s.leaked} of ${s.rows} rows in train (exact ${s.exact}, normalized ${s.normalized}, near-duplicate ${s.near})`;
  });
  const near = r.threshold === null ? 'near-duplicates not checked' : `near-duplicate: Jaccard >= ${r.threshold}`;
  return `leakage: ${parts.join('; ')}; ${r.leakedTrainRows.length} of ${r.trainRows} train rows involved (${near})`;
}
