/** Which pipeline task a model folder serves, from --task or config.json's architectures. */
import * as fs from 'fs';
import * as path from 'path';
import { NodetuneError } from '../errors';
import { resolveModelDir } from '../models';
import type { Task } from '../models';
import { adapterTask } from '../peft/adapter-info';
import type { PipelineTask } from '../pipelines';
import { UsageError } from './usage';
import { PIPELINE_TASKS, pipelineTaskOption } from './task-names';

export { PIPELINE_TASKS };

const FOR_MODEL_TASK: Record<Task, PipelineTask> = {
  'sequence-classification': 'text-classification', 'token-classification': 'token-classification', 'question-answering': 'question-answering',
  'causal-lm': 'text-generation', 'seq2seq-lm': 'text2text-generation', 'masked-lm': 'fill-mask',
};

/** --task, else the adapter's task (adapter_config.json's task_type), else config.json's architectures. */
export function pipelineTask(modelDir: string, task: string | undefined, adapter?: string): PipelineTask {
  if (task !== undefined) return pipelineTaskOption(task);
  if (adapter !== undefined) return FOR_MODEL_TASK[adapterTask(adapter)];
  const file = path.join(resolveModelDir(modelDir), 'config.json');
  const config = JSON.parse(fs.readFileSync(file, 'utf8')) as { architectures?: string[] };
  const arch = config.architectures?.[0] ?? '';
  if (/ForSequenceClassification$/.test(arch)) return 'text-classification';
  if (/ForTokenClassification$/.test(arch)) return 'token-classification';
  if (/ForQuestionAnswering$/.test(arch)) return 'question-answering';
  if (/ForCausalLM$|LMHeadModel$/.test(arch)) return 'text-generation';
  if (/ForConditionalGeneration$/.test(arch)) return 'text2text-generation';
  if (/ForMaskedLM$/.test(arch)) return 'fill-mask';
  throw new NodetuneError('ERR_CONFIG', `${file}: architectures ${JSON.stringify(config.architectures ?? null)} names no task; pass --task (${PIPELINE_TASKS.join(', ')})`, { file, field: 'architectures' });
}

/** A positive integer option, or a usage error naming it. */
export function intOption(name: string, v: string | undefined, dflt: number, min = 1): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new UsageError(`--${name} must be an integer of at least ${min}; got ${JSON.stringify(v)}`);
  return n;
}

export function numOption(name: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new UsageError(`--${name} must be a non-negative number; got ${JSON.stringify(v)}`);
  return n;
}

export function required(name: string, v: string | undefined, usage: string): string {
  if (v === undefined || v === '') throw new UsageError(`--${name} is required: ${usage}`);
  return v;
}
