/**
 * Reading examples: JSONL (streamed), JSON arrays, CSV/TSV (csv-parse, streamed), plain text (a line per example,
 * or a whole corpus in chunks for language modelling) and the `label text` line format.
 */
import * as path from 'path';
import { NodetuneError, check } from '../errors';
import { TASK_FIELDS, toExample as toCanonical } from './example';
import type { ColumnMap, Example, Field, Source, Task } from './example';
import { parseCsv } from './read-csv';
import type { CsvOptions } from './read-csv';
import { readJsonArray } from './read-json';
import { readLines } from './lines';
import type { Line } from './lines';

export type DataFormat = 'jsonl' | 'json' | 'csv' | 'tsv' | 'text' | 'corpus' | 'label-text';

export interface ReadOptions {
  /** Inferred from the extension (.jsonl/.ndjson, .json, .csv, .tsv, .txt) when omitted. */
  format?: DataFormat;
  /** canonical field → the column it is read from, e.g. { text: 'sentence', label: 'sentiment' }. */
  columns?: ColumnMap;
  /** The task whose fields each example must have (see TASK_FIELDS); or list them in `required`. */
  task?: Task;
  required?: Field[];
  csv?: CsvOptions;
  /** Keep each raw record on its example (`record`), for seq2seq templates over any column; on with task 'seq2seq'. */
  keepRecord?: boolean;
  /** corpus format: the approximate size in characters of each chunk (split after a line break). Default 64 KiB. */
  chunkChars?: number;  /** How the caller names the format option, for the hint of an unknown extension (default: the JavaScript option,
   * `pass { format: ... }`); the CLI says `--format F` or `data.format: F`. */
  formatHint?: string;
}

export const FORMAT_NAMES: readonly DataFormat[] = ['jsonl', 'json', 'csv', 'tsv', 'text', 'corpus', 'label-text'];

export function inferFormat(file: string, hint = `pass { format: ${FORMAT_NAMES.map((f) => `'${f}'`).join(' | ')} }`): DataFormat {
  const ext = path.extname(file).toLowerCase();
  switch (ext) {
    case '.jsonl': case '.ndjson': return 'jsonl';
    case '.json': return 'json';
    case '.csv': return 'csv';
    case '.tsv': return 'tsv';
    case '.txt': return 'text';
    default:
      throw new NodetuneError('ERR_ARGUMENT',
        `cannot tell the format of ${file} from its extension "${ext}"; ${hint}`,
        { file, field: 'format' });
  }
}

function requiredFields(opts: ReadOptions, format: DataFormat): Field[] {
  if (opts.required) return opts.required;
  if (opts.task) return TASK_FIELDS[opts.task];
  return format === 'label-text' ? ['text', 'label'] : [];
}

function asRecord(value: unknown, file: string, line: number): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new NodetuneError('ERR_DATA', `${file}:${line}: expected a JSON object per example, got ${Array.isArray(value) ? 'an array' : JSON.stringify(value)}`, { file, line });
  }
  return value as Record<string, unknown>;
}

/** Maps raw records (JSON objects, CSV rows, database rows) onto examples: `opts.columns`, the required fields, `keepRecord`. */
export function recordMapper(opts: ReadOptions, format: DataFormat = 'jsonl'): (row: Record<string, unknown>, src: Source) => Example {
  const required = requiredFields(opts, format);
  const columns = opts.columns ?? {};
  const keep = opts.keepRecord === true || opts.task === 'seq2seq';
  return (row, src) => {
    const ex = toCanonical(row, src, columns, required);
    if (keep) ex.record = row;
    return ex;
  };
}

/** Streams the examples of one file. Each carries `source: { file, line }`. */
export async function* readExamples(file: string, opts: ReadOptions = {}): AsyncGenerator<Example> {
  check(typeof file === 'string' && file.length > 0, 'readExamples: a file path is required', 'file');
  const format = opts.format ?? inferFormat(file, ...(opts.formatHint !== undefined ? [opts.formatHint] : []));
  if (format === 'json') {
    const toExample = recordMapper(opts, format);
    for (const { value, line } of readJsonArray(file)) yield toExample(asRecord(value, file, line), { file, line });
    return;
  }
  yield* examplesFromLines(file, readLines(file), format, opts);
}

/**
 * The examples in the lines of any source (a file, a URL, standard input, a stream), in every format but `json`
 * (an array, parsed whole). `name` is the source each example and error names.
 */
export async function* examplesFromLines(name: string, lines: AsyncIterable<Line>, format: DataFormat, opts: ReadOptions = {}): AsyncGenerator<Example> {
  const toExample = recordMapper(opts, format);
  switch (format) {
    case 'jsonl':
      for await (const { text, line } of lines) {
        if (text.trim() === '') continue;
        let value: unknown;
        try {
          value = JSON.parse(text);
        } catch (e) {
          throw new NodetuneError('ERR_DATA', `${name}:${line}: malformed JSON line: ${(e as Error).message}`, { file: name, line });
        }
        yield toExample(asRecord(value, name, line), { file: name, line });
      }
      return;
    case 'csv':
    case 'tsv': {
      const delimiter = opts.csv?.delimiter ?? (format === 'tsv' ? '\t' : ',');
      for await (const { row, line } of parseCsv(name, lines, { ...opts.csv, delimiter })) yield toExample(row, { file: name, line });
      return;
    }
    case 'text':
      for await (const { text, line } of lines) {
        if (text.trim() !== '') yield { text, source: { file: name, line } };
      }
      return;
    case 'label-text':
      for await (const { text, line } of lines) {
        if (text.trim() === '') continue;
        const m = /^\s*(\S+)\s+(.*)$/.exec(text);
        if (!m) throw new NodetuneError('ERR_DATA', `${name}:${line}: expected "label text", got ${JSON.stringify(text.slice(0, 80))}`, { file: name, line, field: 'text' });
        const label = (m[1] as string).replace(/^__label__/, '');
        yield { label, text: m[2] as string, source: { file: name, line } };
      }
      return;
    case 'corpus':
      yield* readCorpus(name, lines, opts.chunkChars ?? 1 << 16);
      return;
    case 'json':
      throw new NodetuneError('ERR_ARGUMENT', `${name}: format json (one array, parsed whole) is read from files only; give JSONL (one object per line) instead`, { file: name, field: 'format' });
    default:
      throw new NodetuneError('ERR_ARGUMENT', `unknown format ${JSON.stringify(format)}`, { field: 'format' });
  }
}

/** One document in chunks of about `chunkChars`, each cut after a line break; chunks after the first are continuations. */
async function* readCorpus(file: string, lines: AsyncIterable<Line>, chunkChars: number): AsyncGenerator<Example> {
  check(Number.isInteger(chunkChars) && chunkChars > 0, 'chunkChars must be a positive integer', 'chunkChars');
  let parts: string[] = [];
  let size = 0;
  let startLine = 1;
  let first = true;
  for await (const { text, line } of lines) {
    // Cut only before a non-empty line, so that a run of newlines stays in one chunk (and in one token).
    if (size >= chunkChars && text !== '') {
      yield { text: parts.join(''), continuation: !first, source: { file, line: startLine } };
      first = false;
      parts = [];
      size = 0;
      startLine = line;
    }
    parts.push(text, '\n');
    size += text.length + 1;
  }
  if (size > 0) yield { text: parts.join(''), continuation: !first, source: { file, line: startLine } };
}

/** Reads a whole file into memory (for splitting and label maps on small data). */
export async function readAll(file: string, opts: ReadOptions = {}): Promise<Example[]> {
  const out: Example[] = [];
  for await (const ex of readExamples(file, opts)) out.push(ex);
  return out;
}
