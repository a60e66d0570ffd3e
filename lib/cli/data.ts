/** The config's data section → cleaned, split, labelled features, with a report of what was read and dropped. */
import * as fs from 'fs';
import { NodetuneError } from '../errors';
import { FORMAT_NAMES } from '../data/read';
import { classifySource } from '../data/sources/spec';
import { cleanExamples, describeReport, describeSource, newReport, readSource, splitExamples, LabelMap, featurizeFor } from '../data';
import type { DataFormat, Example, Feature, Seq2SeqFormat, SourceSpec, Task } from '../data';
import type { MlmTrainOptions } from '../train/mlm';
import type { PreTrainedTokenizer } from '../tokenizers';
import type { ConfigTask, DataConfig } from './config/schema';
import { piiOptions } from './config/privacy';
import { checkLeakage } from './leakage';

export interface PreparedData {
  train: Example[];
  validation: Example[] | null;
  test: Example[] | null;
  labels: LabelMap | null;
  /** One line per source: read, kept, dropped by cleaning. */
  notes: string[];
}

/** The data task a config task reads with: masked-lm reads plain texts, as causal-lm does. */
export function dataTask(task: ConfigTask): Task {
  return task === 'masked-lm' ? 'causal-lm' : task;
}

/** masked-lm: one example per non-empty line of a text (a corpus chunk holds many lines), so split and limit count sentences. */
function lines(ex: Example): Example[] {
  if (typeof ex.text !== 'string' || !ex.text.includes('\n')) return [ex];
  const out: Example[] = [];
  ex.text.split('\n').forEach((l, i) => {
    const text = l.trim();
    if (text.length > 0) out.push({ text, ...(ex.source ? { source: { file: ex.source.file, line: ex.source.line + i } } : {}) });
  });
  return out;
}

/** How `key` (a config key such as data.train, or a command's option such as --data) sets the format, for the hint of an unknown extension. */
function formatHint(key: string): string {
  const formats = FORMAT_NAMES.join(', ');
  return key.startsWith('--') ? `pass --format FORMAT (${formats}), e.g. --format label-text` : `set data.format (${formats}) in the config, e.g. data.format: label-text`;
}

/**
 * Reads one source whole (a file, `-`, a URL, a PostgreSQL query), cleaned and limited as `d` says; a note per source.
 * `key` names the source in errors and warnings: the config key (data.train) or the command's option (--data).
 */
export async function readFile(spec: SourceSpec, d: DataConfig, task: ConfigTask, notes: string[], key = 'data.train'): Promise<Example[]> {
  const file = describeSource(spec);
  const s = classifySource(spec);
  if (s.kind === 'file' && !fs.existsSync(s.path)) throw new NodetuneError('ERR_IO', `${key}: ${s.path} does not exist`, { file: s.path, field: key });
  const limit = d.limit ?? Infinity;
  const limited: Example[] = [];
  // Stops reading at the limit: a query's cursor is closed, a download stopped.
  for await (const ex of readSource(spec, { task: dataTask(task), formatHint: formatHint(key), ...(d.format ? { format: d.format as DataFormat } : {}), ...(d.columns ? { columns: d.columns } : {}) })) {
    for (const row of task === 'masked-lm' ? lines(ex) : [ex]) if (limited.length < limit) limited.push(row);
    if (limited.length >= limit) break;
  }
  if (limited.length >= limit && key !== 'data.train' && key.startsWith('data.'))
    notes.push(`warning: data.limit ${limit} also cut ${key} (${file}): reading stopped at ${limit} examples, so its metrics cover part of it only`);
  if (!d.clean) {
    notes.push(`${file}: ${limited.length} examples`);
    return limited;
  }
  const report = newReport();
  const kept: Example[] = [];
  const c = d.clean;
  const pii = piiOptions(d);
  const opts = {
    ...(c.stripHtml !== undefined ? { stripHtml: c.stripHtml } : {}), ...(c.dedupe !== undefined ? { dedupe: c.dedupe } : {}),
    ...(c.minChars !== undefined ? { minChars: c.minChars } : {}), ...(c.maxChars !== undefined ? { maxChars: c.maxChars } : {}),
    ...(c.normalize !== undefined ? { normalize: c.normalize } : {}), ...(c.whitespace !== undefined ? { whitespace: c.whitespace } : {}),
    ...(pii ? { pii } : {}),
  };
  async function* source() {
    yield* limited;
  }
  for await (const ex of cleanExamples(source(), opts, report)) kept.push(ex);
  notes.push(`${file}: ${describeReport(report)}`);
  return kept;
}

export async function prepareData(d: DataConfig, task: ConfigTask): Promise<PreparedData> {
  const notes: string[] = [];
  let train = await readFile(d.train, d, task, notes, 'data.train');
  let validation = d.validation ? await readFile(d.validation, d, task, notes, 'data.validation') : null;
  let test = d.test ? await readFile(d.test, d, task, notes, 'data.test') : null;
  const s = d.split;
  if (s && (s.validation || s.test)) {
    const ratios = { train: 1 - (validation ? 0 : s.validation ?? 0) - (test ? 0 : s.test ?? 0), ...(validation ? {} : { validation: s.validation ?? 0 }), ...(test ? {} : { test: s.test ?? 0 }) };
    const parts = splitExamples(train, { ratios, seed: s.seed ?? 1, stratify: s.stratify ?? (task === 'classification') });
    train = parts.train;
    if (!validation && s.validation) validation = parts.validation ?? null;
    if (!test && s.test) test = parts.test ?? null;
    notes.push(`split: train ${train.length}, validation ${validation?.length ?? 0}, test ${test?.length ?? 0}`);
  }
  train = checkLeakage(train, validation, test, d, notes);
  if (train.length === 0) throw new NodetuneError('ERR_DATA', `${describeSource(d.train)}: no training examples`, { file: describeSource(d.train) });
  let labels: LabelMap | null = null;
  if (task === 'classification' || task === 'token-classification') {
    const field = task === 'classification' ? 'label' : 'tags';
    // From the training data only: a validation or test label that training lacks is ERR_DATA naming its file and line
    // when it is encoded (as with data.labels), never a wider head.
    labels = d.labels ? new LabelMap(d.labels) : LabelMap.fromExamples(train, field);
  }
  return { train, validation, test, labels, notes };
}

/** seq2seq: the data section's templates and lengths (maxLength is an alias of maxSourceLength). */
export function seq2seqFormat(d: DataConfig): Seq2SeqFormat {
  const maxSource = d.maxSourceLength ?? d.maxLength;
  return {
    ...(d.sourceTemplate !== undefined ? { sourceTemplate: d.sourceTemplate } : {}), ...(d.targetTemplate !== undefined ? { targetTemplate: d.targetTemplate } : {}),
    ...(maxSource !== undefined ? { maxSourceLength: maxSource } : {}), ...(d.maxTargetLength !== undefined ? { maxTargetLength: d.maxTargetLength } : {}),
    ...(d.truncateTarget !== undefined ? { truncateTarget: d.truncateTarget } : {}),
  };
}

/** masked-lm: the Trainer's masking options (each text cut to data.maxLength, default 128). */
export function mlmOptions(d: DataConfig): MlmTrainOptions {
  return {
    ...(d.mlmProbability !== undefined ? { mlmProbability: d.mlmProbability } : {}), ...(d.wholeWordMasking !== undefined ? { wholeWordMasking: d.wholeWordMasking } : {}),
    ...(d.maxLength !== undefined ? { maxLength: d.maxLength } : {}),
  };
}

/** Features for one split (labels as ids, QA windows, causal-LM blocks, seq2seq sources and targets...); masked-lm:
 * the raw texts (one per non-empty line, see readFile), which the Trainer tokenizes and masks afresh each epoch. */
export async function featurize(tok: PreTrainedTokenizer, d: DataConfig, task: ConfigTask, labels: LabelMap | null, examples: Example[]): Promise<Feature[] | string[]> {
  if (task === 'masked-lm') {
    // Each text is cut to data.maxLength tokens by the Trainer.
    return examples.map((ex) => {
      if (typeof ex.text === 'string') return ex.text;
      const src = ex.source;
      throw new NodetuneError('ERR_DATA', `${src ? `${src.file}:${src.line}: ` : ''}masked-lm needs a "text" on every example`, { ...(src ? { file: src.file, line: src.line } : {}), field: 'text' });
    });
  }
  return featurizeFor(tok, {
    task,
    ...(d.maxLength !== undefined ? { maxLength: d.maxLength } : {}),
    ...(d.stride !== undefined ? { stride: d.stride } : {}),
    ...(d.blockSize !== undefined ? { blockSize: d.blockSize } : {}),
    ...(labels ? { labels: [...labels.labels] } : {}),
    ...(task === 'seq2seq' ? { seq2seq: seq2seqFormat(d) } : {}),
  }, examples);
}
