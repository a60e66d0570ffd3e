/**
 * The HTTP server (Fastify): OpenAI-style completions and chat completions (streamed with server-sent events),
 * classification, health and Prometheus metrics. Requests are micro-batched by the pipelines' batchers.
 */
import { timingSafeEqual } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import Fastify, { FastifyInstance } from 'fastify';
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
import { registerRequestLog } from './request-log';
import { Metrics } from './metrics';
import { registerCompletionRoutes } from './completions';
import type { ClassifyBody } from './openai';
import { classifySchema } from './schemas';

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
  /** One line per request (method, route, status, ms, tokens where known) to this function; default: no request log. */
  log?: (line: string) => void;
  /** causal-lm: 'continuous' (default) admits requests into the running batch at token boundaries; 'static' lets a
   * batch run until its last row finishes (for comparison). */
  batching?: 'continuous' | 'static';
  /** causal-lm: most prompt tokens prefilled per decoding step (running streams keep their pace). Default 512. */
  prefillBudget?: number;
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
  check(opts.batching === undefined || opts.batching === 'continuous' || opts.batching === 'static', "serve: batching must be 'continuous' or 'static'", 'batching');
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
  const generator = task === 'causal-lm' ? new TextGenerator(loaded, {
    ...batching, ...(opts.batching !== undefined ? { batching: opts.batching } : {}), ...(opts.prefillBudget !== undefined ? { prefillBudget: opts.prefillBudget } : {}),
  }) : undefined;
  const classifier = task === 'sequence-classification' ? new TextClassifier(loaded, batching) : undefined;
  const text2text = task === 'seq2seq-lm' ? new Text2TextGenerator(loaded, 'text2text-generation', batching) : undefined;
  const filler = task === 'masked-lm' ? new MaskFiller(loaded, batching) : undefined;
  const batcher = generator?.batcher ?? classifier?.batcher ?? text2text?.batcher ?? filler?.batcher;
  check(batcher, `serve: ${opts.model} is a ${task} model; the server serves causal-lm (completions), sequence-classification (classify), seq2seq-lm (text2text) and masked-lm (fill-mask) models`, 'model');

  const stats = (): BatchStats => generator?.stats() ?? batcher.stats();
  const metrics = new Metrics();
  metrics.queueDepth = () => stats().pending;
  if (generator) generator.scheduler.onStep = (rows, ms) => metrics.batch(rows, ms, rows);
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

  if (opts.log) registerRequestLog(app, opts.log);
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

  registerCompletionRoutes({
    app, name, task, timeoutMs, maxInputs: batching.maxBatch * 4, maxTokens, defaultMaxTokens, selectModel, within,
    metrics, maxChoices: batching.maxBatch * 4, needGenerator,
  }, loaded.tokenizer);

  // OpenAI's model list (created: when this server started): the base model (unless an adapter replaced its head) and "<name>:<adapter>" per adapter.
  const created = Math.floor(Date.now() / 1000);
  const modelIds = [...(headAdapter === undefined ? [name] : []), ...[...adapters.keys()].map((a) => `${name}:${a}`)];
  const modelEntry = (id: string) => ({ id, object: 'model', created, owned_by: 'nodetune' });
  app.get('/v1/models', async () => ({ object: 'list', data: modelIds.map(modelEntry) }));
  app.get('/v1/models/:id', async (req) => {
    const { id } = req.params as { id: string };
    if (!modelIds.includes(id)) throw new HttpError(404, 'invalid_request_error', `model '${id}' is not served here; this server serves ${modelIds.map((m) => `'${m}'`).join(', ')}`, 'model', 'model_not_found');
    return modelEntry(id);
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
    const body = { status: draining ? 'draining' : 'ok', model: name, task, queue: stats().pending };
    return reply.code(draining ? 503 : 200).send(body);
  });

  app.get('/metrics', async (_req, reply) => reply.header('content-type', metrics.contentType).send(await metrics.render()));

  await app.listen({ host, port: opts.port ?? 8080 });
  const addr = app.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : opts.port ?? 8080;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  let closing: Promise<void> | undefined;
  return {
    url, name, task, app,
    stats,
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
