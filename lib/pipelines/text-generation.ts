/**
 * text-generation: prompts → continuations. Concurrent prompts with the same sampling settings are left-padded
 * into one Model.generate call (with the attention mask); each row is then cut to its own max tokens, EOS and
 * stop strings. Streaming generates in chunks of tokens (see stream()).
 */
import { NodetuneError, check } from '../errors';
import { MicroBatcher } from './batcher';
import type { BatcherOptions, Ticket } from './batcher';
import { Loaded, pad } from './common';

export interface GenerationOptions {
  /** Default 16. */
  maxNewTokens?: number;
  /** 0 (default): greedy. */
  temperature?: number;
  topP?: number;
  topK?: number;
  /** Generation ends before the first of these strings (not included in the text). */
  stop?: string[];
  seed?: number;
  /** A loaded adapter's name for this request; null: the base model alone; undefined: the model's active adapter. */
  adapter?: string | null;
}

export interface Generation {
  /** The continuation only (without the prompt). */
  text: string;
  /** Ids of the generated tokens (up to EOS, excluded). */
  tokenIds: number[];
  finishReason: 'stop' | 'length';
  promptTokens: number;
  completionTokens: number;
}

interface Item {
  ids: number[];
  maxNewTokens: number;
  stop: string[];
}

interface Sampling {
  temperature: number;
  topP: number;
  topK: number;
  seed: number | undefined;
  adapter: string | null | undefined;
}

export class TextGenerator {
  readonly batcher: MicroBatcher<Item, Generation>;
  private readonly eos: Set<number>;

  constructor(readonly loaded: Loaded, opts: BatcherOptions = {}) {
    this.batcher = new MicroBatcher((items, key) => this.run(items, JSON.parse(key) as Sampling), opts);
    const c = loaded.model.config as Record<string, unknown>;
    const ids = [c.eos_token_id, loaded.tokenizer.eosTokenId].flat().filter((x): x is number => typeof x === 'number');
    this.eos = new Set(ids);
  }

  /** Prompt text → token ids (with the tokenizer's special tokens, e.g. BOS), or ids as given. */
  async encodePrompt(prompt: string | number[], addSpecialTokens = true): Promise<number[]> {
    if (typeof prompt === 'string') return (await this.loaded.tokenizer.encode(prompt, { addSpecialTokens })).ids;
    check(Array.isArray(prompt) && prompt.length > 0 && prompt.every((x) => Number.isSafeInteger(x) && x >= 0),
      'text-generation: a prompt is a string or a non-empty array of token ids', 'prompt');
    return prompt;
  }

  /** Validates options and queues one prompt (already tokenized). */
  submitIds(ids: number[], opts: GenerationOptions = {}): Ticket<Generation> {
    const { item, key } = this.validate(ids, opts);
    return this.batcher.submit(item, key);
  }

  /** Checks a request without queueing it (throws ERR_ARGUMENT naming the field). */
  validate(ids: number[], opts: GenerationOptions = {}): { item: Item; key: string } {
    const maxNewTokens = opts.maxNewTokens ?? 16;
    check(Number.isSafeInteger(maxNewTokens) && maxNewTokens >= 1, `text-generation: maxNewTokens must be a positive integer, got ${opts.maxNewTokens}`, 'maxNewTokens');
    check(ids.length > 0, 'text-generation: the prompt encodes to no tokens', 'prompt');
    const total = ids.length + maxNewTokens;
    if (total > this.loaded.maxLength)
      throw new NodetuneError('ERR_ARGUMENT', `text-generation: prompt (${ids.length} tokens) + maxNewTokens (${maxNewTokens}) exceeds the model's ${this.loaded.maxLength} positions`, { field: 'maxNewTokens' });
    const temperature = opts.temperature ?? 0;
    check(typeof temperature === 'number' && temperature >= 0, `text-generation: temperature must be >= 0, got ${opts.temperature}`, 'temperature');
    const topP = opts.topP ?? 1;
    check(typeof topP === 'number' && topP > 0 && topP <= 1, `text-generation: topP must be in (0, 1], got ${opts.topP}`, 'topP');
    const topK = opts.topK ?? 0;
    check(Number.isSafeInteger(topK) && topK >= 0, `text-generation: topK must be a non-negative integer, got ${opts.topK}`, 'topK');
    const stop = opts.stop ?? [];
    check(Array.isArray(stop) && stop.every((s) => typeof s === 'string' && s.length > 0), 'text-generation: stop must be an array of non-empty strings', 'stop');
    if (opts.seed !== undefined) check(Number.isSafeInteger(opts.seed) && opts.seed >= 0, `text-generation: seed must be a non-negative integer`, 'seed');
    // Greedy decoding ignores the sampling settings, so every greedy request can share a batch.
    const sampling: Sampling = temperature === 0 ? { temperature: 0, topP: 1, topK: 0, seed: undefined, adapter: opts.adapter } : { temperature, topP, topK, seed: opts.seed, adapter: opts.adapter };
    return { item: { ids, maxNewTokens, stop }, key: JSON.stringify(sampling) };
  }

  /**
   * Streams the continuation in chunks of `chunkTokens` tokens: each chunk is one batched generate call on the
   * prompt plus what was generated so far (the native generate keeps no cache between calls, so each chunk
   * re-reads the prefix). Yields text pieces; returns the whole generation. `wait` settles each chunk's ticket
   * (a server adds its timeout there).
   */
  async *stream(ids: number[], opts: GenerationOptions = {}, chunkTokens = 8,
    wait: (t: Ticket<Generation>) => Promise<Generation> = (t) => t.promise): AsyncGenerator<string, Generation> {
    this.validate(ids, opts);
    check(Number.isSafeInteger(chunkTokens) && chunkTokens >= 1, `text-generation: chunkTokens must be a positive integer, got ${chunkTokens}`, 'chunkTokens');
    const maxNewTokens = opts.maxNewTokens ?? 16;
    const generated: number[] = [];
    let text = '';
    let sent = 0;
    let finishReason: Generation['finishReason'] = 'length';
    while (generated.length < maxNewTokens) {
      const n = Math.min(chunkTokens, maxNewTokens - generated.length);
      // Stop strings are applied to the whole text below, not per chunk.
      const r = await wait(this.submitIds([...ids, ...generated], { ...opts, maxNewTokens: n, stop: [] }));
      generated.push(...r.tokenIds);
      const cut = cutAtStop(await this.continuation(ids, generated), opts.stop ?? []);
      text = cut.text;
      const done = cut.stopped || r.finishReason === 'stop' || generated.length >= maxNewTokens;
      // Hold back what a later chunk may still change: a possible start of a stop string, an incomplete character.
      const safe = done ? text.length : settledLength(text, opts.stop ?? []);
      if (safe > sent) {
        yield text.slice(sent, safe);
        sent = safe;
      }
      if (cut.stopped || r.finishReason === 'stop') {
        finishReason = 'stop';
        break;
      }
    }
    return { text, tokenIds: generated, finishReason, promptTokens: ids.length, completionTokens: generated.length };
  }

  /** The text of `generated` following `prompt` (decoding the whole, so word-initial spaces survive). */
  async continuation(prompt: number[], generated: number[]): Promise<string> {
    const tok = this.loaded.tokenizer;
    const [whole, head] = await Promise.all([tok.decode([...prompt, ...generated], { skipSpecialTokens: true }), tok.decode(prompt, { skipSpecialTokens: true })]);
    return whole.startsWith(head) ? whole.slice(head.length) : tok.decode(generated, { skipSpecialTokens: true });
  }

  private async run(items: Item[], s: Sampling): Promise<Generation[]> {
    const { model, padId } = this.loaded;
    const { inputIds, attentionMask, width } = pad(items.map((it) => it.ids), padId, 'left');
    const maxNewTokens = Math.max(...items.map((it) => it.maxNewTokens));
    const rows = await model.generate(inputIds, {
      maxNewTokens, temperature: s.temperature, topP: s.topP, topK: s.topK, attentionMask,
      ...(s.seed !== undefined ? { seed: s.seed } : {}),
      ...(s.adapter !== undefined ? { adapter: s.adapter } : {}),
    });
    return Promise.all(items.map(async (it, b) => {
      const out = rows[b]!.slice(width, width + it.maxNewTokens);
      const eosAt = out.findIndex((id) => this.eos.has(id));
      const tokenIds = eosAt >= 0 ? out.slice(0, eosAt) : out;
      const cut = cutAtStop(await this.continuation(it.ids, tokenIds), it.stop);
      return {
        text: cut.text, tokenIds, finishReason: eosAt >= 0 || cut.stopped ? 'stop' : 'length',
        promptTokens: it.ids.length, completionTokens: tokenIds.length,
      };
    }));
  }
}

/** How much of `text` no later token can change: without a trailing U+FFFD (a character whose bytes are still
 * coming) and without a suffix that begins a stop string. */
export function settledLength(text: string, stop: string[]): number {
  let n = text.length;
  while (n > 0 && text[n - 1] === '\uFFFD') n--;
  let keep = n;
  for (const s of stop) {
    for (let k = Math.min(s.length - 1, n); k > 0; k--) {
      if (text.endsWith(s.slice(0, k), n)) {
        keep = Math.min(keep, n - k);
        break;
      }
    }
  }
  return keep;
}

/** Cuts `text` before the earliest stop string. */
export function cutAtStop(text: string, stop: string[]): { text: string; stopped: boolean } {
  let at = -1;
  for (const s of stop) {
    const i = text.indexOf(s);
    if (i >= 0 && (at < 0 || i < at)) at = i;
  }
  return at < 0 ? { text, stopped: false } : { text: text.slice(0, at), stopped: true };
}
