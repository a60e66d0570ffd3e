/** Shapes of the OpenAI-style requests and responses (completions, chat completions, streamed chunks). */
import { randomUUID } from 'crypto';
import type { Generation, GenerationOptions } from '../pipelines/text-generation';

export interface SamplingBody {
  model?: string;
  max_tokens?: number;
  temperature?: number;
  top_p?: number;
  top_k?: number;
  stop?: string | string[] | null;
  stream?: boolean;
  seed?: number;
  n?: number;
  user?: string;
}

export interface CompletionBody extends SamplingBody {
  prompt: string | string[];
}

export interface ChatBody extends SamplingBody {
  messages: { role: 'system' | 'user' | 'assistant'; content: string; name?: string }[];
}

export interface ClassifyBody {
  model?: string;
  input: string | string[];
}

export function generationOptions(b: SamplingBody, defaultMaxTokens: number): GenerationOptions {
  return {
    maxNewTokens: b.max_tokens ?? defaultMaxTokens,
    // OpenAI's default temperature is 1; an absent one here means greedy, which is reproducible.
    temperature: b.temperature ?? 0,
    topP: b.top_p ?? 1,
    topK: b.top_k ?? 0,
    stop: b.stop === undefined || b.stop === null ? [] : typeof b.stop === 'string' ? [b.stop] : b.stop,
    ...(b.seed !== undefined ? { seed: b.seed } : {}),
  };
}

export function newId(prefix: string): string {
  return `${prefix}-${randomUUID().replace(/-/g, '').slice(0, 24)}`;
}

export function usage(gens: Generation[]) {
  const prompt = gens.reduce((a, g) => a + g.promptTokens, 0);
  const completion = gens.reduce((a, g) => a + g.completionTokens, 0);
  return { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion };
}

export function completionResponse(model: string, gens: Generation[]) {
  return {
    id: newId('cmpl'), object: 'text_completion', created: Math.floor(Date.now() / 1000), model,
    choices: gens.map((g, index) => ({ text: g.text, index, logprobs: null, finish_reason: g.finishReason })),
    usage: usage(gens),
  };
}

export function chatResponse(model: string, g: Generation) {
  return {
    id: newId('chatcmpl'), object: 'chat.completion', created: Math.floor(Date.now() / 1000), model,
    choices: [{ index: 0, message: { role: 'assistant', content: g.text }, finish_reason: g.finishReason }],
    usage: usage([g]),
  };
}

/** Builds the successive `data:` payloads of a streamed completion or chat completion. */
export class ChunkWriter {
  readonly id: string;
  private readonly created = Math.floor(Date.now() / 1000);
  constructor(private readonly chat: boolean, private readonly model: string) {
    this.id = newId(chat ? 'chatcmpl' : 'cmpl');
  }
  private wrap(choice: Record<string, unknown>) {
    return { id: this.id, object: this.chat ? 'chat.completion.chunk' : 'text_completion', created: this.created, model: this.model, choices: [choice] };
  }
  role() {
    return this.wrap({ index: 0, delta: { role: 'assistant' }, finish_reason: null });
  }
  piece(text: string) {
    return this.wrap(this.chat ? { index: 0, delta: { content: text }, finish_reason: null } : { text, index: 0, logprobs: null, finish_reason: null });
  }
  finish(reason: string, g: Generation) {
    const choice = this.chat ? { index: 0, delta: {}, finish_reason: reason } : { text: '', index: 0, logprobs: null, finish_reason: reason };
    return { ...this.wrap(choice), usage: usage([g]) };
  }
}
