/**
 * Serving load test on loopback with streaming clients, on the real pretrained stories260K Llama from
 * ../shared/assets: one client alone (the batch-1 baseline), then 16 concurrent clients against static batching (a
 * batch gathered for 5 ms runs until its last row ends) and against continuous batching (requests join the running
 * batch at token boundaries, rows leave when they end). Every request streams (SSE, one event per decodable piece of
 * text) greedy tokens with max_tokens varying per request; reported: aggregate generated tokens/s, time to first
 * token and inter-token latency percentiles (gaps between a stream's events), and the mean rows per decoding step.
 */
import * as fs from 'fs';
import * as path from 'path';
import { startServer } from '../lib/serve';

const root = path.resolve(__dirname, '..', '..');

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? 0 : s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

const PROMPTS = ['Once upon a time', 'The little dog', 'Lily and Ben went to the park', 'One day, a bird', 'Tom had a red ball',
  'The sun was shining', 'Mom said', 'There was a big tree'];

interface Load { requests: number; clients: number; maxTokens: number; deadline: number }

/** One streamed completion: its event times (ms since the request) and generated tokens. */
async function streamOne(url: string, prompt: string, maxTokens: number): Promise<{ times: number[]; tokens: number }> {
  const started = performance.now();
  const r = await fetch(`${url}/v1/completions`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ prompt, max_tokens: maxTokens, stream: true, stream_options: { include_usage: true }, stop: null }),
  });
  if (r.status !== 200) throw new Error(`${r.status} ${await r.text()}`);
  const times: number[] = [];
  let tokens = 0;
  let buffer = '';
  const decoder = new TextDecoder();
  for await (const chunk of r.body as unknown as AsyncIterable<Uint8Array>) {
    buffer += decoder.decode(chunk, { stream: true });
    for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
      const data = buffer.slice(6, end);
      buffer = buffer.slice(end + 2);
      if (data === '[DONE]') continue;
      const ev = JSON.parse(data) as { choices: { text: string }[]; usage?: { completion_tokens: number } | null };
      if (ev.usage) tokens = ev.usage.completion_tokens;
      if (ev.choices[0]?.text) times.push(performance.now() - started);
    }
  }
  return { times, tokens };
}

async function load(modelDir: string, batching: 'static' | 'continuous', l: Load) {
  const server = await startServer({ model: modelDir, port: 0, maxQueue: 1024, maxBatch: 16, maxWaitMs: 5, maxTokens: 512, batching });
  try {
    await streamOne(server.url, 'Hello', 2);  // untimed: the first call's warm-up
    const before = server.stats();
    const ttft: number[] = [];
    const gaps: number[] = [];
    let tokens = 0;
    let next = 0;
    const t0 = performance.now();
    const client = async () => {
      while (next < l.requests && Date.now() < l.deadline) {
        const i = next++;
        // Lengths vary (as real requests do): 1/2 to 1x max_tokens.
        const r = await streamOne(server.url, PROMPTS[i % PROMPTS.length]!, Math.ceil(l.maxTokens * (0.5 + 0.5 * ((i * 7) % 8) / 7)));
        tokens += r.tokens;
        if (r.times.length > 0) ttft.push(r.times[0]!);
        for (let j = 1; j < r.times.length; j++) gaps.push(r.times[j]! - r.times[j - 1]!);
      }
    };
    await Promise.all(Array.from({ length: l.clients }, client));
    const seconds = (performance.now() - t0) / 1000;
    const s = server.stats();
    return {
      clients: l.clients, requests: next, seconds: +seconds.toFixed(2), tokensPerSecond: +(tokens / seconds).toFixed(1),
      ttftP50Ms: +percentile(ttft, 50).toFixed(1), ttftP99Ms: +percentile(ttft, 99).toFixed(1),
      interTokenP50Ms: +percentile(gaps, 50).toFixed(2), interTokenP99Ms: +percentile(gaps, 99).toFixed(2),
      meanRowsPerStep: +((s.batches - before.batches) > 0 ? tokens / (s.batches - before.batches) : 0).toFixed(2),
    };
  } finally {
    await server.close();
  }
}

export async function benchServer(opts: { quick: boolean }): Promise<Record<string, unknown>> {
  const modelDir = path.resolve(root, '..', 'shared', 'assets', 'models', 'stories260K');
  if (!fs.existsSync(path.join(modelDir, 'model.safetensors'))) return { skipped: `${modelDir}/model.safetensors is missing` };
  const maxTokens = opts.quick ? 24 : 128;
  const requests = opts.quick ? 32 : 64;
  // Bounded: each configuration stops issuing requests after this long.
  const budgetMs = opts.quick ? 30_000 : 120_000;
  const alone = await load(modelDir, 'continuous', { requests: opts.quick ? 4 : 8, clients: 1, maxTokens, deadline: Date.now() + budgetMs });
  const staticRun = await load(modelDir, 'static', { requests, clients: 16, maxTokens, deadline: Date.now() + budgetMs });
  const continuous = await load(modelDir, 'continuous', { requests, clients: 16, maxTokens, deadline: Date.now() + budgetMs });
  return {
    model: 'stories260K', maxTokens, batch1: alone, static16: staticRun, continuous16: continuous,
    continuousOverBatch1: +(continuous.tokensPerSecond / alone.tokensPerSecond).toFixed(2),
    continuousOverStatic: +(continuous.tokensPerSecond / staticRun.tokensPerSecond).toFixed(2),
    p99InterTokenOverBatch1: +(continuous.interTokenP99Ms / Math.max(alone.interTokenP99Ms, 1e-3)).toFixed(2),
  };
}

if (require.main === module) {
  benchServer({ quick: process.argv.includes('--quick') }).then((r) => console.log(JSON.stringify(r, null, 2)), (e) => {
    console.error(e);
    process.exitCode = 1;
  });
}
