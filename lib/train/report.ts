/**
 * A self-contained HTML report of a run: the run's configuration and summary, metrics before/after, SVG line charts
 * (loss, learning rate, gradient norm, each evaluation metric; the best step marked), per-label metrics and the confusion
 * matrix as tables; and the loss chart rendered to PNG beside it (resvg).
 */
import * as fs from 'fs';
import * as path from 'path';
import { Resvg } from '@resvg/resvg-js';
import { NodetuneError } from '../errors';
import type { LogRecord } from './checkpoint';
import { Series, esc, lineChart } from './chart';
import { Comparison, Confusion, Fields, PER_LABEL, comparisonTable, confusionTable, fieldsTable, perLabelTable } from './report-tables';

export type { Series } from './chart';
export type { Comparison, Confusion } from './report-tables';

export interface ReportInfo {
  title: string;
  /** How the run went (steps, stop reason, best metric, ...). */
  summary: Fields;
  /** The run's configuration (model, method, r, batch size, data sizes, trainable parameters, wall time, ...). */
  config?: Fields;
  /** Metrics before and after training, per split. */
  comparisons?: Comparison[];
  /** The step of the best checkpoint, marked on the loss chart and on its metric's chart. */
  best?: { metric: string; step: number } | null;
  confusion?: Confusion | null;
}

/** The y-axis titles (with units) of the charts; metrics not listed are titled by name. */
const Y_TITLES: Record<string, string> = {
  loss: 'cross-entropy loss (nats)', lr: 'learning rate', gradNorm: 'gradient L2 norm', perplexity: 'perplexity (exp of loss)',
  accuracy: 'accuracy (fraction)', tokenAccuracy: 'token accuracy (fraction)', macroF1: 'macro F1 (fraction)',
  macroPrecision: 'macro precision (fraction)', macroRecall: 'macro recall (fraction)',
};

function series(history: LogRecord[], key: string, name = key): Series {
  return { name, points: history.filter((r) => typeof r[key] === 'number').map((r) => [r.step, r[key] as number]) };
}

function lossChart(history: LogRecord[], best?: ReportInfo['best']): string {
  const losses = [series(history, 'loss', 'train loss'), series(history, 'eval_loss', 'validation loss')].filter((s) => s.points.length > 0);
  return lineChart('Loss', losses, { yTitle: Y_TITLES.loss!, ...(best ? { mark: { x: best.step, label: `best ${best.metric} (step ${best.step})` } } : {}) });
}

/** The HTML page of a run (no external scripts, styles or images). */
export function renderReport(history: LogRecord[], info: ReportInfo): string {
  const best = info.best ?? undefined;
  const charts = [
    lossChart(history, best),
    lineChart('Learning rate', [series(history, 'lr', 'learning rate')], { yTitle: Y_TITLES.lr! }),
    lineChart('Gradient norm', [series(history, 'gradNorm', 'grad norm')], { yTitle: Y_TITLES.gradNorm! }),
  ];
  const metricKeys = [...new Set(history.flatMap((r) => Object.keys(r)))]
    .filter((k) => k.startsWith('eval_') && k !== 'eval_loss' && !PER_LABEL.test(k.slice(5))).sort();
  for (const k of metricKeys) {
    const m = k.slice(5);
    const mark = best && best.metric === m ? { mark: { x: best.step, label: `best (step ${best.step})` } } : {};
    charts.push(lineChart(m, [series(history, k, `validation ${m}`)], { yTitle: Y_TITLES[m] ?? m, ...mark }));
  }
  const section = (title: string, body: string) => (body ? `<h2>${esc(title)}</h2>\n${body}\n` : '');
  const figures = charts.filter((c) => c.length > 0).map((c) => `<figure>${c}</figure>`).join('\n');
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(info.title)}</title>
<style>body{font:14px system-ui,sans-serif;margin:24px;color:#222}figure{display:inline-block;margin:8px}svg text{font:11px system-ui,sans-serif;fill:#444}svg text.axis-title{font-weight:600}table{border-collapse:collapse;margin-bottom:12px}th,td{text-align:left;padding:2px 12px 2px 0}td{text-align:right;font-variant-numeric:tabular-nums}table.confusion td,table.confusion thead th{border:1px solid #ddd;padding:2px 8px}</style>
</head><body>
<h1>${esc(info.title)}</h1>
${section('Run', fieldsTable('config', info.config ?? {}))}${section('Summary', fieldsTable('summary', info.summary))}${section('Before and after training', comparisonTable(info.comparisons ?? []))}${section('Curves', figures)}${section('Per-label metrics', perLabelTable(history))}${section('Confusion matrix', info.confusion ? confusionTable(info.confusion) : '')}</body></html>
`;
}

function writeAtomic(file: string, data: string | Buffer): void {
  const tmp = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, data);
  fs.renameSync(tmp, file);
}

/** DejaVu Sans from the dejavu-fonts-ttf package: the PNG's text renders the same on every machine, fonts installed
 * or not (a server or a minimal container often has none, and resvg then draws no text at all). */
const FONT_FILES = ['DejaVuSans.ttf', 'DejaVuSans-Bold.ttf'].map((f) => require.resolve(`dejavu-fonts-ttf/ttf/${f}`));

/** The report's loss chart as a PNG (the same SVG, rendered by resvg at 640 pixels wide). */
export function lossPng(history: LogRecord[], best?: ReportInfo['best']): Buffer | null {
  const svg = lossChart(history, best);
  if (!svg) return null;
  const font = { fontFiles: FONT_FILES, loadSystemFonts: false, defaultFontFamily: 'DejaVu Sans', sansSerifFamily: 'DejaVu Sans' };
  return new Resvg(svg, { fitTo: { mode: 'width', value: 640 }, background: '#ffffff', font }).render().asPng();
}

/** Writes the HTML report to `file` and its loss chart as a PNG beside it (`<name>.png`, when there is a loss), each temp + rename. */
export function writeReport(file: string, history: LogRecord[], info: ReportInfo): { html: string; png: string | null } {
  const png = file.replace(/\.html?$/, '') + '.png';
  try {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    writeAtomic(file, renderReport(history, info));
    const image = lossPng(history, info.best);
    if (image) writeAtomic(png, image);
    return { html: file, png: image ? png : null };
  } catch (e) {
    throw new NodetuneError('ERR_IO', `${file}: cannot write the report (${(e as Error).message})`, { file });
  }
}
