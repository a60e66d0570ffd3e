/**
 * MinHash over word shingles, and locality-sensitive hashing by bands: near-duplicate candidates in about linear
 * time, each then confirmed by the exact Jaccard similarity of the two shingle sets.
 */
import { check } from '../errors';
import { Rng } from './random';

export interface MinHashOptions {
  /** Hash functions per signature; default 128. */
  numPermutations?: number;
  /** Words per shingle; default 3 (a text with fewer words is one shingle). */
  shingleSize?: number;
  seed?: number;
}

/** FNV-1a over UTF-16 code units. */
function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** MurmurHash3's finaliser: a bijection on 32-bit integers that spreads every input bit. */
function fmix32(x: number): number {
  let h = x >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/** Lower-cased NFKC words (letters and digits). */
export function words(text: string): string[] {
  return text.normalize('NFKC').toLowerCase().split(/[^\p{L}\p{N}]+/u).filter((w) => w.length > 0);
}

export class MinHasher {
  readonly numPermutations: number;
  readonly shingleSize: number;
  private readonly seeds: Uint32Array;

  constructor(opts: MinHashOptions = {}) {
    this.numPermutations = opts.numPermutations ?? 128;
    this.shingleSize = opts.shingleSize ?? 3;
    check(Number.isInteger(this.numPermutations) && this.numPermutations >= 16 && this.numPermutations <= 1024,
      `minhash: numPermutations must be an integer in [16, 1024], got ${String(opts.numPermutations)}`, 'numPermutations');
    check(Number.isInteger(this.shingleSize) && this.shingleSize >= 1 && this.shingleSize <= 16,
      `minhash: shingleSize must be an integer in [1, 16], got ${String(opts.shingleSize)}`, 'shingleSize');
    const rng = new Rng(opts.seed ?? 1);
    this.seeds = Uint32Array.from({ length: this.numPermutations }, () => Math.floor(rng.next() * 4294967296));
  }

  /** The sorted, distinct hashes of the text's word shingles (empty for a text without words). */
  shingles(text: string): Uint32Array {
    const w = words(text);
    if (w.length === 0) return new Uint32Array(0);
    const k = Math.min(this.shingleSize, w.length);
    const set = new Set<number>();
    for (let i = 0; i + k <= w.length; i++) set.add(fnv1a(w.slice(i, i + k).join(' ')));
    return Uint32Array.from(set).sort();
  }

  /** For each hash function, the least hash of a shingle under it. */
  signature(shingles: Uint32Array): Uint32Array {
    const sig = new Uint32Array(this.numPermutations).fill(0xffffffff);
    for (const s of shingles)
      for (let i = 0; i < sig.length; i++) {
        const h = fmix32(s ^ this.seeds[i]!);
        if (h < sig[i]!) sig[i] = h;
      }
    return sig;
  }
}

/** Jaccard similarity of two sorted sets of distinct hashes. */
export function jaccard(a: Uint32Array, b: Uint32Array): number {
  if (a.length === 0 && b.length === 0) return 1;
  let i = 0;
  let j = 0;
  let both = 0;
  while (i < a.length && j < b.length) {
    if (a[i] === b[j]) { both++; i++; j++; } else if (a[i]! < b[j]!) i++; else j++;
  }
  return both / (a.length + b.length - both);
}

/**
 * Rows per band (and bands = numPermutations / rows): the most rows for which a pair at the threshold still becomes
 * a candidate with probability 0.99 or more, so few pairs below it need the exact check.
 */
export function lshBands(numPermutations: number, threshold: number): { bands: number; rows: number } {
  let best = { bands: numPermutations, rows: 1 };
  for (let rows = 1; rows <= numPermutations; rows++) {
    const bands = Math.floor(numPermutations / rows);
    if (1 - (1 - threshold ** rows) ** bands >= 0.99) best = { bands, rows };
  }
  return best;
}

/** Signatures stored by band: rows whose signatures agree on every hash of some band are candidates. */
export class LshIndex {
  private readonly buckets: Array<Map<number, number[]>>;

  constructor(readonly bands: number, readonly rows: number) {
    this.buckets = Array.from({ length: bands }, () => new Map<number, number[]>());
  }

  /** A band's hashes folded into one number (a collision only adds a candidate, which the exact check removes). */
  private key(sig: Uint32Array, band: number): number {
    let h = band;
    for (let i = band * this.rows; i < (band + 1) * this.rows; i++) h = fmix32(Math.imul(h, 31) ^ sig[i]!);
    return h;
  }

  add(id: number, sig: Uint32Array): void {
    this.buckets.forEach((bucket, b) => {
      const k = this.key(sig, b);
      const ids = bucket.get(k);
      if (ids) ids.push(id);
      else bucket.set(k, [id]);
    });
  }

  candidates(sig: Uint32Array): Set<number> {
    const out = new Set<number>();
    this.buckets.forEach((bucket, b) => bucket.get(this.key(sig, b))?.forEach((id) => out.add(id)));
    return out;
  }
}
