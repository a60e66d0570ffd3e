/** What an adapter folder says about the model it goes on: the task (adapter_config.json's task_type) and, for a
 * classification adapter written by `nodetune train`, the label names (labels.json beside it; PEFT stores none). */
import * as fs from 'fs';
import * as path from 'path';
import { NodetuneError } from '../errors';
import type { Task } from '../models/config';
import { CONFIG_FILE, readAdapterConfig } from './files';

export const LABELS_FILE = 'labels.json';

// PEFT's task types; null (PEFT's generic PeftModel) is what nodetune writes for a masked-LM adapter.
const TASKS: Record<string, Task> = {
  CAUSAL_LM: 'causal-lm', SEQ_CLS: 'sequence-classification', TOKEN_CLS: 'token-classification', QUESTION_ANS: 'question-answering',
  SEQ_2_SEQ_LM: 'seq2seq-lm', null: 'masked-lm',
};

/** The model task of an adapter folder, from adapter_config.json's task_type. */
export function adapterTask(dir: string): Task {
  const cfg = readAdapterConfig(dir);
  const type = 'task_type' in cfg ? cfg.task_type : undefined;
  const task = TASKS[String(type)];
  if (!task) {
    const allowed = Object.keys(TASKS).filter((k) => k !== 'null').join(', ');
    throw new NodetuneError('ERR_CONFIG', `${path.join(dir, CONFIG_FILE)}: task_type ${JSON.stringify(type)} is not one of ${allowed}`, { file: dir, field: 'task_type' });
  }
  return task;
}

/** The label names in id order from labels.json in the adapter folder, or null when there is none. */
export function adapterLabels(dir: string): string[] | null {
  const file = path.join(dir, LABELS_FILE);
  if (!fs.existsSync(file)) return null;
  let labels: unknown;
  try {
    labels = (JSON.parse(fs.readFileSync(file, 'utf8')) as { labels?: unknown }).labels;
  } catch (e) {
    throw new NodetuneError('ERR_CONFIG', `${file}: not valid JSON (${(e as Error).message})`, { file });
  }
  if (!Array.isArray(labels) || labels.length === 0 || !labels.every((l) => typeof l === 'string'))
    throw new NodetuneError('ERR_CONFIG', `${file}: labels must be a non-empty list of names`, { file, field: 'labels' });
  return labels as string[];
}
