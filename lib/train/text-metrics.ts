/**
 * Text-generation metrics, written to give the numbers of the reference tools:
 * ROUGE-L as Google's rouge-score computes it (its tokenizer: lower-case, every run of characters other than
 * [a-z0-9] is a space; F-measure of the LCS; no stemming), corpus BLEU as sacrebleu's corpus_bleu with its defaults
 * (13a tokenization, 4-grams, brevity penalty against the closest reference length, 'exp' smoothing), and SQuAD's
 * exact match and token F1 (qaMetrics in metrics.ts).
 */
import { NodetuneError } from '../errors';
import { qaMetrics } from './metrics';

/** rouge-score's tokenizer (without stemming). */
export function rougeTokens(text: string): string[] {
  return text.toLowerCase().replace(/[^a-z0-9]+/g, ' ').split(/\s+/).filter((t) => /^[a-z0-9]+$/.test(t));
}

function lcsLength(a: string[], b: string[]): number {
  let prev = new Array<number>(b.length + 1).fill(0);
  let cur = new Array<number>(b.length + 1).fill(0);
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) cur[j] = a[i - 1] === b[j - 1] ? prev[j - 1]! + 1 : Math.max(prev[j]!, cur[j - 1]!);
    [prev, cur] = [cur, prev];
  }
  return prev[b.length]!;
}

export interface Prf { precision: number; recall: number; fmeasure: number }

/** ROUGE-L of one prediction against one target (rouge-score's `_score_lcs`). */
export function rougeL(target: string, prediction: string): Prf {
  const t = rougeTokens(target);
  const p = rougeTokens(prediction);
  if (t.length === 0 || p.length === 0) return { precision: 0, recall: 0, fmeasure: 0 };
  const lcs = lcsLength(t, p);
  const precision = lcs / p.length;
  const recall = lcs / t.length;
  return { precision, recall, fmeasure: precision + recall > 0 ? (2 * precision * recall) / (precision + recall) : 0 };
}

/** ROUGE-N of one prediction against one target (rouge-score's n-gram overlap). */
export function rougeN(target: string, prediction: string, n: number): Prf {
  const grams = (toks: string[]): Map<string, number> => {
    const m = new Map<string, number>();
    for (let i = 0; i + n <= toks.length; i++) { const g = toks.slice(i, i + n).join(' '); m.set(g, (m.get(g) ?? 0) + 1); }
    return m;
  };
  const t = grams(rougeTokens(target));
  const p = grams(rougeTokens(prediction));
  let common = 0, tn = 0, pn = 0;
  for (const [g, c] of t) (common += Math.min(c, p.get(g) ?? 0)), (tn += c);
  for (const c of p.values()) pn += c;
  const precision = common / Math.max(pn, 1);
  const recall = common / Math.max(tn, 1);
  return { precision, recall, fmeasure: precision + recall > 0 ? (2 * precision * recall) / (precision + recall) : 0 };
}

/** sacrebleu's 13a tokenizer (mteval-v13a): a few XML entities unescaped, punctuation split off, digits' . , and - kept together. */
export function tokenize13a(line: string): string {
  let s = line.replace(/<skipped>/g, '').replace(/-\n/g, '').replace(/\n/g, ' ');
  if (s.includes('&')) s = s.replace(/&quot;/g, '"').replace(/&amp;/g, '&').replace(/&lt;/g, '<').replace(/&gt;/g, '>');
  s = ` ${s} `;
  s = s.replace(/([{-~[-` -&(-+:-@\/])/g, ' $1 ');
  s = s.replace(/([^0-9])([.,])/g, '$1 $2 ');
  s = s.replace(/([.,])([^0-9])/g, ' $1 $2');
  s = s.replace(/([0-9])(-)/g, '$1 $2 ');
  return s.split(/\s+/).filter((t) => t.length > 0).join(' ');
}

export interface BleuScore {
  /** 0-100, as sacrebleu reports it. */
  score: number;
  counts: number[];
  totals: number[];
  precisions: number[];
  bp: number;
  sysLen: number;
  refLen: number;
}

function ngramCounts(tokens: string[], maxOrder: number): Map<string, number> {
  const m = new Map<string, number>();
  for (let n = 1; n <= maxOrder; n++)
    for (let i = 0; i + n <= tokens.length; i++) { const g = `${n}\u0000${tokens.slice(i, i + n).join(' ')}`; m.set(g, (m.get(g) ?? 0) + 1); }
  return m;
}

/**
 * Corpus BLEU as sacrebleu's `corpus_bleu(hypotheses, references)` with its defaults. `references[i]` holds the
 * references of hypothesis i (one string or several). `tokenize: 'none'` splits on whitespace only.
 */
export function corpusBleu(hypotheses: string[], references: (string | string[])[], opts: { tokenize?: '13a' | 'none'; lowercase?: boolean; smooth?: 'exp' | 'none'; maxOrder?: number } = {}): BleuScore {
  if (hypotheses.length !== references.length)
    throw new NodetuneError('ERR_ARGUMENT', `corpusBleu(): ${hypotheses.length} hypotheses but ${references.length} reference sets`, { field: 'references' });
  const maxOrder = opts.maxOrder ?? 4;
  const prep = (s: string): string[] => {
    let t = s.replace(/\s+$/, '');
    if (opts.lowercase) t = t.toLowerCase();
    if (opts.tokenize !== 'none') t = tokenize13a(t);
    return t.split(/\s+/).filter((x) => x.length > 0);
  };
  const correct = new Array<number>(maxOrder).fill(0);
  const total = new Array<number>(maxOrder).fill(0);
  let sysLen = 0, refLen = 0;
  hypotheses.forEach((h, i) => {
    const refs = ([] as string[]).concat(references[i]!).map(prep);
    if (refs.length === 0) throw new NodetuneError('ERR_ARGUMENT', `corpusBleu(): hypothesis ${i} has no reference`, { field: 'references' });
    const refGrams = new Map<string, number>();
    for (const r of refs) for (const [g, c] of ngramCounts(r, maxOrder)) refGrams.set(g, Math.max(refGrams.get(g) ?? 0, c));
    const hyp = prep(h);
    // the closest reference length; ties go to the shorter reference
    let closest = -1, diff = -1;
    for (const r of refs) {
      const d = Math.abs(hyp.length - r.length);
      if (diff === -1 || d < diff || (d === diff && r.length < closest)) (diff = d), (closest = r.length);
    }
    sysLen += hyp.length;
    refLen += closest;
    for (const [g, c] of ngramCounts(hyp, maxOrder)) {
      const n = Number(g.slice(0, g.indexOf('\u0000'))) - 1;
      total[n] = total[n]! + c;
      correct[n] = correct[n]! + Math.min(c, refGrams.get(g) ?? 0);
    }
  });
  const bp = sysLen < refLen ? (sysLen > 0 ? Math.exp(1 - refLen / sysLen) : 0) : 1;
  const precisions = new Array<number>(maxOrder).fill(0);
  const result = { counts: correct, totals: total, precisions, bp, sysLen, refLen };
  if (!correct.some((c) => c > 0)) return { score: 0, ...result };
  let smooth = 1;
  for (let n = 0; n < maxOrder; n++) {
    if (total[n] === 0) break;
    if (correct[n] === 0) {
      if (opts.smooth !== 'none') (smooth *= 2), (precisions[n] = 100 / (smooth * total[n]!));
    } else precisions[n] = (100 * correct[n]!) / total[n]!;
  }
  // sacrebleu floors log(0) to -9999999999
  const logs = precisions.map((p) => (p === 0 ? -9999999999 : Math.log(p)));
  return { score: bp * Math.exp(logs.reduce((a, b) => a + b, 0) / maxOrder), ...result };
}

/** The Trainer's generation metrics: SQuAD exact match and F1 (0-1), mean ROUGE-L F (0-1), corpus BLEU (0-100). */
export function generationMetrics(predictions: string[], references: string[]): { exact_match: number; f1: number; rougeL: number; bleu: number } {
  const { exactMatch, f1 } = qaMetrics(predictions, references);
  const rouge = predictions.reduce((a, p, i) => a + rougeL(references[i]!, p).fmeasure, 0) / predictions.length;
  return { exact_match: exactMatch, f1, rougeL: rouge, bleu: corpusBleu(predictions, references).score };
}
