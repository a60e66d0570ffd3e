/** `nodetune scan`: what PII scrubbing would find and how train overlaps validation/test, reading only. */
import { parseCliArgs } from './args';
import { isSupportedCountry } from 'libphonenumber-js/max';
import { NodetuneError } from '../errors';
import { FIELDS, PII_TYPES, describeLeakage, describeSource, findLeakage, readSource, scanPii } from '../data';
import type { DataFormat, Example, LeakageOptions, LeakageReport, PiiOptions, PiiScanReport, RowLocation, SourceSpec, Task } from '../data';
import { loadConfig } from './config/load';
import { leakageConfig, piiOptions } from './config/privacy';
import { FORMATS, TASKS } from './config/schema';
import type { ConfigTask } from './config/schema';
import { dataTask, readFile } from './data';
import { parseColumns } from './eval';
import { UsageError } from './usage';

export const SCAN_HELP = `Usage: nodetune scan --data FILE [--validation FILE] [--test FILE] [options]
       nodetune scan CONFIG.yaml

Reports what PII scrubbing (data.clean.pii) would find, per type (e-mail, phone, card, IBAN, IP, URL credential,
API key, SSN) with the rows and fields where it is (never the values), and the leakage between train and
validation/test: rows equal exactly, after normalisation (case, punctuation, spacing, NFKC), or nearly (MinHash
over word shingles, Jaccard similarity at least the threshold). Reads the data as it is (before cleaning) and
writes nothing. With a config: its data sources, format, columns, task, limit, data.clean.pii (the actions shown
and the rows that would be dropped) and data.leakage.

Options:
  --data FILE         training data: a file, - (standard input) or an http(s) URL          (required without a config)
  --validation FILE   held-out data compared with it
  --test FILE         held-out data compared with it
  --format F          ${FORMATS.join(', ')} (default: from the extension)
  --column F=COL      read canonical field F from column COL (repeatable)
  --task TASK         the fields every row must have: ${TASKS.join(', ')} (default: none)
  --region CC         region of phone numbers written without +country code, e.g. US, GB (default: only +CC numbers)
  --threshold J       near-duplicate Jaccard threshold in (0, 1] (default 0.8)
  --json              print the report as JSON

Examples:
  nodetune scan --data tickets.jsonl --region US
  nodetune scan --data train.csv --validation dev.csv --test test.csv --column text=body --json
  nodetune scan examples/sentiment.yaml`;

const LOCATIONS_SHOWN = 5;

interface SplitSource {
  split: 'train' | 'validation' | 'test';
  spec: SourceSpec;
}

export interface ScanReport {
  files: Array<{ split: SplitSource['split']; source: string } & PiiScanReport>;
  leakage: LeakageReport | null;
}

interface ScanPlan {
  sources: SplitSource[];
  read: (spec: SourceSpec) => Promise<Example[]>;
  pii: PiiOptions | undefined;
  leakage: LeakageOptions | null;
}

async function readWhole(spec: SourceSpec, opts: { format?: DataFormat; columns?: Record<string, string>; task?: Task }): Promise<Example[]> {
  const out: Example[] = [];
  for await (const ex of readSource(spec, opts)) out.push(ex);
  return out;
}

function fromConfig(file: string): ScanPlan {
  let c;
  try {
    c = loadConfig(file);
  } catch (e) {
    if (e instanceof NodetuneError && (e.code === 'ERR_CONFIG' || e.code === 'ERR_IO')) throw new UsageError(e.message);
    throw e;
  }
  const d = c.data;
  const sources: SplitSource[] = [{ split: 'train', spec: d.train }];
  if (d.validation) sources.push({ split: 'validation', spec: d.validation });
  if (d.test) sources.push({ split: 'test', spec: d.test });
  const leak = leakageConfig(d);
  // The config's reading (format, columns, task, limit, masked-lm lines) without its cleaning.
  return { sources, read: (spec) => readFile(spec, { ...d, clean: undefined }, c.task, []), pii: piiOptions(d), leakage: leak.check ? leak.options : null };
}

function fromOptions(v: Record<string, string | string[] | boolean | undefined>): ScanPlan {
  const str = (k: string): string | undefined => v[k] as string | undefined;
  const data = str('data');
  if (data === undefined || data === '') throw new UsageError('--data is required: nodetune scan --data FILE [--validation FILE] [--test FILE], or nodetune scan CONFIG.yaml');
  const format = str('format');
  if (format !== undefined && !(FORMATS as readonly string[]).includes(format)) throw new UsageError(`--format must be one of ${FORMATS.join(', ')}; got ${JSON.stringify(format)}`);
  const task = str('task');
  if (task !== undefined && !(TASKS as readonly string[]).includes(task)) throw new UsageError(`--task must be one of ${TASKS.join(', ')}; got ${JSON.stringify(task)}`);
  const columns = parseColumns(v.column as string[] | undefined);
  const badField = Object.keys(columns ?? {}).find((f) => !(FIELDS as readonly string[]).includes(f));
  if (badField !== undefined) throw new UsageError(`--column: unknown field ${JSON.stringify(badField)}; fields: ${FIELDS.join(', ')}`);
  const region = str('region');
  if (region !== undefined && !isSupportedCountry(region)) throw new UsageError(`--region must be a region code such as US or GB; got ${JSON.stringify(region)}`);
  const raw = str('threshold');
  const threshold = raw === undefined ? undefined : Number(raw);
  if (threshold !== undefined && !(threshold > 0 && threshold <= 1)) throw new UsageError(`--threshold must be a number in (0, 1]; got ${JSON.stringify(raw)}`);
  const sources: SplitSource[] = [{ split: 'train', spec: data }];
  for (const split of ['validation', 'test'] as const) {
    const f = str(split);
    if (f !== undefined) sources.push({ split, spec: f });
  }
  const opts = { ...(format ? { format: format as DataFormat } : {}), ...(columns ? { columns } : {}), ...(task ? { task: dataTask(task as ConfigTask) } : {}) };
  return { sources, read: (spec) => readWhole(spec, opts), pii: region ? { defaultRegion: region } : {}, leakage: threshold !== undefined ? { threshold } : {} };
}

const where = (l: { row: number; line?: number; field: string }): string => `${l.line !== undefined ? `line ${l.line}` : `row ${l.row}`} ${l.field}`;
const at = (r: RowLocation): string => ('file' in r ? `${r.file}:${r.line}` : `row ${r.row}`);

function formatScan(r: ScanReport): string {
  const out: string[] = [];
  for (const f of r.files) {
    out.push(`${f.split} ${f.source}: ${f.rows} rows, ${f.rowsWithPii} with PII${f.rowsDropped ? `, ${f.rowsDropped} would be dropped` : ''}`);
    const found = PII_TYPES.filter((t) => f.types[t].count > 0);
    if (found.length === 0) continue;
    for (const t of found) {
      const s = f.types[t];
      const more = s.count > LOCATIONS_SHOWN ? `, ... (${s.count - LOCATIONS_SHOWN} more)` : '';
      out.push(`  ${t}: ${s.count} in ${s.rows} rows (${s.action ?? 'not scrubbed'}) at ${s.locations.slice(0, LOCATIONS_SHOWN).map(where).join(', ')}${more}`);
    }
  }
  if (r.leakage) {
    out.push(describeLeakage(r.leakage));
    for (const p of r.leakage.pairs) out.push(`  ${p.split} ${at(p.heldOut)} ~ train ${at(p.train)} (${p.kind}${p.kind === 'near' ? ` ${p.similarity.toFixed(2)}` : ''})`);
  }
  return out.join('\n');
}

export async function scan(argv: string[], out: (s: string) => void): Promise<number> {
  const { values, positionals } = parseCliArgs({
    args: argv, strict: true, allowPositionals: true, options: {
      data: { type: 'string' }, validation: { type: 'string' }, test: { type: 'string' }, format: { type: 'string' }, column: { type: 'string', multiple: true },
      task: { type: 'string' }, region: { type: 'string' }, threshold: { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    out(SCAN_HELP);
    return 0;
  }
  if (positionals.length > 1) throw new UsageError(`one config file at most; got ${positionals.join(' ')}`);
  const config = positionals[0];
  const dataOptions = ['data', 'validation', 'test', 'format', 'column', 'task', 'region', 'threshold'].filter((k) => values[k as keyof typeof values] !== undefined);
  if (config !== undefined && dataOptions.length > 0) throw new UsageError(`give a config or --${dataOptions[0]} and the other data options, not both`);
  const plan = config !== undefined ? fromConfig(config) : fromOptions(values);
  const splits: Partial<Record<SplitSource['split'], Example[]>> = {};
  const report: ScanReport = { files: [], leakage: null };
  for (const s of plan.sources) {
    const rows = await plan.read(s.spec);
    splits[s.split] = rows;
    report.files.push({ split: s.split, source: describeSource(s.spec), ...scanPii(rows, plan.pii ? { pii: plan.pii } : {}) });
  }
  if (plan.leakage && (splits.validation || splits.test)) report.leakage = findLeakage({ train: splits.train!, validation: splits.validation ?? null, test: splits.test ?? null }, plan.leakage);
  out(values.json ? JSON.stringify(report, null, 2) : formatScan(report));
  return 0;
}
