/** `nodetune predict`: JSONL in, JSONL out, through the pipeline of the model's task. */
import * as fs from 'fs';
import { formatOption, parseCliArgs } from './args';
import { readFormattedRows } from './predict-input';
import { NodetuneError } from '../errors';
import { pipeline } from '../pipelines';
import type { PipelineTask } from '../pipelines';
import { intOption, pipelineTask, required } from './model-task';

export const PREDICT_HELP = `Usage: nodetune predict --model DIR --input FILE.jsonl [--output FILE.jsonl] [options]

Runs every line of a JSONL file through the model and writes each input object back with a "prediction"
field, in order (to --output, else to standard output). What a line needs, by task:
  text-classification    {"text": ...} (and "textPair" for pairs)  -> {"label", "score", "scores"}
  token-classification   {"text": ...}                            -> [{"entity", "score", "word", "start", "end"}]
  question-answering     {"question": ..., "context": ...}         -> {"answer", "score", "start", "end"}
  text-generation        {"prompt": ...} or {"text": ...}           -> {"text", "finishReason", ...}
  text2text-generation   {"text": ...} (also summarization, translation) -> {"generated_text"} (summary_text, translation_text)
  fill-mask              {"text": ...} with the mask token            -> [{"score", "token", "token_str", "sequence"}]

Options:
  --model DIR          model folder or cached repo id                                   (required)
  --input FILE         JSONL input, or another format with --format                     (required)
  --format F           jsonl (default), json, csv, tsv, text or label-text: a CSV/JSON row is written
                       back as read, a text line as {"text"} ({"label", "text"} for label-text)
  --output FILE        JSONL output (default: standard output)
  --adapter DIR        a PEFT adapter folder applied on top of the model
  --task TASK          text-classification, token-classification, question-answering, text-generation,
                       text2text-generation, summarization, translation, fill-mask
                       (the config names classification, qa, causal-lm, seq2seq, masked-lm work too;
                       default: the adapter's task_type with --adapter, else config.json's architectures)
  --max-new-tokens N   text-generation, text2text-generation: tokens per answer (default 32)
  --num-beams N        text2text-generation: beam search with N beams (default 1: greedy)
  --top-k N            fill-mask: candidates per mask (default 5)

Examples:
  nodetune predict --model runs/spam/model --input emails.jsonl --output predictions.jsonl
  nodetune predict --model base --adapter runs/spam/adapter --input emails.jsonl`;

type Row = Record<string, unknown>;

function readRows(file: string): Row[] {
  if (!fs.existsSync(file)) throw new NodetuneError('ERR_IO', `${file}: no such input file`, { file });
  const rows: Row[] = [];
  fs.readFileSync(file, 'utf8').split('\n').forEach((line, i) => {
    if (line.trim() === '') return;
    let v: unknown;
    try {
      v = JSON.parse(line);
    } catch (e) {
      throw new NodetuneError('ERR_DATA', `${file}:${i + 1}: not valid JSON (${(e as Error).message})`, { file, line: i + 1 });
    }
    if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new NodetuneError('ERR_DATA', `${file}:${i + 1}: each line must be a JSON object`, { file, line: i + 1 });
    (v as Row)['__line'] = i + 1;
    rows.push(v as Row);
  });
  return rows;
}

function field(file: string, row: Row, name: string, task: string): string {
  const v = row[name];
  if (typeof v !== 'string') throw new NodetuneError('ERR_DATA', `${file}:${row.__line}: ${task} needs a string "${name}" on every line`, { file, line: row.__line as number, field: name });
  return v;
}

interface RunOptions { maxNewTokens: number; numBeams: number; topK: number }

async function runAll(task: PipelineTask, model: string, adapter: string | undefined, file: string, rows: Row[], o: RunOptions): Promise<unknown[]> {
  const opts = adapter ? { adapter } : {};
  if (rows.length === 0) return [];
  switch (task) {
    case 'text-classification': {
      const p = await pipeline(task, model, opts);
      const texts = rows.map((r) => field(file, r, 'text', task));
      // Rows without a pair go through the pipeline's micro-batches together; pairs one call each.
      if (rows.every((r) => typeof r.textPair !== 'string')) return p(texts);
      return Promise.all(rows.map((r, i) => p(texts[i]!, typeof r.textPair === 'string' ? { textPair: r.textPair } : {})));
    }
    case 'token-classification': {
      const p = await pipeline(task, model, opts);
      return p(rows.map((r) => field(file, r, 'text', task)), { aggregation: 'simple' });
    }
    case 'question-answering': {
      const p = await pipeline(task, model, opts);
      return p(rows.map((r) => ({ question: field(file, r, 'question', task), context: field(file, r, 'context', task) })));
    }
    case 'text-generation': {
      const p = await pipeline(task, model, opts);
      return p(rows.map((r) => (typeof r.prompt === 'string' ? r.prompt : field(file, r, 'text', task))), { maxNewTokens: o.maxNewTokens });
    }
    case 'text2text-generation':
    case 'summarization':
    case 'translation': {
      const p = await pipeline(task, model, opts);
      return p(rows.map((r) => field(file, r, 'text', task)), { maxNewTokens: o.maxNewTokens, numBeams: o.numBeams });
    }
    case 'fill-mask': {
      const p = await pipeline(task, model, opts);
      return p(rows.map((r) => field(file, r, 'text', task)), { topK: o.topK });
    }
  }
}

export async function predict(argv: string[], out: (s: string) => void): Promise<number> {
  const { values } = parseCliArgs({
    args: argv, strict: true, options: {
      model: { type: 'string' }, input: { type: 'string' }, output: { type: 'string' }, adapter: { type: 'string' }, task: { type: 'string' },
      'max-new-tokens': { type: 'string' }, 'num-beams': { type: 'string' }, 'top-k': { type: 'string' }, help: { type: 'boolean', short: 'h' }, format: { type: 'string' },
    },
  });
  if (values.help) {
    out(PREDICT_HELP);
    return 0;
  }
  const usage = 'nodetune predict --model DIR --input FILE.jsonl [--output FILE.jsonl]';
  const model = required('model', values.model, usage);
  const input = required('input', values.input, usage);
  const run = { maxNewTokens: intOption('max-new-tokens', values['max-new-tokens'], 32), numBeams: intOption('num-beams', values['num-beams'], 1),
    topK: intOption('top-k', values['top-k'], 5) };
  const task = pipelineTask(model, values.task, values.adapter);
  const format = formatOption(values.format);
  const rows = format === undefined || format === 'jsonl' ? readRows(input) : await readFormattedRows(input, format);
  const predictions = await runAll(task, model, values.adapter, input, rows, run);
  const lines = rows.map((r, i) => {
    const { __line: _line, ...rest } = r;
    return JSON.stringify({ ...rest, prediction: predictions[i] });
  });
  if (values.output) fs.writeFileSync(values.output, lines.length > 0 ? lines.join('\n') + '\n' : '');
  else for (const l of lines) out(l);
  return 0;
}
