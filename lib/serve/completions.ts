/**
 * POST /v1/completions and /v1/chat/completions (causal-lm models), as OpenAI's API answers them: `n` choices per
 * prompt, logprobs, penalties and logit bias per request (rows of one micro-batch keep their own), stop strings,
 * and server-sent events (`stream`, with `stream_options.include_usage`).
 */
import { randomUUID } from 'crypto';
import type { FastifyReply } from 'fastify';
import { NodetuneError } from '../errors';
import { settleAll } from '../pipelines/batcher';
import type { Generation, GenerationOptions, StreamPiece, TextGenerator } from '../pipelines/text-generation';
import type { SessionToken } from '../models/session';
import type { PreTrainedTokenizer } from '../tokenizers';
import { HttpError, errorBody, toHttpError } from './http-error';
import type { Metrics } from './metrics';
import { ChatBody, ChatContent, ChunkWriter, CompletionBody, chatResponse, completionResponse, generationOptions } from './openai';
import { checkAccepted } from './openai-fields';
import { noteTokens } from './request-log';
import type { RouteContext } from './encoder-routes';
import { chatSchema, completionSchema } from './schemas';

export interface CompletionContext extends RouteContext {
  metrics: Metrics;
  /** Most prompts (or choices) in one request. */
  maxChoices: number;
  needGenerator(route: string): TextGenerator;
}

/** The request's own names of the generation options, for errors (a prompt too long names max_tokens). */
function clientNames(body: CompletionBody | ChatBody, chat: boolean): Record<string, string> {
  const maxName = chat && (body as ChatBody).max_completion_tokens != null ? 'max_completion_tokens' : 'max_tokens';
  return {
    maxNewTokens: maxName, temperature: 'temperature', topP: 'top_p', topK: 'top_k', stop: 'stop', seed: 'seed',
    presencePenalty: 'presence_penalty', frequencyPenalty: 'frequency_penalty', logitBias: 'logit_bias',
    logprobs: chat ? 'top_logprobs' : 'logprobs',
  };
}

/** A pipeline's argument error, re-worded with the request's field names. */
function inClientTerms(e: unknown, names: Record<string, string>): unknown {
  if (!(e instanceof NodetuneError) || e.code !== 'ERR_ARGUMENT' || typeof e.details.field !== 'string') return e;
  const field = e.details.field;
  const param = names[field] ?? field;
  const message = e.message.replace(/^text-generation: /, '').replace(new RegExp(`\\b${field}\\b`, 'g'), param);
  return new HttpError(400, 'invalid_request_error', message, param, field === 'maxNewTokens' ? 'context_length_exceeded' : 'invalid_value');
}

/** Choice i of a request: with a seed, seed + i (each row of a session draws from its own generator, so the n
 * choices of a seeded request differ, and choice 0 equals the same request with n = 1). */
function choiceOptions(gen: GenerationOptions, i: number): GenerationOptions {
  return i === 0 || gen.seed === undefined ? gen : { ...gen, seed: gen.seed + i };
}

function contentText(c: ChatContent): string {
  return typeof c === 'string' ? c : (c ?? []).map((p) => p.text).join('');
}

export function registerCompletionRoutes(ctx: CompletionContext, tokenizer: PreTrainedTokenizer): void {
  const { app, name, metrics } = ctx;

  const streamChoices = async (reply: FastifyReply, g: TextGenerator, ids: number[], gen: GenerationOptions, body: CompletionBody | ChatBody,
    chat: boolean, n: number, promptChars: number, deadline: number) => {
    const its = Array.from({ length: n }, (_, i) => g.streamPieces(ids, choiceOptions(gen, i), ctx.within<SessionToken>(deadline)));
    // The first chunks come before the headers, so a refusal (full queue, timeout) is still a plain status.
    const settled = await Promise.allSettled(its.map((it) => it.next()));
    const refused = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (refused) {
      // The choices that did start leave the running batch.
      await Promise.all(its.map((it) => it.return(undefined as never).catch(() => undefined)));
      throw refused.reason;
    }
    const firsts = settled.map((r) => (r as PromiseFulfilledResult<IteratorResult<StreamPiece, Generation>>).value);
    const res = reply.raw;
    reply.hijack();
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive' });
    let gone = false;
    // A client that leaves: its rows are cancelled at their next token (freed at the next step).
    res.on('close', () => { gone = !res.writableFinished; });
    const out = new ChunkWriter(chat, name, promptChars);
    const send = (data: unknown) => res.write(`data: ${typeof data === 'string' ? data : JSON.stringify(data)}\n\n`);
    const withUsage = body.stream_options?.include_usage === true;
    const done: Generation[] = [];
    const run = async (index: number) => {
      if (chat) send(out.role(index));
      let r: IteratorResult<StreamPiece, Generation> = firsts[index]!;
      while (!r.done) {
        send(out.piece(index, r.value.text, r.value.logprobs));
        if (gone) {
          await its[index]!.return(undefined as never);
          return false;
        }
        r = await its[index]!.next();
      }
      done[index] = r.value;
      const last = done.filter(Boolean).length === n && !withUsage;
      send(out.finish(index, r.value.finishReason, last ? done : undefined, n));
      return true;
    };
    try {
      const finished = await Promise.all(firsts.map((_, i) => run(i)));
      if (!finished.every(Boolean)) {
        // The client left: stop generating, and drop the half-closed socket now rather than at a timeout.
        res.destroy();
        return reply;
      }
      for (const d of done) metrics.tokens(d.promptTokens, d.completionTokens), noteTokens(reply.request, d.promptTokens, d.completionTokens);
      if (withUsage) send(out.usage(done, n));
      send('[DONE]');
    } catch (e) {
      send(errorBody(toHttpError(e)));
    }
    res.end();
    return reply;
  };

  const complete = async (reply: FastifyReply, idsList: number[][], body: CompletionBody | ChatBody, chat: boolean, adapter: string | null, promptChars: number[]) => {
    const g = ctx.needGenerator(chat ? '/v1/chat/completions' : '/v1/completions');
    const names = clientNames(body, chat);
    const deadline = Date.now() + ctx.timeoutMs;
    const gen = { ...generationOptions(body, chat, ctx.defaultMaxTokens), adapter, seedGroup: randomUUID() };
    const n = body.n ?? 1;
    if (idsList.length * n > ctx.maxChoices)
      throw new HttpError(400, 'invalid_request_error', `${idsList.length} prompt(s) x n = ${n} is more than the ${ctx.maxChoices} choices one request may ask for`, 'n', 'invalid_value');
    try {
      for (const ids of idsList) g.validate(ids, gen);
      if (body.stream) {
        if (idsList.length !== 1) throw new HttpError(400, 'invalid_request_error', 'stream: true takes a single prompt', 'prompt', 'invalid_value');
        return await streamChoices(reply, g, idsList[0]!, gen, body, chat, n, promptChars[0]!, deadline);
      }
      const rows = idsList.flatMap((ids) => new Array<number[]>(n).fill(ids));
      const results = await settleAll(rows.map((ids, i) => ({ ids, i })), ({ ids, i }) => g.submitIds(ids, choiceOptions(gen, i % n)), ctx.within<Generation>(deadline), 'a sibling prompt failed');
      for (const r of results) metrics.tokens(r.promptTokens, r.completionTokens), noteTokens(reply.request, r.promptTokens, r.completionTokens);
      return chat ? chatResponse(name, results, n) : completionResponse(name, results, n, promptChars);
    } catch (e) {
      throw inClientTerms(e, names);
    }
  };

  app.post('/v1/completions', { schema: { body: completionSchema(ctx.maxTokens, ctx.maxChoices) } }, async (req, reply) => {
    const g = ctx.needGenerator('/v1/completions');
    const body = req.body as CompletionBody;
    checkAccepted('completions', body as unknown as Record<string, unknown>);
    const adapter = ctx.selectModel(body.model);
    const p = body.prompt;
    const prompts: (string | number[])[] = typeof p === 'string' ? [p] : typeof p[0] === 'number' ? [p as number[]] : (p as string[] | number[][]);
    const ids = await Promise.all(prompts.map((x) => g.encodePrompt(x)));
    const chars = await Promise.all(prompts.map(async (x, i) => (typeof x === 'string' ? x : await tokenizer.decode(ids[i]!, { skipSpecialTokens: true })).length));
    return complete(reply, ids, body, false, adapter, chars);
  });

  app.post('/v1/chat/completions', { schema: { body: chatSchema(ctx.maxTokens, 256, ctx.maxChoices) } }, async (req, reply) => {
    const g = ctx.needGenerator('/v1/chat/completions');
    const body = req.body as ChatBody;
    checkAccepted('chat', body as unknown as Record<string, unknown>);
    if (body.max_tokens != null && body.max_completion_tokens != null && body.max_tokens !== body.max_completion_tokens)
      throw new HttpError(400, 'invalid_request_error', "'max_tokens' and 'max_completion_tokens' differ; send one of them", 'max_completion_tokens', 'invalid_value');
    if (body.top_logprobs != null && body.logprobs !== true)
      throw new HttpError(400, 'invalid_request_error', "'top_logprobs' needs 'logprobs': true", 'top_logprobs', 'invalid_value');
    const adapter = ctx.selectModel(body.model);
    if (!tokenizer.hasChatTemplate) throw new HttpError(400, 'invalid_request_error', `model '${name}' has no chat template (tokenizer_config.json chat_template); use /v1/completions`, 'messages', 'no_chat_template');
    // OpenAI's 'developer' messages are its newer name for system messages.
    const messages = body.messages.map((m) => ({ role: m.role === 'developer' ? 'system' : m.role, content: contentText(m.content) }));
    const text = tokenizer.applyChatTemplate(messages, { addGenerationPrompt: true });
    // The template writes the special tokens itself (BOS and turn markers).
    const ids = await g.encodePrompt(text, false);
    return complete(reply, [ids], body, true, adapter, [text.length]);
  });
}
