/** predict --format: the input rows of a CSV, TSV, JSON, text or label-text file, as objects (JSONL is read by predict itself). */
import { readExamples } from '../data';
import type { DataFormat } from '../data';

/** Each row as the object written back with its prediction: a CSV/JSON record as read, a text line as { text } ({ label, text } for label-text). */
export async function readFormattedRows(file: string, format: DataFormat): Promise<Record<string, unknown>[]> {
  const rows: Record<string, unknown>[] = [];
  for await (const ex of readExamples(file, { format, keepRecord: true })) {
    const { source, record, ...fields } = ex;
    rows.push({ ...(record ?? fields), __line: source?.line });
  }
  return rows;
}
