/**
 * pipeline(task, modelDir, options): in-process inference. Each pipeline is callable with one input or an array;
 * concurrent calls (and the items of an array) are queued and micro-batched into single native calls, which run
 * off the event loop.
 */
import { checkOptionKeys } from '../util/options';
import { PIPELINE_KEYS } from '../util/option-keys';
import { NodetuneError } from '../errors';
import type { Model } from '../models';
import type { PreTrainedTokenizer } from '../tokenizers';
import type { BatchStats, MicroBatcher, Ticket } from './batcher';
import { PipelineOptions, loadForTask, textsOf } from './common';
import { Answer, QaInput, QaOptions, QuestionAnswerer } from './question-answering';
import { ClassificationResult, ClassifyOptions, TextClassifier } from './text-classification';
import { Generation, GenerationOptions, TextGenerator } from './text-generation';
import { EntitySpan, TokenClassifier, TokenLabel, groupEntities } from './token-classification';
import { Text2TextGenerator, Text2TextOptions, Text2TextResult, Text2TextTask } from './text2text-generation';
import { FillMaskOptions, FillMaskResult, MaskFiller } from './fill-mask';

export { MicroBatcher, QueueFullError, CancelledError } from './batcher';
export type { BatcherOptions, BatchStats, Ticket } from './batcher';
export type { PipelineOptions } from './common';
export type { ClassificationResult, LabelScore, ClassifyOptions } from './text-classification';
export type { Generation, GenerationOptions } from './text-generation';
export type { TokenLabel, EntitySpan } from './token-classification';
export { groupEntities } from './token-classification';
export type { Answer, QaInput, QaOptions } from './question-answering';
export type { Text2TextOptions, Text2TextResult, Text2TextTask } from './text2text-generation';
export type { FillMaskOptions, FillMaskResult } from './fill-mask';
export { TextClassifier, TextGenerator, TokenClassifier, QuestionAnswerer, Text2TextGenerator, MaskFiller };

export type PipelineTask = 'text-classification' | 'text-generation' | 'token-classification' | 'question-answering' | Text2TextTask | 'fill-mask';

interface PipelineBase {
  readonly task: PipelineTask;
  readonly model: Model;
  readonly tokenizer: PreTrainedTokenizer;
  /** Batches run, items processed, requests waiting. */
  stats(): BatchStats;
}

export interface TextClassificationPipeline extends PipelineBase {
  (text: string, opts?: ClassifyOptions): Promise<ClassificationResult>;
  (texts: string[], opts?: ClassifyOptions): Promise<ClassificationResult[]>;
}

export interface TextGenerationPipeline extends PipelineBase {
  (prompt: string, opts?: GenerationOptions): Promise<Generation>;
  (prompts: string[], opts?: GenerationOptions): Promise<Generation[]>;
  /** Streams text pieces (chunks of generated tokens); see TextGenerator.stream. */
  /** One piece per decodable piece of text, as the tokens come from the running batch. */
  stream(prompt: string, opts?: GenerationOptions): AsyncGenerator<string, Generation>;
}

export interface TokenClassificationPipeline extends PipelineBase {
  (text: string, opts?: { aggregation?: 'none' }): Promise<TokenLabel[]>;
  (texts: string[], opts?: { aggregation?: 'none' }): Promise<TokenLabel[][]>;
  /** 'simple': consecutive tokens of one entity merged into spans, 'O' (or `ignoreLabels`) left out. */
  (text: string, opts: { aggregation: 'simple'; ignoreLabels?: string[] }): Promise<EntitySpan[]>;
  (texts: string[], opts: { aggregation: 'simple'; ignoreLabels?: string[] }): Promise<EntitySpan[][]>;
}

export interface QuestionAnsweringPipeline extends PipelineBase {
  (input: QaInput, opts?: QaOptions): Promise<Answer>;
  (inputs: QaInput[], opts?: QaOptions): Promise<Answer[]>;
}

/** As transformers: one text → `[{ generated_text }]`, several → one result each (`summary_text` / `translation_text` for the aliases). */
export interface Text2TextGenerationPipeline extends PipelineBase {
  (text: string | string[], opts?: Text2TextOptions): Promise<Text2TextResult[]>;
}

/** As transformers: one text with one mask → its top-k; with several masks → a list per mask; several texts → one such result each. */
export interface FillMaskPipeline extends PipelineBase {
  (text: string, opts?: FillMaskOptions): Promise<FillMaskResult[] | FillMaskResult[][]>;
  (texts: string[], opts?: FillMaskOptions): Promise<Array<FillMaskResult[] | FillMaskResult[][]>>;
}

const MODEL_TASK = {
  'text-classification': 'sequence-classification',
  'text-generation': 'causal-lm',
  'token-classification': 'token-classification',
  'question-answering': 'question-answering',
  'text2text-generation': 'seq2seq-lm',
  summarization: 'seq2seq-lm',
  translation: 'seq2seq-lm',
  'fill-mask': 'masked-lm',
} as const;

/**
 * Runs the items of one call through the batcher with at most `window` of them queued at a time, so an array longer
 * than the queue bound is processed in full (batches keep filling while earlier ones run).
 */
async function many<T, O>(items: T[], single: boolean, submit: (item: T) => Ticket<O> | Promise<Ticket<O>>, window: number): Promise<O | O[]> {
  const out = new Array<O>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await (await submit(items[i]!)).promise;
    }
  };
  await Promise.all(Array.from({ length: Math.min(window, items.length) }, worker));
  return single ? out[0]! : out;
}

/** Items of one call queued at once: two batches' worth, within the queue bound. */
function window(core: { batcher: { maxBatch: number; maxQueue: number } }): number {
  return Math.max(1, Math.min(core.batcher.maxBatch * 2, core.batcher.maxQueue));
}

function base<T extends PipelineTask>(task: T, core: { loaded: { model: Model; tokenizer: PreTrainedTokenizer }; batcher: MicroBatcher<never, unknown> }) {
  return { task, model: core.loaded.model, tokenizer: core.loaded.tokenizer, stats: () => core.batcher.stats() };
}

export function pipeline(task: 'text-classification', modelDir: string, opts?: PipelineOptions): Promise<TextClassificationPipeline>;
export function pipeline(task: 'text-generation', modelDir: string, opts?: PipelineOptions): Promise<TextGenerationPipeline>;
export function pipeline(task: 'token-classification', modelDir: string, opts?: PipelineOptions): Promise<TokenClassificationPipeline>;
export function pipeline(task: 'question-answering', modelDir: string, opts?: PipelineOptions): Promise<QuestionAnsweringPipeline>;
export function pipeline(task: Text2TextTask, modelDir: string, opts?: PipelineOptions): Promise<Text2TextGenerationPipeline>;
export function pipeline(task: 'fill-mask', modelDir: string, opts?: PipelineOptions): Promise<FillMaskPipeline>;
export async function pipeline(task: PipelineTask, modelDir: string, opts: PipelineOptions = {}): Promise<PipelineBase> {
  checkOptionKeys(opts, PIPELINE_KEYS, 'pipeline()');
  if (!(task in MODEL_TASK))
    throw new NodetuneError('ERR_ARGUMENT', `pipeline(): task must be one of ${Object.keys(MODEL_TASK).join(', ')}, got ${JSON.stringify(task)}`, { field: 'task' });
  const loaded = await loadForTask(MODEL_TASK[task], modelDir, opts);
  const batching = { maxBatch: opts.maxBatch, maxWaitMs: opts.maxWaitMs, maxQueue: opts.maxQueue };
  switch (task) {
    case 'text-classification': {
      const core = new TextClassifier(loaded, batching);
      const fn = (input: string | string[], o: ClassifyOptions = {}) => {
        const { texts, single } = textsOf(input, 'text-classification');
        return many(texts, single, (t) => core.submit(t, o), window(core));
      };
      return Object.assign(fn, base(task, core as never));
    }
    case 'token-classification': {
      const core = new TokenClassifier(loaded, batching);
      const fn = async (input: string | string[], o: { aggregation?: 'none' | 'simple'; ignoreLabels?: string[] } = {}) => {
        const { texts, single } = textsOf(input, 'token-classification');
        const agg = o.aggregation ?? 'none';
        if (agg !== 'none' && agg !== 'simple')
          throw new NodetuneError('ERR_ARGUMENT', `token-classification: aggregation must be 'none' or 'simple', got ${JSON.stringify(o.aggregation)}`, { field: 'aggregation' });
        const labels = await many(texts, false, (t) => core.submit(t), window(core)) as TokenLabel[][];
        const out = agg === 'simple' ? labels.map((l, i) => groupEntities(l, texts[i]!, o.ignoreLabels)) : labels;
        return single ? out[0]! : out;
      };
      return Object.assign(fn, base(task, core as never));
    }
    case 'question-answering': {
      const core = new QuestionAnswerer(loaded, batching);
      const fn = (input: QaInput | QaInput[], o: QaOptions = {}) => {
        const single = !Array.isArray(input);
        const items = single ? [input] : input;
        if (items.length === 0) throw new NodetuneError('ERR_ARGUMENT', 'question-answering: expected { question, context } or a non-empty array of them', { field: 'input' });
        return many(items, single, (it) => core.submit(it, o), window(core));
      };
      return Object.assign(fn, base(task, core as never));
    }
    case 'text-generation': {
      const core = new TextGenerator(loaded, batching);
      const fn = (input: string | string[], o: GenerationOptions = {}) => {
        const { texts, single } = textsOf(input, 'text-generation');
        return many(texts, single, async (t) => core.submitIds(await core.encodePrompt(t), o), window(core));
      };
      const stream = async function* (prompt: string, o: GenerationOptions = {}) {
        return yield* core.stream(await core.encodePrompt(prompt), o);
      };
      return Object.assign(fn, base(task, core as never), { stream, stats: () => core.stats() });
    }
    case 'text2text-generation':
    case 'summarization':
    case 'translation': {
      const core = new Text2TextGenerator(loaded, task, batching);
      const fn = async (input: string | string[], o: Text2TextOptions = {}) => {
        const { texts } = textsOf(input, task);
        return many(texts, false, (t) => core.submit(t, o), window(core));
      };
      return Object.assign(fn, base(task, core as never));
    }
    case 'fill-mask': {
      const core = new MaskFiller(loaded, batching);
      const fn = async (input: string | string[], o: FillMaskOptions = {}) => {
        const { texts, single } = textsOf(input, task);
        const out = (await many(texts, false, (t) => core.submit(t, o), window(core)) as FillMaskResult[][][])
          .map((perMask) => (perMask.length === 1 ? perMask[0]! : perMask));
        return single ? out[0]! : out;
      };
      return Object.assign(fn, base(task, core as never));
    }
  }
}
