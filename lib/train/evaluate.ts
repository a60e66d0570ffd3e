/** Loss and task metrics computed in TypeScript from a model's logits (the model has no eval-loss call). */
import { NodetuneError } from '../errors';
import type { Batch } from '../data/batch';
import { IGNORE_INDEX } from '../data/batch';
import { classificationMetrics, entityMetrics, perplexity, qaMetrics } from './metrics';
import type { ModelTask } from './data';

/** -log softmax(logits[off .. off+n))[target], computed stably. */
export function crossEntropy(logits: Float32Array, off: number, n: number, target: number): number {
  let max = -Infinity;
  for (let j = 0; j < n; j++) max = Math.max(max, logits[off + j]!);
  let sum = 0;
  for (let j = 0; j < n; j++) sum += Math.exp(logits[off + j]! - max);
  return Math.log(sum) + max - logits[off + target]!;
}

export function argmax(logits: Float32Array, off: number, n: number): number {
  let best = 0;
  for (let j = 1; j < n; j++) if (logits[off + j]! > logits[off + best]!) best = j;
  return best;
}

/** The answer span [start, end] (end >= start, at most maxLength tokens) with the highest start + end score. */
export function bestSpan(start: Float32Array, end: Float32Array, maxLength = 30): [number, number] {
  let best = -Infinity, bs = 0, be = 0;
  for (let s = 0; s < start.length; s++)
    for (let e = s; e < Math.min(end.length, s + maxLength); e++)
      if (start[s]! + end[e]! > best) (best = start[s]! + end[e]!), (bs = s), (be = e);
  return [bs, be];
}

/** Accumulates loss and predictions over the batches of one split, then reports the task's metrics. */
export class MetricAccumulator {
  private lossSum = 0;
  private lossCount = 0;
  private readonly preds: number[] = [];
  private readonly refs: number[] = [];
  private readonly tagPreds: string[][] = [];
  private readonly tagRefs: string[][] = [];
  private readonly spanPreds: string[] = [];
  private readonly spanRefs: string[] = [];
  private tokenCorrect = 0;

  constructor(readonly task: ModelTask, private readonly id2label: Record<string, string> | null, private readonly numClasses: number) {}

  private get bio(): boolean {
    const tags = this.id2label ? Object.values(this.id2label) : [];
    return tags.length > 0 && tags.every((t) => /^(O|[BIES]-.+)$/.test(t));
  }

  /** Adds one batch's logits ([batch, length, n], or [batch, n] for sequence classification). */
  add(batch: Batch, logits: Float32Array, shape: number[], where: string): void {
    const [b, t] = batch.shape;
    const need = (x: Int32Array | undefined, what: string): Int32Array => {
      if (!x) throw new NodetuneError('ERR_DATA', `${where}: the batch has no ${what}, so no loss or metrics can be computed`, { field: what });
      return x;
    };
    switch (this.task) {
      case 'causal-lm': {
        const labels = need(batch.labels, 'labels');
        const v = shape[2]!;
        for (let i = 0; i < b; i++)
          for (let p = 0; p + 1 < t; p++) {
            const y = labels[i * t + p + 1]!;
            if (y === IGNORE_INDEX) continue;
            const off = (i * t + p) * v;
            this.lossSum += crossEntropy(logits, off, v, y);
            this.lossCount += 1;
            if (argmax(logits, off, v) === y) this.tokenCorrect += 1;
          }
        return;
      }
      case 'masked-lm': {  // every labelled position, no shift
        const labels = need(batch.labels, 'labels');
        const v = shape[2]!;
        for (let k = 0; k < b * t; k++) {
          const y = labels[k]!;
          if (y === IGNORE_INDEX) continue;
          this.lossSum += crossEntropy(logits, k * v, v, y);
          this.lossCount += 1;
          if (argmax(logits, k * v, v) === y) this.tokenCorrect += 1;
        }
        return;
      }
      case 'sequence-classification': {
        const labels = need(batch.labels, 'labels');
        const c = shape[1]!;
        for (let i = 0; i < b; i++) {
          const y = labels[i]!;
          if (y === IGNORE_INDEX) continue;
          this.lossSum += c === 1 ? (logits[i]! - y) ** 2 : crossEntropy(logits, i * c, c, y);
          this.lossCount += 1;
          if (c > 1) this.preds.push(argmax(logits, i * c, c)), this.refs.push(y);
        }
        return;
      }
      case 'token-classification': {
        const labels = need(batch.labels, 'labels');
        const c = shape[2]!;
        const name = (k: number) => this.id2label?.[String(k)] ?? String(k);
        for (let i = 0; i < b; i++) {
          const pr: string[] = [], rf: string[] = [];
          for (let p = 0; p < t; p++) {
            const y = labels[i * t + p]!;
            if (y === IGNORE_INDEX) continue;
            const off = (i * t + p) * c;
            this.lossSum += crossEntropy(logits, off, c, y);
            this.lossCount += 1;
            const k = argmax(logits, off, c);
            if (k === y) this.tokenCorrect += 1;
            pr.push(name(k)), rf.push(name(y));
          }
          this.tagPreds.push(pr), this.tagRefs.push(rf);
        }
        return;
      }
      case 'question-answering': {
        const starts = need(batch.startPositions, 'startPositions'), ends = need(batch.endPositions, 'endPositions');
        // logits [batch, length, 2]: start and end scores per token
        const startRow = new Float32Array(t), endRow = new Float32Array(t);
        for (let i = 0; i < b; i++) {
          for (let p = 0; p < t; p++) (startRow[p] = logits[(i * t + p) * 2]!), (endRow[p] = logits[(i * t + p) * 2 + 1]!);
          this.lossSum += (crossEntropy(startRow, 0, t, starts[i]!) + crossEntropy(endRow, 0, t, ends[i]!)) / 2;
          this.lossCount += 1;
          const [bs, be] = bestSpan(startRow, endRow);
          const ids = batch.inputIds.subarray(i * t, (i + 1) * t);
          this.spanPreds.push(Array.from(ids.subarray(bs, be + 1)).join(' '));
          this.spanRefs.push(Array.from(ids.subarray(starts[i]!, ends[i]! + 1)).join(' '));
        }
        return;
      }
      default:
        throw new NodetuneError('ERR_STATE', `${where}: a ${this.task} model has no loss to evaluate; load it with a task`, { field: 'task' });
    }
  }

  /** The split's metrics; `confusion` for classification. */
  result(): { metrics: Record<string, number>; confusion?: number[][] } {
    if (this.lossCount === 0) throw new NodetuneError('ERR_DATA', 'evaluation: no labelled examples (every label was -100 or the data were empty)', { field: 'labels' });
    const loss = this.lossSum / this.lossCount;
    const metrics: Record<string, number> = { loss };
    if (this.task === 'causal-lm' || this.task === 'masked-lm') {
      metrics.perplexity = perplexity(loss);
      metrics.tokenAccuracy = this.tokenCorrect / this.lossCount;
    } else if (this.task === 'sequence-classification' && this.preds.length > 0) {
      const m = classificationMetrics(this.preds, this.refs, this.numClasses);
      metrics.accuracy = m.accuracy;
      metrics.macroF1 = m.macroF1;
      metrics.macroPrecision = m.macroPrecision;
      metrics.macroRecall = m.macroRecall;
      m.perClass.forEach((c, k) => {
        const label = this.id2label?.[String(k)] ?? String(k);
        metrics[`precision_${label}`] = c.precision;
        metrics[`recall_${label}`] = c.recall;
      });
      return { metrics, confusion: m.confusion };
    } else if (this.task === 'token-classification') {
      metrics.tokenAccuracy = this.tokenCorrect / this.lossCount;
      if (this.bio) {
        const e = entityMetrics(this.tagPreds, this.tagRefs);
        metrics.entityPrecision = e.precision;
        metrics.entityRecall = e.recall;
        metrics.entityF1 = e.f1;
      }
    } else if (this.task === 'question-answering') {
      const q = qaMetrics(this.spanPreds, this.spanRefs);
      metrics.exactMatch = q.exactMatch;
      metrics.f1 = q.f1;
    }
    return { metrics };
  }
}
