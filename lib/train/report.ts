/** A self-contained HTML report of a run: inline SVG line charts of the training loss, learning rate and each evaluation metric. */
import * as fs from 'fs';
import * as path from 'path';
import { NodetuneError } from '../errors';
import type { LogRecord } from './checkpoint';
import { chartPng } from './png';

export interface Series {
  name: string;
  points: [number, number][];
}

const esc = (s: string): string => s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

function fmt(v: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  return a >= 1e4 || a < 1e-3 ? v.toExponential(2) : Number(v.toPrecision(4)).toString();
}

/** One line chart as an SVG element (x: step). */
export function lineChart(title: string, series: Series[], width = 560, height = 260): string {
  const pad = { l: 64, r: 16, t: 28, b: 36 };
  const pts = series.flatMap((s) => s.points).filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
  if (pts.length === 0) return '';
  let [x0, x1] = [Math.min(...pts.map((p) => p[0])), Math.max(...pts.map((p) => p[0]))];
  let [y0, y1] = [Math.min(...pts.map((p) => p[1])), Math.max(...pts.map((p) => p[1]))];
  if (x0 === x1) (x0 -= 1), (x1 += 1);
  if (y0 === y1) (y0 -= Math.abs(y0) * 0.1 || 1), (y1 += Math.abs(y1) * 0.1 || 1);
  const w = width - pad.l - pad.r, h = height - pad.t - pad.b;
  const sx = (x: number) => pad.l + ((x - x0) / (x1 - x0)) * w;
  const sy = (y: number) => pad.t + h - ((y - y0) / (y1 - y0)) * h;
  const colors = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b'];
  const ticks = [0, 0.25, 0.5, 0.75, 1];
  const grid = ticks.map((f) => {
    const y = y0 + f * (y1 - y0), x = x0 + f * (x1 - x0);
    return `<line x1="${pad.l}" x2="${pad.l + w}" y1="${sy(y).toFixed(1)}" y2="${sy(y).toFixed(1)}" stroke="#eee"/>` +
      `<text x="${pad.l - 6}" y="${(sy(y) + 4).toFixed(1)}" text-anchor="end">${fmt(y)}</text>` +
      `<text x="${sx(x).toFixed(1)}" y="${pad.t + h + 16}" text-anchor="middle">${fmt(Math.round(x))}</text>`;
  }).join('');
  const lines = series.map((s, i) => {
    const p = s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
    const d = p.map(([x, y], k) => `${k ? 'L' : 'M'}${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join(' ');
    const c = colors[i % colors.length]!;
    const dots = p.length <= 40 ? p.map(([x, y]) => `<circle cx="${sx(x).toFixed(1)}" cy="${sy(y).toFixed(1)}" r="2.5" fill="${c}"/>`).join('') : '';
    // The legend: a swatch of the line, then the name in the line's colour (an inline style, which the page's
    // `svg text` rule cannot override as it overrides a fill attribute).
    const lx = pad.l + 8 + i * 130;
    return `<path d="${d}" fill="none" stroke="${c}" stroke-width="1.8"/>${dots}` +
      `<g class="legend-entry"><line x1="${lx}" y1="${pad.t - 12}" x2="${lx + 16}" y2="${pad.t - 12}" stroke="${c}" stroke-width="3"/>` +
      `<text x="${lx + 20}" y="${pad.t - 8}" style="fill:${c}">${esc(s.name)}</text></g>`;
  }).join('');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-label="${esc(title)}">` +
    `<title>${esc(title)}</title><rect width="100%" height="100%" fill="#fff"/>${grid}` +
    `<line x1="${pad.l}" y1="${pad.t + h}" x2="${pad.l + w}" y2="${pad.t + h}" stroke="#999"/><line x1="${pad.l}" y1="${pad.t}" x2="${pad.l}" y2="${pad.t + h}" stroke="#999"/>` +
    `<text x="${pad.l + w / 2}" y="${height - 4}" text-anchor="middle">step</text>${lines}</svg>`;
}

function series(history: LogRecord[], key: string, name = key): Series {
  return { name, points: history.filter((r) => typeof r[key] === 'number').map((r) => [r.step, r[key] as number]) };
}

/** The HTML page of a run (no external scripts, styles or images). */
export function renderReport(history: LogRecord[], info: { title: string; summary: Record<string, string | number | null> }): string {
  const charts: string[] = [];
  const trainLoss = series(history, 'loss', 'train loss');
  const evalLoss = series(history, 'eval_loss', 'validation loss');
  charts.push(lineChart('Loss', [trainLoss, evalLoss].filter((s) => s.points.length > 0)));
  charts.push(lineChart('Learning rate', [series(history, 'lr', 'learning rate')]));
  charts.push(lineChart('Gradient norm', [series(history, 'gradNorm', 'grad norm')]));
  const metricKeys = [...new Set(history.flatMap((r) => Object.keys(r)))].filter((k) => k.startsWith('eval_') && k !== 'eval_loss').sort();
  for (const k of metricKeys) charts.push(lineChart(k.slice(5), [series(history, k, `validation ${k.slice(5)}`)]));
  const rows = Object.entries(info.summary).map(([k, v]) => `<tr><th>${esc(k)}</th><td>${esc(v === null ? '-' : typeof v === 'number' ? fmt(v) : v)}</td></tr>`).join('');
  const figures = charts.filter((c) => c.length > 0).map((c) => `<figure>${c}</figure>`).join('\n');
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(info.title)}</title>
<style>body{font:14px system-ui,sans-serif;margin:24px;color:#222}figure{display:inline-block;margin:8px}svg text{font:11px system-ui,sans-serif;fill:#444}table{border-collapse:collapse}th,td{text-align:left;padding:2px 12px 2px 0}</style>
</head><body>
<h1>${esc(info.title)}</h1>
<table>${rows}</table>
${figures}
</body></html>
`;
}

function writeAtomic(file: string, data: string | Buffer): void {
  const tmp = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, data);
  fs.renameSync(tmp, file);
}

/** Writes the HTML report to `file` and the loss curves as a PNG beside it (`<name>.png`), each temp + rename. */
export function writeReport(file: string, history: LogRecord[], info: { title: string; summary: Record<string, string | number | null> }): { html: string; png: string } {
  const png = file.replace(/\.html?$/, '') + '.png';
  try {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    writeAtomic(file, renderReport(history, info));
    const losses = [series(history, 'loss', 'train loss'), series(history, 'eval_loss', 'validation loss')].filter((s) => s.points.length > 0);
    writeAtomic(png, chartPng(losses));
  } catch (e) {
    throw new NodetuneError('ERR_IO', `${file}: cannot write the report (${(e as Error).message})`, { file });
  }
  return { html: file, png };
}
