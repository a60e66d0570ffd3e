/** What PII scrubbing would find in a set of examples: counts per type and where (row, field, offsets), never the values. */
import type { CountryCode } from 'libphonenumber-js/max';
import { check } from '../../errors';
import type { Example } from '../example';
import { PII_TYPES, detectPii } from './detectors';
import type { PiiType } from './detectors';
import { PiiScrubber } from './scrub';
import type { PiiAction, PiiOptions } from './scrub';

export interface PiiLocation {
  /** 1-based row in the input, and the file line where the example has a source. */
  row: number;
  line?: number;
  /** The field: text, textPair, prompt, completion, question, context, messages.N, tokens.N. */
  field: string;
  /** UTF-16 offsets of the value in that field. */
  start: number;
  end: number;
}

export interface PiiTypeScan {
  count: number;
  /** Rows with at least one value of this type. */
  rows: number;
  /** What `pii` would do with it; null when no pii options were given. */
  action: PiiAction | null;
  locations: PiiLocation[];
}

export interface PiiScanReport {
  rows: number;
  rowsWithPii: number;
  /** Rows that scrubbing would drop (a type whose action is 'drop'). */
  rowsDropped: number;
  types: Record<PiiType, PiiTypeScan>;
}

export interface PiiScanOptions {
  /** The scrubbing options whose actions are reported (and their defaultRegion used); every type is looked for anyway. */
  pii?: PiiOptions;
  /** Locations kept per type; default 100. */
  maxLocations?: number;
}

/** Each text of an example with the name of the field it is in. */
export function fieldTexts(ex: Example): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (const f of ['text', 'textPair', 'prompt', 'completion', 'question', 'context'] as const) {
    const v = ex[f];
    if (typeof v === 'string') out.push([f, v]);
  }
  ex.messages?.forEach((m, i) => out.push([`messages.${i}`, m.content]));
  ex.tokens?.forEach((t, i) => out.push([`tokens.${i}`, t]));
  return out;
}

export function scanPii(examples: Iterable<Example>, opts: PiiScanOptions = {}): PiiScanReport {
  const maxLocations = opts.maxLocations ?? 100;
  check(Number.isInteger(maxLocations) && maxLocations >= 0, `scanPii: maxLocations must be a non-negative integer, got ${String(opts.maxLocations)}`, 'maxLocations');
  const actions = opts.pii ? new PiiScrubber(opts.pii).actions : null;
  const region = opts.pii?.defaultRegion as CountryCode | undefined;
  const entry = (t: PiiType): PiiTypeScan => ({ count: 0, rows: 0, action: actions?.[t] ?? null, locations: [] });
  const types = Object.fromEntries(PII_TYPES.map((t) => [t, entry(t)])) as Record<PiiType, PiiTypeScan>;
  const report: PiiScanReport = { rows: 0, rowsWithPii: 0, rowsDropped: 0, types };
  for (const ex of examples) {
    const row = ++report.rows;
    const seen = new Set<PiiType>();
    for (const [field, text] of fieldTexts(ex))
      for (const m of detectPii(text, PII_TYPES, region ? { defaultRegion: region } : {})) {
        const t = types[m.type];
        t.count++;
        if (!seen.has(m.type)) { seen.add(m.type); t.rows++; }
        if (t.locations.length < maxLocations) t.locations.push({ row, ...(ex.source ? { line: ex.source.line } : {}), field, start: m.start, end: m.end });
      }
    if (seen.size > 0) report.rowsWithPii++;
    if ([...seen].some((t) => actions?.[t] === 'drop')) report.rowsDropped++;
  }
  return report;
}
