/** The report's HTML tables: key/value lists (summary, configuration), metrics before/after, per-label metrics, a confusion matrix. */
import type { LogRecord } from './checkpoint';
import { esc } from './chart';

export type Fields = Record<string, string | number | null>;

/** Metrics of one split before and after training. */
export interface Comparison {
  split: string;
  before: Record<string, number>;
  after: Record<string, number>;
}

/** A classifier's confusion matrix: matrix[true][predicted]. */
export interface Confusion {
  split: string;
  labels: readonly string[];
  matrix: number[][];
}

/** Per-label metric keys (precision_<label>, recall_<label>): shown in the per-label table, not as charts. */
export const PER_LABEL = /^(precision|recall|f1)_(.+)$/;

/** A number for a table: 4 significant digits, exponents outside [1e-3, 1e4), integers as they are. */
export function num(v: number): string {
  if (v === 0 || Number.isInteger(v)) return v.toLocaleString('en-US');
  const a = Math.abs(v);
  return a >= 1e4 || a < 1e-3 ? v.toExponential(2) : Number(v.toPrecision(4)).toString();
}

const cell = (v: string | number | null): string => esc(v === null ? '-' : typeof v === 'number' ? num(v) : v);

function table(cls: string, header: string[] | null, rows: (string | number | null)[][]): string {
  const head = header ? `<thead><tr>${header.map((h) => `<th>${esc(h)}</th>`).join('')}</tr></thead>` : '';
  const body = rows.map((r) => `<tr>${r.map((c, i) => (i === 0 ? `<th>${cell(c)}</th>` : `<td>${cell(c)}</td>`)).join('')}</tr>`).join('');
  return `<table class="${cls}">${head}<tbody>${body}</tbody></table>`;
}

/** Name | value rows ('' when there are none). */
export function fieldsTable(cls: string, fields: Fields): string {
  const rows = Object.entries(fields);
  return rows.length ? table(cls, null, rows) : '';
}

/** metric | before | after | change, per split, for the metrics both sides have (per-label ones aside). */
export function comparisonTable(comparisons: Comparison[]): string {
  const rows = comparisons.flatMap((c) => Object.keys(c.after).filter((k) => k in c.before && !PER_LABEL.test(k))
    .map((k) => [`${c.split} ${k}`, c.before[k]!, c.after[k]!, c.after[k]! - c.before[k]!]));
  return rows.length ? table('before-after', ['metric', 'before', 'after', 'change'], rows) : '';
}

/** label | precision | recall (| f1) from the last record of each split that has per-label metrics. */
export function perLabelTable(history: LogRecord[]): string {
  const rows: (string | number | null)[][] = [];
  const kinds = new Set<string>();
  for (const split of ['eval', 'test']) {
    const last = [...history].reverse().find((r) => Object.keys(r).some((k) => k.startsWith(`${split}_`) && PER_LABEL.test(k.slice(split.length + 1))));
    if (!last) continue;
    const byLabel = new Map<string, Record<string, number>>();
    for (const [k, v] of Object.entries(last)) {
      const m = k.startsWith(`${split}_`) ? PER_LABEL.exec(k.slice(split.length + 1)) : null;
      if (!m || typeof v !== 'number') continue;
      kinds.add(m[1]!);
      byLabel.set(m[2]!, { ...byLabel.get(m[2]!), [m[1]!]: v });
    }
    for (const [label, m] of byLabel) rows.push([label, split === 'eval' ? `validation @${last.step}` : `test @${last.step}`, m.precision ?? null, m.recall ?? null, m.f1 ?? null]);
  }
  if (rows.length === 0) return '';
  const cols = ['precision', 'recall', 'f1'].filter((k) => kinds.has(k));
  const keep = [0, 1, ...cols.map((k) => 2 + ['precision', 'recall', 'f1'].indexOf(k))];
  return table('per-label', ['label', 'split', ...cols], rows.map((r) => keep.map((i) => r[i] ?? null)));
}

/** Rows: the true label; columns: the predicted one. */
export function confusionTable(c: Confusion): string {
  return table('confusion', [`${c.split}: true \\ predicted`, ...c.labels], c.matrix.map((row, i) => [c.labels[i] ?? String(i), ...row]));
}
