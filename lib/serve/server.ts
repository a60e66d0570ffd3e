/**
 * The HTTP server (Fastify): OpenAI-style completions and chat completions (streamed with server-sent events),
 * classification, health and Prometheus metrics. Requests are micro-batched by the pipelines' batchers.
 */
import { timingSafeEqual } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import Fastify, { FastifyInstance, FastifyReply } from 'fastify';
import { NodetuneError, check } from '../errors';
import { settleAll } from '../pipelines/batcher';
import type { BatchStats, Ticket } from '../pipelines/batcher';
import { applyAdapter, loadForTask } from '../pipelines/common';
import { MaskFiller } from '../pipelines/fill-mask';
import { TextClassifier } from '../pipelines/text-classification';
import { Text2TextGenerator } from '../pipelines/text2text-generation';
import { Generation, TextGenerator } from '../pipelines/text-generation';
import { HttpError, errorBody, toHttpError } from './http-error';
import { registerEncoderRoutes } from './encoder-routes';
import { Metrics } from './metrics';
import { ChatBody, ChunkWriter, ClassifyBody, CompletionBody, chatResponse, completionResponse, generationOptions } from './openai';
import { chatSchema, classifySchema, completionSchema } from './schemas';

export interface ServeOptions {
  /** The model directory (config.json + safetensors + tokenizer). */
  model: string;
  /** name → adapter directory (PEFT layout). */
  adapters?: Record<string, string>;
  /** Default 127.0.0.1 (loopback only). */
  host?: string;
  /** Default 8080; 0 picks a free port. */
  port?: number;
  /** When set, every route but /healthz needs `Authorization: Bearer <apiKey>`. */
  apiKey?: string;
  /** The model's name in requests and responses (default: the directory's name). */
  name?: string;
  maxBatch?: number;
  maxWaitMs?: number;
  /** Requests waiting beyond this are answered 503. Default 64. */
  maxQueue?: number;
  /** Per-request limit; past it the answer is 504. Default 60000. */
  requestTimeoutMs?: number;
  /** Largest max_tokens accepted. Default 256. */
  maxTokens?: number;
  /** max_tokens when a request gives none. Default 16. */
  defaultMaxTokens?: number;
  /** Bytes. Default 1 MiB. */
  bodyLimit?: number;
  /** Tokens per streamed chunk. Default 8. */
  streamChunkTokens?: number;
  device?: string;
}

export interface RunningServer {
  url: string;
  name: string;
  task: string;
  app: FastifyInstance;
  stats(): BatchStats;
  /** Stops accepting connections, runs what is queued at once, waits for in-flight requests, then resolves. */
  close(): Promise<void>;
}

/** Whether an adapter folder's adapter_config.json lists modules_to_save (a trained head). */
function savesModules(dir: string): boolean {
  try {
    const c = JSON.parse(fs.readFileSync(path.join(dir, 'adapter_config.json'), 'utf8')) as { modules_to_save?: unknown };
    return Array.isArray(c.modules_to_save) && c.modules_to_save.length > 0;
  } catch {
    return false;
  }
}

function bearerOk(header: string | undefined, key: string): boolean {
  const want = Buffer.from(`Bearer ${key}`);
  const got = Buffer.from(header ?? '');
  return got.length === want.length && timingSafeEqual(got, want);
}

export async function startServer(opts: ServeOptions): Promise<RunningServer> {
  check(opts && typeof opts.model === 'string' && opts.model.length > 0, 'serve: options.model (a model directory) is required', 'model');
  const host = opts.host ?? '127.0.0.1';
  const timeoutMs = opts.requestTimeoutMs ?? 60_000;
  const maxTokens = opts.maxTokens ?? 256;
  const defaultMaxTokens = Math.min(opts.defaultMaxTokens ?? 16, maxTokens);
  const chunkTokens = opts.streamChunkTokens ?? 8;
  check(Number.isSafeInteger(timeoutMs) && timeoutMs > 0, 'serve: requestTimeoutMs must be a positive integer', 'requestTimeoutMs');
  check(Number.isSafeInteger(maxTokens) && maxTokens > 0, 'serve: maxTokens must be a positive integer', 'maxTokens');
  check(opts.apiKey === undefined || (typeof opts.apiKey === 'string' && opts.apiKey.length > 0), 'serve: apiKey must be a non-empty string', 'apiKey');

  const loaded = await loadForTask(undefined, opts.model, opts.device !== undefined ? { device: opts.device } : {});
  const adapters = new Map<string, string>();
  for (const [name, dir] of Object.entries(opts.adapters ?? {})) {
    check(/^[\w.-]+$/.test(name), `serve: adapter name ${JSON.stringify(name)} must be letters, digits, '_', '-' or '.'`, 'adapters');
    await applyAdapter(loaded.model, dir, name);
    adapters.set(name, dir);
  }
  // A task head trained with an adapter (PEFT's modules_to_save) replaces the model's one head for every call, so
  // the base model alone is no longer available, and no other adapter can be served beside it.
  const headAdapters = [...adapters].filter(([, dir]) => savesModules(dir)).map(([n]) => n);
  if (headAdapters.length > 0 && adapters.size > 1)
    throw new NodetuneError('ERR_CONFIG', `serve: adapter ${headAdapters[0]} carries a trained task head (modules_to_save), which replaces the model's head for all adapters; serve it alone`, { field: 'adapters' });
  const headAdapter = headAdapters[0];
  const name = opts.name ?? path.basename(path.resolve(opts.model));
  const batching = { maxBatch: opts.maxBatch ?? 8, maxWaitMs: opts.maxWaitMs ?? 5, maxQueue: opts.maxQueue ?? 64 };
  const task = loaded.model.task;
  const generator = task === 'causal-lm' ? new TextGenerator(loaded, batching) : undefined;
  const classifier = task === 'sequence-classification' ? new TextClassifier(loaded, batching) : undefined;
  const text2text = task === 'seq2seq-lm' ? new Text2TextGenerator(loaded, 'text2text-generation', batching) : undefined;
  const filler = task === 'masked-lm' ? new MaskFiller(loaded, batching) : undefined;
  const batcher = generator?.batcher ?? classifier?.batcher ?? text2text?.batcher ?? filler?.batcher;
  check(batcher, `serve: ${opts.model} is a ${task} model; the server serves causal-lm (completions), sequence-classification (classify), seq2seq-lm (text2text) and masked-lm (fill-mask) models`, 'model');

  const metrics = new Metrics();
  metrics.queueDepth = () => batcher.stats().pending;
  batcher.onBatch = (size: number, ms: number, results: unknown[] | undefined) => {
    const tokens = generator && results ? (results as Generation[]).reduce((a, g) => a + g.completionTokens, 0) : undefined;
    metrics.batch(size, ms, tokens);
  };
  let draining = false;

  const app = Fastify({
    bodyLimit: opts.bodyLimit ?? 1024 * 1024,
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, useDefaults: false } },
    forceCloseConnections: 'idle',
  });

  let inflight = 0;
  app.addHook('onRequest', async (req, reply) => {
    const started = process.hrtime.bigint();
    inflight++;
    reply.raw.on('close', () => {
      inflight--;
      const route = req.routeOptions.url ?? 'unmatched';
      metrics.request(route, reply.raw.statusCode, Number(process.hrtime.bigint() - started) / 1e9);
    });
    if (opts.apiKey !== undefined && req.url !== '/healthz' && !bearerOk(req.headers.authorization, opts.apiKey)) {
      reply.header('www-authenticate', 'Bearer');
      return reply.code(401).send(errorBody(new HttpError(401, 'authentication_error', 'missing or wrong bearer token (Authorization: Bearer <key>)', null, 'invalid_api_key')));
    }
    return undefined;
  });

  // While draining, tell keep-alive clients to go, so their connections close after this response.
  app.addHook('onSend', async (_req, reply, payload) => {
    if (draining) reply.header('connection', 'close');
    return payload;
  });

  app.setErrorHandler((e, _req, reply) => {
    const h = toHttpError(e);
    return reply.code(h.status).send(errorBody(h));
  });
  app.setNotFoundHandler((req, reply) =>
    reply.code(404).send(errorBody(new HttpError(404, 'not_found', `no route ${req.method} ${req.url}`, null, 'not_found'))));

  /** `model: "name"` (the base model alone) or `"name:adapter"`; unknown names and adapters are 404s. */
  const selectModel = (requested: string | undefined): string | null => {
    if (requested === undefined) return headAdapter ?? null;
    const colon = requested.indexOf(':');
    const base = colon < 0 ? requested : requested.slice(0, colon);
    if (base !== name) throw new HttpError(404, 'invalid_request_error', `model '${base}' is not served here; this server serves '${name}'`, 'model', 'model_not_found');
    if (colon < 0) {
      if (headAdapter !== undefined)
        throw new HttpError(400, 'invalid_request_error', `the base model '${name}' is not available: adapter '${headAdapter}' replaced its task head; use '${name}:${headAdapter}'`, 'model', 'base_unavailable');
      return null;
    }
    const adapter = requested.slice(colon + 1);
    if (!adapters.has(adapter)) {
      const known = adapters.size ? [...adapters.keys()].join(', ') : 'none';
      throw new HttpError(404, 'invalid_request_error', `adapter '${adapter}' is not loaded (loaded adapters: ${known}; start the server with --adapter ${adapter}=DIR)`, 'model', 'adapter_not_found');
    }
    return adapter;
  };

  /** Settles a ticket within the request's deadline: 504 after it (and the request leaves the queue). */
  const within = <O>(deadline: number) => (t: Ticket<O>): Promise<O> => new Promise<O>((resolve, reject) => {
    const timer = setTimeout(() => {
      t.cancel('timed out');
      reject(new HttpError(504, 'timeout', `the request timed out after ${timeoutMs} ms`, null, 'timeout'));
    }, Math.max(0, deadline - Date.now()));
    t.promise.then((v) => (clearTimeout(timer), resolve(v)), (e: unknown) => (clearTimeout(timer), reject(e)));
  });

  const needGenerator = (route: string): TextGenerator => {
    const use = { 'sequence-classification': '/v1/classify', 'seq2seq-lm': '/v1/text2text', 'masked-lm': '/v1/fill-mask' }[task as string];
    if (!generator) throw new HttpError(400, 'invalid_request_error', `${route} needs a causal-lm model; '${name}' is a ${task} model${use ? ` (use ${use})` : ''}`, 'model', 'wrong_task');
    return generator;
  };

  const generate = async (reply: FastifyReply, g: TextGenerator, idsList: number[][], body: CompletionBody | ChatBody, chat: boolean, adapter: string | null) => {
    const deadline = Date.now() + timeoutMs;
    const gen = { ...generationOptions(body, defaultMaxTokens), adapter };
    if (!body.stream) {
      const results = await settleAll(idsList, (ids) => g.submitIds(ids, gen), within<Generation>(deadline), 'a sibling prompt failed');
      for (const r of results) metrics.tokens(r.promptTokens, r.completionTokens);
      return chat ? chatResponse(name, results[0]!) : completionResponse(name, results);
    }
    if (idsList.length !== 1) throw new HttpError(400, 'invalid_request_error', 'stream: true takes a single prompt', 'prompt', 'invalid_value');
    const it = g.stream(idsList[0]!, gen, chunkTokens, within<Generation>(deadline));
    // The first chunk comes before the headers, so a refusal (full queue, timeout) is still a plain status.
    const first = await it.next();
    const res = reply.raw;
    reply.hijack();
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive' });
    let gone = false;
    res.on('close', () => { gone = !res.writableFinished; });
    const out = new ChunkWriter(chat, name);
    const send = (data: unknown) => res.write(`data: ${typeof data === 'string' ? data : JSON.stringify(data)}\n\n`);
    if (chat) send(out.role());
    try {
      let r = first;
      while (!r.done) {
        send(out.piece(r.value));
        if (gone) {
          // The client left: stop generating, and drop the half-closed socket now rather than at a timeout.
          res.destroy();
          return reply;
        }
        r = await it.next();
      }
      metrics.tokens(r.value.promptTokens, r.value.completionTokens);
      send(out.finish(r.value.finishReason, r.value));
      send('[DONE]');
    } catch (e) {
      send(errorBody(toHttpError(e)));
    }
    res.end();
    return reply;
  };

  app.post('/v1/completions', { schema: { body: completionSchema(maxTokens, batching.maxBatch * 4) } }, async (req, reply) => {
    const g = needGenerator('/v1/completions');
    const body = req.body as CompletionBody;
    const adapter = selectModel(body.model);
    const prompts = typeof body.prompt === 'string' ? [body.prompt] : body.prompt;
    const ids = await Promise.all(prompts.map((p) => g.encodePrompt(p)));
    return generate(reply, g, ids, body, false, adapter);
  });

  app.post('/v1/chat/completions', { schema: { body: chatSchema(maxTokens, 256) } }, async (req, reply) => {
    const g = needGenerator('/v1/chat/completions');
    const body = req.body as ChatBody;
    const adapter = selectModel(body.model);
    const tok = loaded.tokenizer;
    if (!tok.hasChatTemplate) throw new HttpError(400, 'invalid_request_error', `model '${name}' has no chat template (tokenizer_config.json chat_template); use /v1/completions`, 'messages', 'no_chat_template');
    const text = tok.applyChatTemplate(body.messages.map((m) => ({ role: m.role, content: m.content })), { addGenerationPrompt: true });
    // The template writes the special tokens itself (BOS and turn markers).
    const ids = await g.encodePrompt(text, false);
    return generate(reply, g, [ids], body, true, adapter);
  });

  app.post('/v1/classify', { schema: { body: classifySchema(batching.maxBatch * 4) } }, async (req) => {
    if (!classifier) throw new HttpError(400, 'invalid_request_error', `/v1/classify needs a sequence-classification model; '${name}' is a ${task} model`, 'model', 'wrong_task');
    const body = req.body as ClassifyBody;
    const adapter = selectModel(body.model);
    const inputs = typeof body.input === 'string' ? [body.input] : body.input;
    const results = await settleAll(inputs, (t) => classifier.submit(t, { adapter }), within(Date.now() + timeoutMs), 'a sibling input failed');
    return { object: 'list', model: name, data: results.map((r, index) => ({ index, ...r })) };
  });

  registerEncoderRoutes({ app, name, task, timeoutMs, maxInputs: batching.maxBatch * 4, maxTokens, defaultMaxTokens, selectModel, within }, text2text, filler);

  app.get('/healthz', async (_req, reply) => {
    const body = { status: draining ? 'draining' : 'ok', model: name, task, queue: batcher.stats().pending };
    return reply.code(draining ? 503 : 200).send(body);
  });

  app.get('/metrics', async (_req, reply) =>
    reply.header('content-type', 'text/plain; version=0.0.4; charset=utf-8').send(metrics.render()));

  await app.listen({ host, port: opts.port ?? 8080 });
  const addr = app.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : opts.port ?? 8080;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  let closing: Promise<void> | undefined;
  return {
    url, name, task, app,
    stats: () => batcher.stats(),
    close() {
      if (closing) return closing;
      draining = true;
      batcher.flush();
      // Node closes connections idle at close() once; ones that finish a request later are closed as they go idle,
      // and once no request is in flight, every socket left (say, one opened that never sent a request) is closed.
      const sweep = setInterval(() => (inflight === 0 ? app.server.closeAllConnections() : app.server.closeIdleConnections()), 20);
      return (closing = app.close().finally(() => clearInterval(sweep)));
    },
  };
}
