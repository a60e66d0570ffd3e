/** Shapes of the OpenAI-style requests and responses (completions, chat completions, streamed chunks, logprobs). */
import { randomUUID } from 'crypto';
import type { GeneratedLogprob, Generation, GenerationOptions } from '../pipelines/text-generation';

export interface SamplingBody {
  model?: string;
  max_tokens?: number | null;
  temperature?: number | null;
  top_p?: number | null;
  top_k?: number;
  stop?: string | string[] | null;
  stream?: boolean | null;
  stream_options?: { include_usage?: boolean; include_obfuscation?: boolean } | null;
  seed?: number | null;
  n?: number | null;
  user?: string;
  presence_penalty?: number | null;
  frequency_penalty?: number | null;
  logit_bias?: Record<string, number> | null;
}

export interface CompletionBody extends SamplingBody {
  prompt: string | string[] | number[] | number[][];
  /** Legacy completions: this many alternatives per token (0-5). */
  logprobs?: number | null;
}

export type ChatContent = string | { type: 'text'; text: string }[] | null;

export interface ChatBody extends SamplingBody {
  messages: { role: 'system' | 'developer' | 'user' | 'assistant'; content: ChatContent; name?: string }[];
  max_completion_tokens?: number | null;
  logprobs?: boolean | null;
  top_logprobs?: number | null;
}

export interface ClassifyBody {
  model?: string;
  input: string | string[];
}

/** The alternatives per token the request asks for (undefined: no logprobs). */
export function logprobsOf(b: CompletionBody | ChatBody, chat: boolean): number | undefined {
  if (chat) return (b as ChatBody).logprobs ? (b as ChatBody).top_logprobs ?? 0 : undefined;
  const n = (b as CompletionBody).logprobs;
  return n === null || n === undefined ? undefined : n;
}

export function generationOptions(b: CompletionBody | ChatBody, chat: boolean, defaultMaxTokens: number): GenerationOptions {
  const maxTokens = (chat ? (b as ChatBody).max_completion_tokens : undefined) ?? b.max_tokens;
  const logprobs = logprobsOf(b, chat);
  return {
    maxNewTokens: maxTokens ?? defaultMaxTokens,
    // OpenAI's default temperature is 1; an absent one here means greedy, which is reproducible.
    temperature: b.temperature ?? 0,
    topP: b.top_p ?? 1,
    topK: b.top_k ?? 0,
    stop: b.stop === undefined || b.stop === null ? [] : typeof b.stop === 'string' ? [b.stop] : b.stop,
    presencePenalty: b.presence_penalty ?? 0,
    frequencyPenalty: b.frequency_penalty ?? 0,
    ...(b.logit_bias && Object.keys(b.logit_bias).length > 0 ? { logitBias: b.logit_bias } : {}),
    ...(b.seed !== undefined && b.seed !== null ? { seed: b.seed } : {}),
    ...(logprobs !== undefined ? { logprobs } : {}),
  };
}

export function newId(prefix: string): string {
  return `${prefix}-${randomUUID().replace(/-/g, '').slice(0, 24)}`;
}

/** Token usage of a request: each prompt counted once, however many choices it has. */
export function usage(gens: Generation[], n = 1) {
  const prompt = gens.reduce((a, g, i) => a + (i % n === 0 ? g.promptTokens : 0), 0);
  const completion = gens.reduce((a, g) => a + g.completionTokens, 0);
  return { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion };
}

const utf8 = (s: string) => [...Buffer.from(s, 'utf8')];

/** Legacy completions' logprobs: tokens, token_logprobs, top_logprobs (text → logprob), text_offset (into the
 * prompt's text followed by the completion, as OpenAI counts them). */
export function completionLogprobs(entries: GeneratedLogprob[] | undefined, promptChars: number) {
  if (!entries) return null;
  return {
    tokens: entries.map((e) => e.text),
    token_logprobs: entries.map((e) => e.logprob),
    top_logprobs: entries.map((e) => Object.fromEntries(e.top.map((t) => [t.text, t.logprob]))),
    text_offset: entries.map((e) => promptChars + e.offset),
  };
}

/** Chat logprobs: { content: [{ token, logprob, bytes, top_logprobs: [{ token, logprob, bytes }] }], refusal: null }. */
export function chatLogprobs(entries: GeneratedLogprob[] | undefined) {
  if (!entries) return null;
  return {
    content: entries.map((e) => ({
      token: e.text, logprob: e.logprob, bytes: utf8(e.text),
      top_logprobs: e.top.map((t) => ({ token: t.text, logprob: t.logprob, bytes: utf8(t.text) })),
    })),
    refusal: null,
  };
}

export function completionResponse(model: string, gens: Generation[], n: number, promptChars: number[]) {
  return {
    id: newId('cmpl'), object: 'text_completion', created: Math.floor(Date.now() / 1000), model,
    choices: gens.map((g, index) => ({ text: g.text, index, logprobs: completionLogprobs(g.logprobs, promptChars[Math.floor(index / n)]!), finish_reason: g.finishReason })),
    usage: usage(gens, n),
  };
}

export function chatResponse(model: string, gens: Generation[], n: number) {
  return {
    id: newId('chatcmpl'), object: 'chat.completion', created: Math.floor(Date.now() / 1000), model,
    choices: gens.map((g, index) => ({ index, message: { role: 'assistant', content: g.text, refusal: null }, logprobs: chatLogprobs(g.logprobs), finish_reason: g.finishReason })),
    usage: usage(gens, n),
  };
}

/** Builds the successive `data:` payloads of a streamed completion or chat completion (choices by index). */
export class ChunkWriter {
  readonly id: string;
  private readonly created = Math.floor(Date.now() / 1000);
  constructor(private readonly chat: boolean, private readonly model: string, private readonly promptChars = 0) {
    this.id = newId(chat ? 'chatcmpl' : 'cmpl');
  }
  private wrap(choices: Record<string, unknown>[]) {
    return { id: this.id, object: this.chat ? 'chat.completion.chunk' : 'text_completion', created: this.created, model: this.model, choices };
  }
  role(index: number) {
    return this.wrap([{ index, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }]);
  }
  piece(index: number, text: string, logprobs: GeneratedLogprob[] | undefined) {
    if (this.chat) return this.wrap([{ index, delta: { content: text }, logprobs: chatLogprobs(logprobs), finish_reason: null }]);
    return this.wrap([{ text, index, logprobs: completionLogprobs(logprobs, this.promptChars), finish_reason: null }]);
  }
  /** A choice's last chunk; `gens` (the usage) on the last one when no separate usage chunk is asked for. */
  finish(index: number, reason: string, gens?: Generation[], n = 1) {
    const choice = this.chat ? { index, delta: {}, logprobs: null, finish_reason: reason } : { text: '', index, logprobs: null, finish_reason: reason };
    return { ...this.wrap([choice]), ...(gens ? { usage: usage(gens, n) } : {}) };
  }
  /** stream_options.include_usage: the last chunk before [DONE], with no choices. */
  usage(gens: Generation[], n: number) {
    return { ...this.wrap([]), usage: usage(gens, n) };
  }
}
