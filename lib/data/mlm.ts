/**
 * Masked language modelling (transformers' DataCollatorForLanguageModeling semantics): each non-special, non-padding
 * token is chosen with probability `mlmProbability`; of the chosen ones 80% become the mask token, 10% a random token
 * of the vocabulary and 10% stay as they are; labels are the original ids at chosen positions and -100 elsewhere.
 * Seeded (lib/data/random.ts), so a (seed, epoch, batch) gives the same mask on every run and on resume, and a new
 * epoch draws a new mask (dynamic masking).
 */
import { NodetuneError, check } from '../errors';
import { IGNORE_INDEX } from './batch';
import type { Batch, Feature } from './batch';
import { collate } from './collate';
import { Rng } from './random';

export interface MlmOptions {
  /** Probability that a token (with wholeWordMasking: a word) is chosen; in (0, 1). Default 0.15. */
  mlmProbability?: number;
  /** Share of the chosen tokens replaced by the mask token (default 0.8). */
  maskReplaceProb?: number;
  /** Share of the chosen tokens replaced by a random token (default 0.1); the rest keep their id. */
  randomReplaceProb?: number;
  /** Choose whole words: every sub-token of a chosen word is a target (80/10/10 then applies per token). */
  wholeWordMasking?: boolean;
}

/** What the collator needs of a vocabulary (MlmCollator.fromTokenizer reads it from a tokenizer). */
export interface MlmVocab {
  maskTokenId: number;
  /** Random replacements are drawn from [0, vocabSize). */
  vocabSize: number;
  /** Ids never chosen ([CLS], [SEP], [PAD], <s>, </s>, ...). Padding (attention mask 0) is never chosen either. */
  specialTokenIds: Iterable<number>;
  /** Whole-word masking for rows without word ids: whether a token continues the previous word (WordPiece `##x`). */
  isContinuation?: (id: number) => boolean;
}

/** A feature with the word each token belongs to (null for special tokens), for whole-word masking. */
export interface MlmFeature extends Feature {
  wordIds?: Array<number | null>;
}

/** The tokenizer methods MlmCollator.fromTokenizer and tokenizeForMlm use (lib/tokenizers' PreTrainedTokenizer has them). */
export interface MlmTokenizer {
  readonly maskTokenId: number | undefined;
  readonly vocabSize: number;
  readonly specialTokenIds: ReadonlySet<number>;
  idToToken(id: number): string | undefined;
  encodeBatch(texts: string[]): Promise<Array<{ ids: number[]; attentionMask: number[]; tokenTypeIds: number[]; wordIds: Array<number | null> }>>;
}

export type ResolvedMlmOptions = Required<MlmOptions>;

/** Checks MLM options (a typed ERR_ARGUMENT naming the field) and fills in the defaults. */
export function resolveMlmOptions(o: MlmOptions = {}): ResolvedMlmOptions {
  check(o !== null && typeof o === 'object', 'MLM options must be an object', 'mlm');
  const p = o.mlmProbability ?? 0.15;
  check(typeof p === 'number' && p > 0 && p < 1, `mlmProbability must be a number in (0, 1), got ${JSON.stringify(o.mlmProbability)}`, 'mlmProbability');
  const mask = o.maskReplaceProb ?? 0.8;
  const random = o.randomReplaceProb ?? 0.1;
  check(typeof mask === 'number' && mask >= 0 && mask <= 1, `maskReplaceProb must be a number in [0, 1], got ${JSON.stringify(o.maskReplaceProb)}`, 'maskReplaceProb');
  check(typeof random === 'number' && random >= 0 && mask + random <= 1, `randomReplaceProb must be a number in [0, 1 - maskReplaceProb], got ${JSON.stringify(o.randomReplaceProb)}`, 'randomReplaceProb');
  check(o.wholeWordMasking === undefined || typeof o.wholeWordMasking === 'boolean', 'wholeWordMasking must be true or false', 'wholeWordMasking');
  return { mlmProbability: p, maskReplaceProb: mask, randomReplaceProb: random, wholeWordMasking: o.wholeWordMasking === true };
}

/** A mixed seed for batch `index` of epoch `epoch` (a fresh, reproducible mask per epoch and batch). */
export function mlmSeed(seed: number, epoch: number, index: number): number {
  return (Math.imul(seed ^ 0x5bd1e995, 0x27d4eb2d) + Math.imul(epoch + 1, 0x165667b1) + Math.imul(index + 1, 0x9e3779b1)) >>> 0;
}

export class MlmCollator {
  readonly options: ResolvedMlmOptions;
  private readonly special: Set<number>;

  constructor(readonly vocab: MlmVocab, options: MlmOptions = {}) {
    this.options = resolveMlmOptions(options);
    check(vocab !== null && typeof vocab === 'object', 'MlmCollator: vocab must be an object', 'vocab');
    check(Number.isSafeInteger(vocab.vocabSize) && vocab.vocabSize > 0, `MlmCollator: vocabSize must be a positive integer, got ${vocab.vocabSize}`, 'vocabSize');
    check(Number.isSafeInteger(vocab.maskTokenId) && vocab.maskTokenId >= 0 && vocab.maskTokenId < vocab.vocabSize,
      `MlmCollator: maskTokenId must be an id in [0, ${vocab.vocabSize}), got ${vocab.maskTokenId}`, 'maskTokenId');
    this.special = new Set(vocab.specialTokenIds);
  }

  /** From a tokenizer: its mask token, vocabulary size, special ids, and WordPiece `##` continuation. */
  static fromTokenizer(tok: MlmTokenizer, options: MlmOptions = {}): MlmCollator {
    const mask = tok.maskTokenId;
    if (mask === undefined)
      throw new NodetuneError('ERR_CONFIG', 'masked language modelling needs a mask token; the tokenizer has none (tokenizer_config.json mask_token)', { field: 'mask_token' });
    const cache = new Map<number, boolean>();
    const isContinuation = (id: number): boolean => {
      let v = cache.get(id);
      if (v === undefined) cache.set(id, (v = (tok.idToToken(id) ?? '').startsWith('##')));
      return v;
    };
    return new MlmCollator({ maskTokenId: mask, vocabSize: tok.vocabSize, specialTokenIds: tok.specialTokenIds, isContinuation }, options);
  }

  /** Whether a token may be chosen. */
  private candidate(id: number, attention: number): boolean {
    return attention !== 0 && !this.special.has(id);
  }

  /**
   * Masks a collated batch (right- or left-padded): a new batch with the masked inputIds and the labels. `wordIds[r]`
   * (aligned with row r's real tokens) groups tokens into words for whole-word masking; without it, WordPiece `##`
   * continuation (vocab.isContinuation) does; without either, whole-word masking is an error.
   */
  mask(batch: Batch, rng: Rng | number, wordIds?: Array<Array<number | null> | undefined>): Batch {
    const r = typeof rng === 'number' ? new Rng(rng) : rng;
    const [rows, len] = batch.shape;
    const o = this.options;
    const inputIds = Int32Array.from(batch.inputIds);
    const labels = new Int32Array(rows * len).fill(IGNORE_INDEX);
    const chosen = new Uint8Array(rows * len);
    for (let row = 0; row < rows; row++) {
      const base = row * len;
      if (!o.wholeWordMasking) {
        for (let t = 0; t < len; t++)
          if (this.candidate(batch.inputIds[base + t]!, batch.attentionMask[base + t]!) && r.next() < o.mlmProbability) chosen[base + t] = 1;
        continue;
      }
      const words = this.words(batch, row, wordIds?.[row]);
      for (const w of words) if (r.next() < o.mlmProbability) for (const t of w) chosen[base + t] = 1;
    }
    for (let i = 0; i < rows * len; i++) {
      if (!chosen[i]) continue;
      labels[i] = batch.inputIds[i]!;
      const u = r.next();
      if (u < o.maskReplaceProb) inputIds[i] = this.vocab.maskTokenId;
      else if (u < o.maskReplaceProb + o.randomReplaceProb) inputIds[i] = r.int(this.vocab.vocabSize);
    }
    const out: Batch = { ...batch, inputIds, labels };
    delete out.startPositions;
    delete out.endPositions;
    return out;
  }

  /** Token positions of each word of a row (special and padding positions belong to none). */
  private words(batch: Batch, row: number, ids: Array<number | null> | undefined): number[][] {
    const len = batch.shape[1];
    const base = row * len;
    const positions: number[] = [];
    for (let t = 0; t < len; t++) if (this.candidate(batch.inputIds[base + t]!, batch.attentionMask[base + t]!)) positions.push(t);
    const words: number[][] = [];
    if (ids !== undefined) {
      // word ids are aligned with the row's real tokens, which start after any left padding
      let first = 0;
      while (first < len && batch.attentionMask[base + first] === 0) first++;
      let last: number | null = null;
      for (const t of positions) {
        const w = ids[t - first];
        if (w === undefined || w === null) {
          words.push([t]);
          last = null;
        } else if (w === last && words.length > 0) words[words.length - 1]!.push(t);
        else words.push([t]), (last = w);
      }
      return words;
    }
    const cont = this.vocab.isContinuation;
    if (!cont) throw new NodetuneError('ERR_ARGUMENT', 'wholeWordMasking: rows need wordIds, or the vocabulary an isContinuation test (WordPiece ##)', { field: 'wholeWordMasking' });
    let prev = -2;
    for (const t of positions) {
      if (t === prev + 1 && words.length > 0 && cont(batch.inputIds[base + t]!)) words[words.length - 1]!.push(t);
      else words.push([t]);
      prev = t;
    }
    return words;
  }

  /** Pads features into a batch (right padding, `padTokenId`) and masks it; labels the features carry are replaced. */
  collate(features: MlmFeature[], rng: Rng | number, opts: { padTokenId: number; padToMultipleOf?: number }): Batch {
    const plain: Feature[] = features.map((f) => {
      const g: Feature = { inputIds: f.inputIds };
      if (f.attentionMask) g.attentionMask = f.attentionMask;
      if (f.tokenTypeIds) g.tokenTypeIds = f.tokenTypeIds;
      if (f.source) g.source = f.source;
      return g;
    });
    const batch = collate(plain, { padTokenId: opts.padTokenId, ...(opts.padToMultipleOf !== undefined ? { padToMultipleOf: opts.padToMultipleOf } : {}) });
    const wordIds = this.options.wholeWordMasking && features.some((f) => f.wordIds) ? features.map((f) => f.wordIds) : undefined;
    return this.mask(batch, rng, wordIds);
  }
}

/** Texts → features for MLM (special tokens added, cut to maxLength, word ids kept for whole-word masking). */
export async function tokenizeForMlm(tok: MlmTokenizer, texts: string[], opts: { maxLength: number }): Promise<MlmFeature[]> {
  check(Array.isArray(texts), 'tokenizeForMlm: texts must be an array of strings', 'texts');
  check(Number.isInteger(opts.maxLength) && opts.maxLength > 2, `maxLength must be an integer > 2, got ${opts.maxLength}`, 'maxLength');
  texts.forEach((t, i) => check(typeof t === 'string', `texts[${i}] must be a string, got ${typeof t}`, `texts[${i}]`));
  const out: MlmFeature[] = [];
  const per = 256;
  for (let s = 0; s < texts.length; s += per) {
    const encs = await tok.encodeBatch(texts.slice(s, s + per));
    for (const e of encs) {
      let ids = e.ids, mask = e.attentionMask, types = e.tokenTypeIds, words = e.wordIds;
      if (ids.length > opts.maxLength) {
        // keep the final special token ([SEP], </s>) when cutting
        const keepLast = words[words.length - 1] === null ? 1 : 0;
        const cut = (a: number[] | Array<number | null>) => [...a.slice(0, opts.maxLength - keepLast), ...a.slice(a.length - keepLast)];
        ids = cut(ids) as number[];
        mask = cut(mask) as number[];
        types = cut(types) as number[];
        words = cut(words);
      }
      out.push({ inputIds: ids, attentionMask: mask, tokenTypeIds: types, wordIds: words });
    }
  }
  return out;
}
