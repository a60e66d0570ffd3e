/**
 * Evaluation metrics: classification (accuracy, macro-F1, per-class precision/recall, confusion matrix),
 * language modelling (perplexity), extractive QA (SQuAD exact match and token F1) and token
 * classification (entity-level F1 with seqeval's strict span semantics for BIO/IOB2 tags).
 */
import { NodetuneError } from '../errors';

export interface ClassificationMetrics {
  accuracy: number;
  macroF1: number;
  macroPrecision: number;
  macroRecall: number;
  /** Per class id: precision, recall, F1 and support (number of true examples). */
  perClass: { precision: number; recall: number; f1: number; support: number }[];
  /** confusion[true][predicted] counts. */
  confusion: number[][];
}

function sameLength(a: ArrayLike<unknown>, b: ArrayLike<unknown>, what: string): void {
  if (a.length !== b.length) throw new NodetuneError('ERR_ARGUMENT', `${what}: ${a.length} predictions but ${b.length} references`, { field: 'predictions' });
  if (a.length === 0) throw new NodetuneError('ERR_ARGUMENT', `${what}: no examples`, { field: 'predictions' });
}

const ratio = (n: number, d: number): number => (d === 0 ? 0 : n / d);
const f1Of = (p: number, r: number): number => (p + r === 0 ? 0 : (2 * p * r) / (p + r));

/**
 * Classification metrics over class ids in [0, numClasses). Macro averages are over the classes that occur
 * in the references or the predictions (scikit-learn's default labels); a class never predicted has precision 0.
 */
export function classificationMetrics(predictions: ArrayLike<number>, references: ArrayLike<number>, numClasses?: number): ClassificationMetrics {
  sameLength(predictions, references, 'classificationMetrics()');
  let n = numClasses ?? 0;
  if (numClasses === undefined) for (let i = 0; i < predictions.length; i++) n = Math.max(n, predictions[i]! + 1, references[i]! + 1);
  const confusion = Array.from({ length: n }, () => new Array<number>(n).fill(0));
  let correct = 0;
  for (let i = 0; i < predictions.length; i++) {
    const p = predictions[i]!, t = references[i]!;
    if (!Number.isInteger(p) || !Number.isInteger(t) || p < 0 || t < 0 || p >= n || t >= n)
      throw new NodetuneError('ERR_ARGUMENT', `classificationMetrics(): example ${i} has prediction ${p}, reference ${t}; class ids must be integers in [0, ${n})`, { field: 'predictions' });
    confusion[t]![p]! += 1;
    if (p === t) correct += 1;
  }
  const perClass = confusion.map((row, c) => {
    const tp = row[c]!;
    const support = row.reduce((a, b) => a + b, 0);
    const predicted = confusion.reduce((a, r) => a + r[c]!, 0);
    const precision = ratio(tp, predicted), recall = ratio(tp, support);
    return { precision, recall, f1: f1Of(precision, recall), support, present: support + predicted > 0 };
  });
  const present = perClass.filter((c) => c.present);
  const mean = (k: 'precision' | 'recall' | 'f1') => present.reduce((a, c) => a + c[k], 0) / present.length;
  return {
    accuracy: correct / predictions.length,
    macroF1: mean('f1'),
    macroPrecision: mean('precision'),
    macroRecall: mean('recall'),
    perClass: perClass.map(({ precision, recall, f1, support }) => ({ precision, recall, f1, support })),
    confusion,
  };
}

/** exp(mean token cross-entropy in nats). */
export function perplexity(meanTokenLoss: number): number {
  if (!Number.isFinite(meanTokenLoss)) throw new NodetuneError('ERR_ARGUMENT', `perplexity(): the mean loss must be finite, got ${meanTokenLoss}`, { field: 'meanTokenLoss' });
  return Math.exp(meanTokenLoss);
}

/** SQuAD normalisation: lower-case, remove punctuation, remove the articles a/an/the, collapse whitespace. */
export function normalizeAnswer(s: string): string {
  return s
    .toLowerCase()
    .replace(/[\p{P}\p{S}]/gu, '')
    .replace(/\b(a|an|the)\b/g, ' ')
    .split(/\s+/)
    .filter((w) => w.length > 0)
    .join(' ');
}

/** 1 when the normalised answers are equal, else 0. */
export function exactMatch(prediction: string, reference: string): number {
  return normalizeAnswer(prediction) === normalizeAnswer(reference) ? 1 : 0;
}

/** SQuAD token F1: overlap of the normalised tokens as multisets. */
export function tokenF1(prediction: string, reference: string): number {
  const p = normalizeAnswer(prediction).split(' ').filter(Boolean);
  const r = normalizeAnswer(reference).split(' ').filter(Boolean);
  if (p.length === 0 || r.length === 0) return p.length === r.length ? 1 : 0;
  const counts = new Map<string, number>();
  for (const w of r) counts.set(w, (counts.get(w) ?? 0) + 1);
  let common = 0;
  for (const w of p) {
    const c = counts.get(w) ?? 0;
    if (c > 0) common += 1, counts.set(w, c - 1);
  }
  if (common === 0) return 0;
  return f1Of(common / p.length, common / r.length);
}

/** Mean exact match and F1 (in [0, 1]); each prediction is scored against its best-matching reference. */
export function qaMetrics(predictions: string[], references: (string | string[])[]): { exactMatch: number; f1: number } {
  sameLength(predictions, references, 'qaMetrics()');
  let em = 0, f1 = 0;
  predictions.forEach((p, i) => {
    const refs = ([] as string[]).concat(references[i]!);
    if (refs.length === 0) throw new NodetuneError('ERR_ARGUMENT', `qaMetrics(): example ${i} has no reference answer`, { field: 'references' });
    em += Math.max(...refs.map((r) => exactMatch(p, r)));
    f1 += Math.max(...refs.map((r) => tokenF1(p, r)));
  });
  return { exactMatch: em / predictions.length, f1: f1 / predictions.length };
}

export interface Entity {
  type: string;
  /** First token index (inclusive). */
  start: number;
  /** Last token index (inclusive). */
  end: number;
}

function splitTag(tag: string, where: string): [string, string] {
  if (tag === 'O') return ['O', ''];
  const m = /^([BIES])-(.+)$/.exec(tag);
  if (!m) throw new NodetuneError('ERR_DATA', `${where}: tag ${JSON.stringify(tag)} is not O, B-TYPE or I-TYPE`, { field: 'tags' });
  return [m[1]!, m[2]!];
}

/**
 * Entities of one BIO/IOB2 tag sequence, as seqeval's default (lenient IOB2) reading: an I- after O or after a
 * different type starts a new entity; B- always starts one.
 */
export function extractEntities(tags: string[], where = 'extractEntities()'): Entity[] {
  const out: Entity[] = [];
  let cur: Entity | null = null;
  tags.forEach((tag, i) => {
    const [prefix, type] = splitTag(tag, `${where} token ${i}`);
    const continues = cur !== null && (prefix === 'I' || prefix === 'E') && cur.type === type;
    if (continues) {
      cur!.end = i;
      return;
    }
    if (cur) out.push(cur), (cur = null);
    if (prefix !== 'O') cur = { type, start: i, end: i };
  });
  if (cur) out.push(cur);
  return out;
}

/** Entity-level precision, recall and F1 (micro over all entities): an entity counts only when type and span match exactly. */
export function entityMetrics(predictions: string[][], references: string[][]): { precision: number; recall: number; f1: number; perType: Record<string, { precision: number; recall: number; f1: number; support: number }> } {
  sameLength(predictions, references, 'entityMetrics()');
  const byType = new Map<string, { tp: number; pred: number; gold: number }>();
  const get = (t: string) => byType.get(t) ?? (byType.set(t, { tp: 0, pred: 0, gold: 0 }), byType.get(t)!);
  predictions.forEach((p, i) => {
    const r = references[i]!;
    if (p.length !== r.length) throw new NodetuneError('ERR_ARGUMENT', `entityMetrics(): sequence ${i} has ${p.length} predicted tags but ${r.length} reference tags`, { field: 'predictions' });
    const pe = extractEntities(p, `entityMetrics() prediction ${i}`);
    const re = extractEntities(r, `entityMetrics() reference ${i}`);
    const gold = new Set(re.map((e) => `${e.type}:${e.start}:${e.end}`));
    for (const e of re) get(e.type).gold += 1;
    for (const e of pe) {
      get(e.type).pred += 1;
      if (gold.has(`${e.type}:${e.start}:${e.end}`)) get(e.type).tp += 1;
    }
  });
  let tp = 0, pred = 0, gold = 0;
  const perType: Record<string, { precision: number; recall: number; f1: number; support: number }> = {};
  for (const [t, c] of [...byType.entries()].sort()) {
    tp += c.tp, pred += c.pred, gold += c.gold;
    const precision = ratio(c.tp, c.pred), recall = ratio(c.tp, c.gold);
    perType[t] = { precision, recall, f1: f1Of(precision, recall), support: c.gold };
  }
  const precision = ratio(tp, pred), recall = ratio(tp, gold);
  return { precision, recall, f1: f1Of(precision, recall), perType };
}
