/** `nodetune eval`: the task's metrics of a model (plus an optional adapter) on a labelled data file. */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { parseCliArgs, formatOption } from './args';
import { AutoModel } from '../models';
import { AutoTokenizer } from '../tokenizers';
import { LabelMap } from '../data';
import { Trainer } from '../train';
import { TASKS } from './config/schema';
import { configTaskOption } from './task-names';
import { collapseWarning } from './collapse';
import type { ConfigTask, DataConfig } from './config/schema';
import { featurize, mlmOptions, readFile } from './data';
import { MODEL_TASK } from './run-train';
import { intOption, required } from './model-task';
import { formatTable, fmt } from './table';
import { adapterLabels } from '../peft/adapter-info';
import { UsageError } from './usage';

export const EVAL_HELP = `Usage: nodetune eval --model DIR --data FILE --task TASK [options]

Computes the task's metrics on a labelled file: loss and accuracy, macro-F1, per-label precision/recall
(classification); perplexity (causal-lm, instruction, chat); token accuracy and entity F1 (token-classification);
exact match and F1 (qa); loss, perplexity, token accuracy and, from generated text, exact match, F1, ROUGE-L and
BLEU (seq2seq); loss, perplexity and accuracy on masked tokens (masked-lm: the mask is drawn with --seed).
Label names come from the model's config.json (id2label).

Options:
  --model DIR          model folder or cached repo id                                          (required)
  --data FILE          .jsonl, .json, .csv, .tsv or .txt file with the task's fields, - (stdin)  (required)
                       or an http(s) URL
  --task TASK          ${TASKS.join(', ')}   (required;
                       the pipeline names text-classification, question-answering, ... work too)
  --format F           jsonl, json, csv, tsv, text, corpus or label-text (default: from the extension;
                       label-text: "label sentence" lines, as SST-2's files)
  --adapter DIR        a PEFT adapter folder applied on top of the model
  --column F=COL       read canonical field F from column COL (repeatable), e.g. --column label=stars
  --max-length N       truncate inputs to N tokens
  --block-size N       causal-lm: tokens per block (default 128)
  --batch-size N       rows per forward pass (default 16)
  --source-template T  seq2seq: encoder input from each record's fields (default '{prompt}')
  --target-template T  seq2seq: the reference text (default '{completion}')
  --max-source-length N, --max-target-length N   seq2seq: tokens (EOS included; default 512 / 128)
  --max-new-tokens N   seq2seq: tokens generated per row for the text metrics (default 64)
  --num-beams N        seq2seq: beam search with N beams (default 1: greedy)
  --mlm-probability P  masked-lm: share of tokens masked (default 0.15)
  --whole-word-masking masked-lm: mask whole words
  --seed N             masked-lm: seed of the mask (default 42)
  --json               print the metrics as JSON

Examples:
  nodetune eval --model runs/spam/model --data test.jsonl --task classification
  nodetune eval --model base --adapter runs/spam/adapter --data reviews.csv --task classification --column text=review
  nodetune eval --model runs/t5/model --data dev.jsonl --task seq2seq --source-template 'question: {question}' --target-template '{answer}'`;

export function parseColumns(list: string[] | undefined): Record<string, string> | undefined {
  if (!list || list.length === 0) return undefined;
  const out: Record<string, string> = {};
  for (const c of list) {
    const eq = c.indexOf('=');
    if (eq <= 0 || eq === c.length - 1) throw new UsageError(`--column must be FIELD=COLUMN, got ${JSON.stringify(c)}`);
    out[c.slice(0, eq)] = c.slice(eq + 1);
  }
  return out;
}

export async function evaluate(argv: string[], out: (s: string) => void): Promise<number> {
  const { values } = parseCliArgs({
    args: argv, strict: true, options: {
      model: { type: 'string' }, data: { type: 'string' }, task: { type: 'string' }, adapter: { type: 'string' }, column: { type: 'string', multiple: true },
      'max-length': { type: 'string' }, 'block-size': { type: 'string' }, 'batch-size': { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
      'source-template': { type: 'string' }, 'target-template': { type: 'string' }, 'max-source-length': { type: 'string' }, 'max-target-length': { type: 'string' },
      'max-new-tokens': { type: 'string' }, 'num-beams': { type: 'string' }, 'mlm-probability': { type: 'string' }, 'whole-word-masking': { type: 'boolean' },
      seed: { type: 'string' }, format: { type: 'string' },
    },
  });
  if (values.help) {
    out(EVAL_HELP);
    return 0;
  }
  const usage = 'nodetune eval --model DIR --data FILE --task TASK';
  const modelDir = required('model', values.model, usage);
  const file = required('data', values.data, usage);
  const task = required('task', values.task, usage);
  const t = configTaskOption(task);
  const columns = parseColumns(values.column);
  const format = formatOption(values.format);
  const d: DataConfig = {
    train: file, ...(columns ? { columns } : {}), ...(format ? { format } : {}), blockSize: intOption('block-size', values['block-size'], 128),
    ...(values['max-length'] !== undefined ? { maxLength: intOption('max-length', values['max-length'], 0) } : {}),
    ...(values['source-template'] !== undefined ? { sourceTemplate: values['source-template'] } : {}),
    ...(values['target-template'] !== undefined ? { targetTemplate: values['target-template'] } : {}),
    ...(values['max-source-length'] !== undefined ? { maxSourceLength: intOption('max-source-length', values['max-source-length'], 0) } : {}),
    ...(values['max-target-length'] !== undefined ? { maxTargetLength: intOption('max-target-length', values['max-target-length'], 0) } : {}),
    ...(values['whole-word-masking'] ? { wholeWordMasking: true } : {}),
  };
  const own: Array<[string, ConfigTask]> = [['source-template', 'seq2seq'], ['target-template', 'seq2seq'], ['max-source-length', 'seq2seq'], ['max-target-length', 'seq2seq'],
    ['max-new-tokens', 'seq2seq'], ['num-beams', 'seq2seq'], ['mlm-probability', 'masked-lm'], ['whole-word-masking', 'masked-lm'], ['seed', 'masked-lm']];
  for (const [k, only] of own) if (values[k as keyof typeof values] !== undefined && t !== only) throw new UsageError(`--${k} applies to --task ${only} only, not ${t}`);
  if (values['mlm-probability'] !== undefined) {
    const p = Number(values['mlm-probability']);
    if (!(p > 0 && p < 1)) throw new UsageError(`--mlm-probability must be a number in (0, 1); got ${JSON.stringify(values['mlm-probability'])}`);
    d.mlmProbability = p;
  }
  // A classification adapter from `nodetune train` names its labels (and so its head size) in labels.json.
  const labelNames = values.adapter ? adapterLabels(values.adapter) : null;
  const model = await AutoModel.fromPretrained(modelDir, { task: MODEL_TASK[t], quiet: true, ...(labelNames ? { numLabels: labelNames.length } : {}) });
  if (values.adapter) await model.loadAdapter(values.adapter);
  if (labelNames) Object.assign(model.config, new LabelMap(labelNames).toConfig());
  const tokenizer = await AutoTokenizer.fromPretrained(modelDir);
  const id2label = model.config.id2label as Record<string, string> | undefined;
  const labels = (t === 'classification' || t === 'token-classification') && id2label ? LabelMap.fromConfig(id2label) : null;
  const examples = await readFile(file, d, t, [], '--data');
  const features = await featurize(tokenizer, d, t, labels, examples);
  if (!(typeof model.config.type_vocab_size === 'number' && model.config.type_vocab_size > 0)) for (const f of features) if (typeof f !== 'string') delete f.tokenTypeIds;
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nodetune-eval-'));
  try {
    const generation = t === 'seq2seq' ? { predictWithGenerate: true, generationMaxNewTokens: intOption('max-new-tokens', values['max-new-tokens'], 64),
      generationNumBeams: intOption('num-beams', values['num-beams'], 1) } : {};
    const trainer = new Trainer({ model, tokenizer, train: features, validation: features, ...(t === 'masked-lm' ? { mlm: mlmOptions(d) } : {}),
      args: { outputDir: tmp, batchSize: intOption('batch-size', values['batch-size'], 16), report: false, seed: intOption('seed', values.seed, 42, 0), ...generation } });
    const { metrics, confusion } = await trainer.evaluate('validation');
    if (values.json) out(JSON.stringify({ examples: examples.length, features: features.length, metrics, ...(confusion ? { confusion } : {}) }, null, 2));
    else {
      out(`${file}: ${examples.length} examples, ${features.length} features`);
      out(formatTable(['metric', 'value'], Object.entries(metrics).map(([k, v]) => [k, fmt(v)])));
    }
    const collapsed = collapseWarning(file, confusion, labels ? labels.labels : null);
    if (collapsed) process.stderr.write(`nodetune eval: ${collapsed}\n`);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  return 0;
}
