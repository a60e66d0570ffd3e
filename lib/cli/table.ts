/** Plain-text tables for the CLI's summaries. */

/** Columns padded to their widest cell; the first column left-aligned, the others right-aligned. */
export function formatTable(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ').trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

/** A metric value for a table: 4 decimals, or '-' when absent. */
export function fmt(v: number | undefined | null): string {
  if (v === undefined || v === null || Number.isNaN(v)) return '-';
  return Math.abs(v) >= 1000 ? v.toFixed(0) : v.toFixed(4);
}

/** Rows of "metric | before | after | change" for the metrics both runs have (the ones worth showing first). */
export function metricRows(split: string, before: Record<string, number>, after: Record<string, number>): string[][] {
  const order = ['loss', 'accuracy', 'macroF1', 'perplexity', 'tokenAccuracy', 'entityF1', 'exactMatch', 'exact_match', 'f1', 'rougeL', 'bleu'];
  const names = order.filter((n) => n in before && n in after);
  return names.map((n) => [`${split} ${n}`, fmt(before[n]), fmt(after[n]), fmt(after[n]! - before[n]!)]);
}
