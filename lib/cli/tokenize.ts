/** `nodetune tokenize`: corpus statistics under a tokenizer (tokens, lengths, truncation rate). */
import { formatOption, parseCliArgs } from './args';
import { AutoTokenizer } from '../tokenizers';
import { TASKS } from './config/schema';
import { configTaskOption } from './task-names';
import { readFile } from './data';
import { intOption, required } from './model-task';
import { parseColumns } from './eval';
import { formatTable } from './table';
import type { Example } from '../data';

export const TOKENIZE_HELP = `Usage: nodetune tokenize --tokenizer DIR --data FILE [options]

Tokenizes the text fields of every example (with the tokenizer's special tokens) and prints: examples, total
tokens, tokens per example (mean, median, 95th percentile, max), characters per token, and how many examples a
--max-length would truncate.

Options:
  --tokenizer DIR     tokenizer folder, model folder or cached repo id                      (required)
  --data FILE         .jsonl, .json, .csv, .tsv or .txt; - for standard input (JSONL), or an  (required)
                      http(s) URL
  --task TASK         which fields to read: ${TASKS.join(', ')} (default classification;
                      the pipeline names text-classification, question-answering, ... work too)
  --format F          jsonl, json, csv, tsv, text, corpus or label-text (default: from the extension)
  --column F=COL      read canonical field F from column COL (repeatable)
  --max-length N      length limit for the truncation rate (default: the tokenizer's model_max_length, else 512)
  --json              print the statistics as JSON

Examples:
  nodetune tokenize --tokenizer runs/spam/model --data emails.jsonl --max-length 128
  nodetune tokenize --tokenizer gpt2 --data corpus.txt --task causal-lm --json`;

export interface CorpusStats {
  examples: number;
  tokens: number;
  mean: number;
  median: number;
  p95: number;
  max: number;
  charsPerToken: number;
  maxLength: number;
  truncated: number;
  truncationRate: number;
}

/** The texts of an example that the task's formatter encodes, as one input. */
function textsOf(ex: Example): string | [string, string] {
  if (ex.prompt !== undefined || ex.completion !== undefined) return `${ex.prompt ?? ''}${ex.completion ?? ''}`;
  if (ex.question !== undefined) return [ex.question, ex.context ?? ''];
  if (ex.tokens) return ex.tokens.join(' ');
  if (ex.messages) return ex.messages.map((m) => m.content).join('\n');
  return ex.textPair !== undefined ? [ex.text ?? '', ex.textPair] : ex.text ?? '';
}

export function corpusStats(lengths: number[], chars: number, maxLength: number): CorpusStats {
  const sorted = [...lengths].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
  const tokens = lengths.reduce((a, b) => a + b, 0);
  const truncated = lengths.filter((n) => n > maxLength).length;
  return {
    examples: lengths.length, tokens, mean: lengths.length ? tokens / lengths.length : 0, median: at(0.5), p95: at(0.95), max: sorted[sorted.length - 1] ?? 0,
    charsPerToken: tokens ? chars / tokens : 0, maxLength, truncated, truncationRate: lengths.length ? truncated / lengths.length : 0,
  };
}

export async function tokenize(argv: string[], out: (s: string) => void): Promise<number> {
  const { values } = parseCliArgs({
    args: argv, strict: true, options: {
      tokenizer: { type: 'string' }, data: { type: 'string' }, task: { type: 'string' }, column: { type: 'string', multiple: true },
      'max-length': { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' }, format: { type: 'string' },
    },
  });
  if (values.help) {
    out(TOKENIZE_HELP);
    return 0;
  }
  const usage = 'nodetune tokenize --tokenizer DIR --data FILE';
  const tokDir = required('tokenizer', values.tokenizer, usage);
  const file = required('data', values.data, usage);
  const task = configTaskOption(values.task ?? 'classification');
  const columns = parseColumns(values.column);
  const format = formatOption(values.format);
  const tok = await AutoTokenizer.fromPretrained(tokDir);
  const maxLength = intOption('max-length', values['max-length'], tok.modelMaxLength !== undefined && tok.modelMaxLength < 1e6 ? tok.modelMaxLength : 512);
  const examples = await readFile(file, { train: file, ...(columns ? { columns } : {}), ...(format ? { format } : {}) }, task, [], '--data');
  const inputs = examples.map(textsOf);
  const lengths: number[] = [];
  for (let i = 0; i < inputs.length; i += 256) for (const e of await tok.encodeBatch(inputs.slice(i, i + 256))) lengths.push(e.ids.length);
  const chars = inputs.reduce((a, t) => a + (typeof t === 'string' ? t.length : t[0].length + t[1].length), 0);
  const s = corpusStats(lengths, chars, maxLength);
  if (values.json) out(JSON.stringify({ file, ...s }, null, 2));
  else {
    out(`${file}: ${s.examples} examples under ${tokDir}`);
    out(formatTable(['statistic', 'value'], [
      ['tokens', String(s.tokens)], ['tokens per example, mean', s.mean.toFixed(1)], ['median', String(s.median)], ['95th percentile', String(s.p95)],
      ['max', String(s.max)], ['characters per token', s.charsPerToken.toFixed(2)],
      [`truncated at ${s.maxLength}`, `${s.truncated} (${(100 * s.truncationRate).toFixed(1)}%)`],
    ]));
  }
  return 0;
}
