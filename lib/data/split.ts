/** Train/validation/test splits: by ratios with a seed (stratified by label for classification), or from files. */
import { check } from '../errors';
import type { Example } from './example';
import { Rng } from './random';
import { readAll } from './read';
import type { ReadOptions } from './read';

export interface SplitOptions {
  /** Fractions that sum to 1, e.g. { train: 0.8, validation: 0.1, test: 0.1 }. */
  ratios: { train: number; validation?: number; test?: number };
  seed?: number;
  /** Keep each label's share the same in every split. */
  stratify?: boolean;
}

export interface Splits<T> {
  train: T[];
  validation: T[];
  test: T[];
}

/** Counts per split for n items: largest-remainder rounding so they add up to n. */
function allocate(n: number, fractions: number[]): number[] {
  const raw = fractions.map((f) => f * n);
  const out = raw.map(Math.floor);
  let left = n - out.reduce((a, b) => a + b, 0);
  const order = raw.map((r, i) => [r - Math.floor(r), i] as const).sort((a, b) => b[0] - a[0]);
  for (let k = 0; left > 0; k = (k + 1) % order.length, left--) out[(order[k] as readonly [number, number])[1]]! += 1;
  return out;
}

export function splitExamples<T extends Example>(examples: readonly T[], opts: SplitOptions): Splits<T> {
  const { train, validation = 0, test = 0 } = opts.ratios ?? ({} as SplitOptions['ratios']);
  const fr = [train, validation, test];
  check(fr.every((f) => typeof f === 'number' && f >= 0 && f <= 1), 'split: ratios must be numbers in [0, 1]', 'ratios');
  check(Math.abs(fr.reduce((a, b) => a + b, 0) - 1) < 1e-6, `split: ratios must sum to 1, got ${fr.join(' + ')}`, 'ratios');
  const rng = new Rng(opts.seed ?? 42);
  const out: Splits<T> = { train: [], validation: [], test: [] };
  const groups = new Map<string, T[]>();
  if (opts.stratify) {
    for (const ex of examples) {
      check(ex.label !== undefined, 'split: stratify needs a label on every example', 'stratify');
      const key = String(ex.label);
      let g = groups.get(key);
      if (!g) groups.set(key, (g = []));
      g.push(ex);
    }
  } else {
    groups.set('', [...examples]);
  }
  for (const key of [...groups.keys()].sort()) {
    const g = rng.shuffle(groups.get(key) as T[]);
    const [nTrain, nVal] = allocate(g.length, fr) as [number, number, number];
    out.train.push(...g.slice(0, nTrain));
    out.validation.push(...g.slice(nTrain, nTrain + nVal));
    out.test.push(...g.slice(nTrain + nVal));
  }
  if (opts.stratify) { rng.shuffle(out.train); rng.shuffle(out.validation); rng.shuffle(out.test); }
  return out;
}

/** Splits given as separate files; missing ones are empty. */
export async function readSplits(files: { train: string; validation?: string; test?: string }, opts: ReadOptions = {}): Promise<Splits<Example>> {
  check(typeof files?.train === 'string', 'readSplits: a train file is required', 'train');
  return {
    train: await readAll(files.train, opts),
    validation: files.validation ? await readAll(files.validation, opts) : [],
    test: files.test ? await readAll(files.test, opts) : [],
  };
}
