/** The report of a `nodetune train` run: the Trainer's curves plus what the run knows (its configuration, metrics before/after, the confusion matrix). */
import * as path from 'path';
import type { Model } from '../models';
import { JsonlLogger, writeReport } from '../train';
import type { Comparison, LogRecord, TrainResult } from '../train';
import type { TrainConfig } from './config/schema';

export interface RunReportInput {
  config: TrainConfig;
  model: Model;
  result: TrainResult;
  metricForBestModel: string;
  batchSize: number;
  sizes: { train: number; validation: number | null; test: number | null };
  before: { validation: Record<string, number> | null; test: Record<string, number> | null };
  after: { validation: Record<string, number> | null; test: Record<string, number> | null };
  confusion: { split: string; matrix: number[][] } | null;
  labels: readonly string[] | null;
  seconds: number;
}

/** The step whose evaluation recorded the best value of `metric` (the first, as the Trainer keeps the first of equals). */
export function bestStep(history: LogRecord[], metric: string, value: number | null): number | null {
  if (value === null) return null;
  return history.find((r) => r[`eval_${metric}`] === value)?.step ?? null;
}

/** The run's configuration as report rows (the method's own settings only where they apply). */
function configFields(i: RunReportInput): Record<string, string | number | null> {
  const m = i.config.method, p = i.model.parameterSummary(), t = i.config.training as Record<string, unknown>;
  const targets = Array.isArray(m.targetModules) ? m.targetModules.join(', ') : m.targetModules;
  const fields: Record<string, string | number | null> = {
    model: i.config.model, task: i.config.task, method: m.kind, ...(m.policy ? { policy: m.policy } : {}),
    ...(m.r !== undefined ? { r: m.r } : {}), ...(m.alpha !== undefined ? { alpha: m.alpha } : {}), ...(targets ? { 'target modules': targets } : {}),
    ...(m.reduction !== undefined ? { reduction: m.reduction } : {}), ...(m.numVirtualTokens !== undefined ? { 'virtual tokens': m.numVirtualTokens } : {}),
    'batch size': i.batchSize, 'learning rate': typeof t.learningRate === 'number' ? t.learningRate : null,
    'train examples': i.sizes.train, 'validation examples': i.sizes.validation, 'test examples': i.sizes.test,
    'trainable parameters': `${p.trainable.toLocaleString('en-US')} of ${p.total.toLocaleString('en-US')} (${p.percent.toFixed(2)}%)`,
    device: i.model.device, dtype: i.model.dtype, 'wall time (s)': Number(i.seconds.toFixed(1)),
  };
  return fields;
}

/** Rewrites `<output>/report.html` (and its PNG) with the whole run; returns its path. */
export function writeRunReport(i: RunReportInput): string {
  const outputDir = i.config.output;
  const history = JsonlLogger.read(path.join(outputDir, 'metrics.jsonl'));
  const metric = i.metricForBestModel.replace(/^eval_/, '');
  const step = bestStep(history, metric, i.result.bestMetric);
  const comparisons: Comparison[] = [];
  for (const split of ['validation', 'test'] as const) {
    const b = i.before[split], a = i.after[split];
    if (b && a) comparisons.push({ split, before: b, after: a });
  }
  const r = i.result;
  const summary = {
    steps: r.globalStep, epochs: Number(r.epoch.toFixed(3)), stopped: r.reason, [`best ${metric}`]: r.bestMetric,
    'best checkpoint': r.bestCheckpoint && path.basename(r.bestCheckpoint),
  };
  const confusion = i.confusion && i.labels ? { split: i.confusion.split, labels: i.labels, matrix: i.confusion.matrix } : null;
  return writeReport(path.join(outputDir, 'report.html'), history, {
    title: `nodetune training report (${i.config.task}, ${i.config.method.kind})`, summary, config: configFields(i), comparisons,
    best: step === null ? null : { metric, step }, confusion,
  }).html;
}
