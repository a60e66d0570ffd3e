/**
 * The two spellings of a task: the config's (`classification`, `qa`, ...; train, eval, tokenize) and the pipeline's
 * (`text-classification`, `question-answering`, ...; predict). Every command takes either.
 */
import type { PipelineTask } from '../pipelines';
import { TASKS } from './config/schema';
import type { ConfigTask } from './config/schema';
import { UsageError } from './usage';
import { didYouMean } from '../util/suggest';

/** Pipeline names → the config task that reads and evaluates such data. */
export const CONFIG_TASK_OF: Readonly<Record<PipelineTask, ConfigTask>> = {
  'text-classification': 'classification', 'token-classification': 'token-classification', 'question-answering': 'qa', 'text-generation': 'causal-lm',
  'text2text-generation': 'seq2seq', summarization: 'seq2seq', translation: 'seq2seq', 'fill-mask': 'masked-lm',
};

/** Config names → the pipeline that serves such a model. */
export const PIPELINE_TASK_OF: Readonly<Record<ConfigTask, PipelineTask>> = {
  classification: 'text-classification', 'token-classification': 'token-classification', qa: 'question-answering', 'causal-lm': 'text-generation',
  instruction: 'text-generation', chat: 'text-generation', seq2seq: 'text2text-generation', 'masked-lm': 'fill-mask',
};

/** The pipeline tasks predict serves. */
export const PIPELINE_TASKS = Object.keys(CONFIG_TASK_OF) as readonly PipelineTask[];

/** The names a command lists, its own spelling first. */
function unknownTask(name: string, first: readonly string[], then: readonly string[]): UsageError {
  const all = [...new Set<string>([...first, ...then])];
  return new UsageError(`--task must be one of ${all.join(', ')}; got ${JSON.stringify(name)}${didYouMean(name, all)}`);
}

/** A config task from either spelling, or undefined when `name` is neither. */
export function asConfigTask(name: string): ConfigTask | undefined {
  if ((TASKS as readonly string[]).includes(name)) return name as ConfigTask;
  return CONFIG_TASK_OF[name as PipelineTask];
}

/** --task of eval and tokenize: `classification` or `text-classification`, ... */
export function configTaskOption(name: string): ConfigTask {
  const t = asConfigTask(name);
  if (t === undefined) throw unknownTask(name, TASKS, PIPELINE_TASKS);
  return t;
}

/** --task of predict: `text-classification` or `classification`, ... */
export function pipelineTaskOption(name: string): PipelineTask {
  if ((PIPELINE_TASKS as readonly string[]).includes(name)) return name as PipelineTask;
  const t = PIPELINE_TASK_OF[name as ConfigTask];
  if (t === undefined) throw unknownTask(name, PIPELINE_TASKS, TASKS);
  return t;
}
