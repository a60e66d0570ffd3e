/** CSV/TSV through csv-parse, fed from the UTF-8-checked line reader so that memory stays bounded. */
import { parse } from 'csv-parse';
import { NodetuneError } from '../errors';
import { readLines } from './lines';
import type { Line } from './lines';

export interface CsvOptions {
  /** Field delimiter; ',' for .csv, '\t' for .tsv. */
  delimiter?: string;
  /** Column names when the file has no header row. */
  columnNames?: string[];
}

interface Parsed {
  record: Record<string, string>;
  info: { lines: number };
}

function countNewlines(record: Record<string, string>): number {
  let n = 0;
  for (const v of Object.values(record)) for (let i = v.indexOf('\n'); i !== -1; i = v.indexOf('\n', i + 1)) n++;
  return n;
}

export function readCsv(file: string, opts: CsvOptions & { delimiter: string }): AsyncGenerator<{ row: Record<string, string>; line: number }> {
  return parseCsv(file, readLines(file), opts);
}

/** CSV rows from lines of any source; `name` (a file, a URL, stdin) is what the errors name. */
export async function* parseCsv(name: string, lines: AsyncIterable<Line>, opts: CsvOptions & { delimiter: string }): AsyncGenerator<{ row: Record<string, string>; line: number }> {
  const parser = parse({
    delimiter: opts.delimiter,
    columns: opts.columnNames ?? true,
    info: true,
    bom: true,
    skip_empty_lines: true,
    relax_quotes: false,
    quote: opts.delimiter === '\t' ? false : '"',
  });
  let feedError: unknown;
  const feed = (async () => {
    try {
      for await (const { text } of lines) {
        if (parser.destroyed) return; // the consumer stopped early
        if (!parser.write(text + '\n')) {
          await new Promise<void>((resolve) => {
            const done = (): void => { parser.off('drain', done); parser.off('close', done); resolve(); };
            parser.once('drain', done);
            parser.once('close', done);
          });
        }
      }
      if (!parser.destroyed) parser.end();
    } catch (e) {
      feedError = e;
      parser.destroy(e as Error);
    }
  })();
  try {
    for await (const item of parser as AsyncIterable<Parsed>) {
      yield { row: item.record, line: item.info.lines - countNewlines(item.record) };
    }
  } catch (e) {
    if (feedError) throw feedError;
    const err = e as Error & { lines?: number; code?: string };
    const line = err.lines ?? 0;
    throw new NodetuneError('ERR_DATA', `${name}:${line}: malformed CSV (${err.code ?? 'parse error'}): ${err.message}`, { file: name, line });
  } finally {
    parser.destroy();
    await feed;
  }
  if (feedError) throw feedError;
}
