/**
 * A classical baseline for text classification: multinomial naive Bayes over a bag of words with Laplace (add-alpha)
 * smoothing. A fine-tuned transformer that does not beat it has not earned its cost; the demo prints it beside its
 * results (docs/CLI.md).
 */
import { NodetuneError } from '../errors';
import { classificationMetrics } from './metrics';
import type { ClassificationMetrics } from './metrics';

/** Lowercased words: runs of letters and digits, with an inner apostrophe kept ("don't"), and runs of `$` or `!`. */
export function bagOfWords(text: string): string[] {
  return text.toLowerCase().match(/[\p{L}\p{N}]+(?:'[\p{L}]+)*|[$!]+/gu) ?? [];
}

export interface NaiveBayesOptions {
  /** Added to every word count of every class (1: Laplace smoothing). Default 1. */
  alpha?: number;
  /** Text to words (default bagOfWords). */
  tokenize?: (text: string) => string[];
}

/** Multinomial naive Bayes: log P(class) + sum over the words of log P(word | class); words unseen in training are ignored. */
export class NaiveBayes {
  readonly labels: string[];
  readonly alpha: number;
  private readonly tokenize: (text: string) => string[];
  /** Per class: log prior. */
  private readonly logPrior: number[];
  /** Per word of the vocabulary: log P(word | class) per class. */
  private readonly logLikelihood = new Map<string, number[]>();

  private constructor(labels: string[], alpha: number, tokenize: (text: string) => string[], logPrior: number[]) {
    this.labels = labels;
    this.alpha = alpha;
    this.tokenize = tokenize;
    this.logPrior = logPrior;
  }

  /** Fits on texts and their labels (classes in order of first appearance). */
  static fit(texts: readonly string[], labels: readonly string[], o: NaiveBayesOptions = {}): NaiveBayes {
    if (texts.length !== labels.length) throw new NodetuneError('ERR_ARGUMENT', `NaiveBayes.fit(): ${texts.length} texts but ${labels.length} labels`, { field: 'labels' });
    if (texts.length === 0) throw new NodetuneError('ERR_ARGUMENT', 'NaiveBayes.fit(): no training texts', { field: 'texts' });
    const alpha = o.alpha ?? 1;
    if (!(alpha > 0) || !Number.isFinite(alpha)) throw new NodetuneError('ERR_ARGUMENT', `NaiveBayes.fit(): alpha must be a positive number, got ${alpha}`, { field: 'alpha' });
    const tokenize = o.tokenize ?? bagOfWords;
    const classes = [...new Set(labels)];
    const id = new Map(classes.map((c, i) => [c, i]));
    const docs = new Array<number>(classes.length).fill(0);
    const totals = new Array<number>(classes.length).fill(0);
    const counts = new Map<string, number[]>();
    texts.forEach((text, i) => {
      const c = id.get(labels[i]!)!;
      docs[c]! += 1;
      for (const w of tokenize(text)) {
        let row = counts.get(w);
        if (!row) counts.set(w, (row = new Array<number>(classes.length).fill(0)));
        row[c]! += 1;
        totals[c]! += 1;
      }
    });
    const model = new NaiveBayes(classes, alpha, tokenize, docs.map((d) => Math.log(d / texts.length)));
    const denominators = totals.map((t) => Math.log(t + alpha * counts.size));
    for (const [w, row] of counts) model.logLikelihood.set(w, row.map((n, c) => Math.log(n + alpha) - denominators[c]!));
    return model;
  }

  /** Words seen in training. */
  get vocabularySize(): number {
    return this.logLikelihood.size;
  }

  /** Per class, log P(class) + sum of log P(word | class) (an unnormalised log posterior). */
  scores(text: string): number[] {
    const s = [...this.logPrior];
    for (const w of this.tokenize(text)) {
      const row = this.logLikelihood.get(w);
      if (row) for (let c = 0; c < s.length; c++) s[c]! += row[c]!;
    }
    return s;
  }

  /** The most likely label (the first class on ties). */
  predict(text: string): string {
    const s = this.scores(text);
    let best = 0;
    for (let c = 1; c < s.length; c++) if (s[c]! > s[best]!) best = c;
    return this.labels[best]!;
  }

  /** Accuracy, macro-F1 and the rest over labelled texts; a label unseen in training counts as a miss. */
  evaluate(texts: readonly string[], labels: readonly string[]): ClassificationMetrics {
    if (texts.length !== labels.length) throw new NodetuneError('ERR_ARGUMENT', `NaiveBayes.evaluate(): ${texts.length} texts but ${labels.length} labels`, { field: 'labels' });
    const classes = [...this.labels, ...new Set(labels.filter((l) => !this.labels.includes(l)))];
    const id = new Map(classes.map((c, i) => [c, i]));
    return classificationMetrics(texts.map((t) => id.get(this.predict(t))!), labels.map((l) => id.get(l)!), classes.length);
  }
}
