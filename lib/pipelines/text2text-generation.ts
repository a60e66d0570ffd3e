/**
 * text2text-generation (and its summarization / translation aliases): source texts → the texts an encoder-decoder
 * (seq2seq-lm: T5, mT5) generates for them, as transformers' Text2TextGenerationPipeline — `[{ generated_text }]`
 * (`summary_text`, `translation_text` for the aliases). Concurrent sources with the same settings are right-padded
 * into one Model.generate call (the encoder reads the mask); greedy, beam search (numBeams) or sampling.
 */
import { NodetuneError, check } from '../errors';
import { MicroBatcher } from './batcher';
import type { BatcherOptions, Ticket } from './batcher';
import { Loaded, pad } from './common';

export type Text2TextTask = 'text2text-generation' | 'summarization' | 'translation';

export interface Text2TextOptions {
  /** Most tokens generated per source, EOS included (default 32). */
  maxNewTokens?: number;
  /** Beam search with this many beams (default 1: greedy, or sampling with a temperature). */
  numBeams?: number;
  /** Beam search: scores divided by length ** lengthPenalty (default 1). */
  lengthPenalty?: number;
  /** 0 (default): greedy. */
  temperature?: number;
  topK?: number;
  topP?: number;
  seed?: number;
  /** Text put before every source (T5's task prefixes, e.g. 'summarize: '). Default: config.json's
   * task_specific_params[task].prefix for summarization / translation, else none. */
  prefix?: string;
  /** A loaded adapter's name; null: the base model alone; undefined: the model's active adapter. */
  adapter?: string | null;
}

/** One result, keyed as transformers keys it for the task. */
export type Text2TextResult = { generated_text: string } | { summary_text: string } | { translation_text: string };

const KEY: Record<Text2TextTask, string> = { 'text2text-generation': 'generated_text', summarization: 'summary_text', translation: 'translation_text' };

interface Item { ids: number[] }

interface Settings {
  maxNewTokens: number;
  numBeams: number;
  lengthPenalty: number;
  temperature: number;
  topK: number;
  topP: number;
  seed: number | undefined;
  adapter: string | null | undefined;
}

export class Text2TextGenerator {
  readonly batcher: MicroBatcher<Item, Text2TextResult>;
  private readonly eos: number | undefined;

  constructor(readonly loaded: Loaded, readonly task: Text2TextTask = 'text2text-generation', opts: BatcherOptions = {}) {
    if (loaded.model.task !== 'seq2seq-lm')
      throw new NodetuneError('ERR_ARGUMENT', `${task}: needs an encoder-decoder (seq2seq-lm) model such as T5; this one is ${loaded.model.task}`, { field: 'task' });
    this.batcher = new MicroBatcher((items, key) => this.run(items, JSON.parse(key) as Settings), opts);
    const c = loaded.model.config as Record<string, unknown>;
    this.eos = typeof c.eos_token_id === 'number' ? c.eos_token_id : loaded.tokenizer.eosTokenId;
  }

  /** The prefix a source gets: the option, else the config's task_specific_params for the aliases. */
  prefix(opts: Text2TextOptions): string {
    if (opts.prefix !== undefined) {
      check(typeof opts.prefix === 'string', `${this.task}: prefix must be a string`, 'prefix');
      return opts.prefix;
    }
    if (this.task === 'text2text-generation') return '';
    const params = (this.loaded.model.config as Record<string, unknown>).task_specific_params as Record<string, { prefix?: unknown }> | undefined;
    const p = params?.[this.task]?.prefix;
    return typeof p === 'string' ? p : '';
  }

  /** Validates options, encodes the source (not truncated, as transformers: T5's relative positions have no limit) and queues it. */
  async submit(text: string, opts: Text2TextOptions = {}): Promise<Ticket<Text2TextResult>> {
    check(typeof text === 'string', `${this.task}: the input must be a string`, 'input');
    check(opts !== null && typeof opts === 'object', `${this.task}: options must be an object`, 'options');
    const key = JSON.stringify(this.settings(opts));
    const { ids } = await this.loaded.tokenizer.encode(this.prefix(opts) + text);
    check(ids.length > 0, `${this.task}: the input encodes to no tokens`, 'input');
    return this.batcher.submit({ ids }, key);
  }

  private settings(o: Text2TextOptions): Settings {
    const t = this.task;
    const maxNewTokens = o.maxNewTokens ?? 32;
    check(Number.isSafeInteger(maxNewTokens) && maxNewTokens >= 1, `${t}: maxNewTokens must be a positive integer, got ${o.maxNewTokens}`, 'maxNewTokens');
    const numBeams = o.numBeams ?? 1;
    check(Number.isSafeInteger(numBeams) && numBeams >= 1, `${t}: numBeams must be a positive integer, got ${o.numBeams}`, 'numBeams');
    const lengthPenalty = o.lengthPenalty ?? 1;
    check(typeof lengthPenalty === 'number' && Number.isFinite(lengthPenalty), `${t}: lengthPenalty must be a number, got ${o.lengthPenalty}`, 'lengthPenalty');
    const temperature = o.temperature ?? 0;
    check(typeof temperature === 'number' && temperature >= 0, `${t}: temperature must be >= 0, got ${o.temperature}`, 'temperature');
    if (numBeams > 1 && temperature > 0) throw new NodetuneError('ERR_ARGUMENT', `${t}: beam search is greedy; use temperature 0 with numBeams > 1`, { field: 'numBeams' });
    const topK = o.topK ?? 0;
    check(Number.isSafeInteger(topK) && topK >= 0, `${t}: topK must be a non-negative integer, got ${o.topK}`, 'topK');
    const topP = o.topP ?? 1;
    check(typeof topP === 'number' && topP > 0 && topP <= 1, `${t}: topP must be in (0, 1], got ${o.topP}`, 'topP');
    if (o.seed !== undefined) check(Number.isSafeInteger(o.seed) && o.seed >= 0, `${t}: seed must be a non-negative integer, got ${o.seed}`, 'seed');
    // Greedy and beam decoding ignore the sampling settings, so such requests share batches.
    return temperature === 0
      ? { maxNewTokens, numBeams, lengthPenalty, temperature: 0, topK: 0, topP: 1, seed: undefined, adapter: o.adapter }
      : { maxNewTokens, numBeams, lengthPenalty, temperature, topK, topP, seed: o.seed, adapter: o.adapter };
  }

  private async run(items: Item[], s: Settings): Promise<Text2TextResult[]> {
    const { model, tokenizer, padId } = this.loaded;
    const { inputIds, attentionMask } = pad(items.map((it) => it.ids), padId, 'right');
    const rows = await model.generate(inputIds, {
      attentionMask, maxNewTokens: s.maxNewTokens, numBeams: s.numBeams, lengthPenalty: s.lengthPenalty,
      temperature: s.temperature, topK: s.topK, topP: s.topP,
      ...(s.seed !== undefined ? { seed: s.seed } : {}), ...(s.adapter !== undefined ? { adapter: s.adapter } : {}),
    });
    const vocab = tokenizer.vocabSize;
    return Promise.all(rows.map(async (r) => {
      const end = this.eos === undefined ? -1 : r.indexOf(this.eos);
      // Ids past the tokenizer's vocabulary (T5's embedding has spare rows) have no text; transformers skips them too.
      const ids = (end < 0 ? r : r.slice(0, end)).filter((id) => id < vocab);
      return { [KEY[this.task]]: await tokenizer.decode(ids, { skipSpecialTokens: true }) } as Text2TextResult;
    }));
  }
}
