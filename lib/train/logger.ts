/** Metrics as JSON Lines: one record per log or evaluation, appended as it happens. */
import * as fs from 'fs';
import * as path from 'path';
import { NodetuneError } from '../errors';
import type { LogRecord } from './checkpoint';

export class JsonlLogger {
  constructor(readonly file: string) {}

  /** Starts the file over with `records` (a fresh run, or the history of a resumed one). */
  reset(records: LogRecord[]): void {
    try {
      fs.mkdirSync(path.dirname(this.file), { recursive: true });
      fs.writeFileSync(this.file, records.map((r) => JSON.stringify(r) + '\n').join(''));
    } catch (e) {
      throw new NodetuneError('ERR_IO', `${this.file}: cannot write the metrics log (${(e as Error).message})`, { file: this.file });
    }
  }

  append(record: LogRecord): void {
    try {
      fs.appendFileSync(this.file, JSON.stringify(record) + '\n');
    } catch (e) {
      throw new NodetuneError('ERR_IO', `${this.file}: cannot append to the metrics log (${(e as Error).message})`, { file: this.file });
    }
  }

  /** Reads a metrics.jsonl back (for reports and tests). */
  static read(file: string): LogRecord[] {
    return fs.readFileSync(file, 'utf8').split('\n').filter((l) => l.trim().length > 0).map((l, i) => {
      try {
        return JSON.parse(l) as LogRecord;
      } catch {
        throw new NodetuneError('ERR_DATA', `${file}:${i + 1}: not a JSON record`, { file, line: i + 1 });
      }
    });
  }
}
