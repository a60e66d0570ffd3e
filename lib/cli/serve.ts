/** `nodetune serve`: the HTTP server on a model directory, until SIGINT/SIGTERM (then it drains and exits 0). */
import { NodetuneError } from '../errors';
import { parseCliArgs } from './args';
import { startServer } from '../serve';
import type { ServeOptions } from '../serve';

export const SERVE_HELP = `Usage: nodetune serve --model DIR [options]

Serves a causal-lm model (POST /v1/completions, /v1/chat/completions, OpenAI-style, stream: true for
server-sent events), a sequence-classification model (POST /v1/classify), a seq2seq-lm model such as T5
(POST /v1/text2text) or a masked-lm model (POST /v1/fill-mask), plus GET /healthz and GET /metrics
(Prometheus). Concurrent requests are micro-batched into one forward pass.

Options:
  --model DIR          model directory (config.json, safetensors, tokenizer)   (required)
  --adapter NAME=DIR   load an adapter, selected per request with "model": "<name>:NAME" (repeatable)
  --host HOST          address to bind (default 127.0.0.1, loopback only)
  --port N             port (default 8080; 0 picks a free one)
  --api-key KEY        require "Authorization: Bearer KEY" (default: $NODETUNE_API_KEY, else no auth)
  --name NAME          the model's name in requests and responses (default: the directory's name)
  --max-batch N        most requests per forward pass; causal-lm: most rows decoding together (default 8)
  --max-wait-ms N      longest a request waits for a batch to fill (default 5; causal-lm: static batching only)
  --batching MODE      causal-lm: continuous (default: requests join the running batch at token boundaries) or static
  --prefill-budget N   causal-lm: most prompt tokens prefilled per decoding step (default 512)
  --max-queue N        waiting requests beyond this are answered 503 (default 64)
  --timeout-ms N       per-request timeout, answered 504 (default 60000)
  --max-tokens N       largest max_tokens accepted (default 256)
  --body-limit BYTES   largest request body, answered 413 beyond (default 1048576)
  --device DEVICE      cpu (default), cuda, cuda:N
  --quiet              no request log (by default one line per request on standard output:
                       method, route, status, milliseconds, prompt+completion tokens where known)

Examples:
  nodetune serve --model ./out/final --port 8080
  curl -s localhost:8080/v1/completions -H 'content-type: application/json' -d '{"prompt": "Once upon a time", "max_tokens": 32}'`;

/** A usage error (exit code 2): main() maps Node's parseArgs codes to exit 2, whichever module defines UsageError. */
function usage(message: string): Error {
  return Object.assign(new Error(message), { code: 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE' });
}

function int(v: string | undefined, name: string, min: number): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v) || Number(v) < min) throw usage(`--${name} must be an integer >= ${min}, got '${v}'`);
  return Number(v);
}

export async function serve(argv: string[], out: (s: string) => void): Promise<number> {
  const { values } = parseCliArgs({
    args: argv,
    options: {
      model: { type: 'string' }, adapter: { type: 'string', multiple: true }, host: { type: 'string' }, port: { type: 'string' },
      'api-key': { type: 'string' }, name: { type: 'string' }, 'max-batch': { type: 'string' }, 'max-wait-ms': { type: 'string' }, batching: { type: 'string' }, 'prefill-budget': { type: 'string' },
      'max-queue': { type: 'string' }, 'timeout-ms': { type: 'string' }, 'max-tokens': { type: 'string' }, 'body-limit': { type: 'string' },
      device: { type: 'string' }, quiet: { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) {
    out(SERVE_HELP);
    return 0;
  }
  if (!values.model) throw usage('--model DIR is required');
  const adapters: Record<string, string> = {};
  for (const a of values.adapter ?? []) {
    const eq = a.indexOf('=');
    if (eq <= 0 || eq === a.length - 1) throw usage(`--adapter takes NAME=DIR, got '${a}'`);
    adapters[a.slice(0, eq)] = a.slice(eq + 1);
  }
  const apiKey = values['api-key'] ?? process.env.NODETUNE_API_KEY;
  const opts: ServeOptions = { model: values.model, adapters };
  const set = <K extends keyof ServeOptions>(k: K, v: ServeOptions[K] | undefined) => { if (v !== undefined) opts[k] = v; };
  set('host', values.host);
  set('port', int(values.port, 'port', 0));
  set('apiKey', apiKey === '' ? undefined : apiKey);
  set('name', values.name);
  set('maxBatch', int(values['max-batch'], 'max-batch', 1));
  set('maxWaitMs', int(values['max-wait-ms'], 'max-wait-ms', 0));
  set('maxQueue', int(values['max-queue'], 'max-queue', 1));
  if (values.batching !== undefined && values.batching !== 'continuous' && values.batching !== 'static')
    throw new NodetuneError('ERR_ARGUMENT', `--batching must be continuous or static, got ${JSON.stringify(values.batching)}`, { field: 'batching' });
  set('batching', values.batching as 'continuous' | 'static' | undefined);
  set('prefillBudget', int(values['prefill-budget'], 'prefill-budget', 1));
  set('requestTimeoutMs', int(values['timeout-ms'], 'timeout-ms', 1));
  set('maxTokens', int(values['max-tokens'], 'max-tokens', 1));
  set('bodyLimit', int(values['body-limit'], 'body-limit', 1));
  set('device', values.device);
  if (!values.quiet) opts.log = out;
  const server = await startServer(opts);
  out(`nodetune serve: ${server.name} (${server.task}) listening on ${server.url}${opts.apiKey ? ' (bearer token required)' : ''}`);
  const signal = await new Promise<string>((resolve) => {
    process.once('SIGINT', () => resolve('SIGINT'));
    process.once('SIGTERM', () => resolve('SIGTERM'));
  });
  out(`nodetune serve: ${signal}: draining in-flight requests`);
  await server.close();
  out('nodetune serve: stopped');
  return 0;
}
