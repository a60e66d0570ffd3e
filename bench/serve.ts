/**
 * Serving load test on loopback: the same bounded set of concurrent completion requests against the server
 * with one request per forward pass (maxBatch 1) and with micro-batching (maxBatch 8, 5 ms wait), on the real
 * pretrained stories260K Llama from ../shared/assets. Requests: greedy, fixed max_tokens, so both servers do
 * the same work; reports requests/s, generated tokens/s, latency percentiles and the mean batch size.
 */
import * as fs from 'fs';
import * as path from 'path';
import { startServer } from '../lib/serve';

const root = path.resolve(__dirname, '..', '..');

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

const PROMPTS = ['Once upon a time', 'The little dog', 'Lily and Ben went to the park', 'One day, a bird', 'Tom had a red ball',
  'The sun was shining', 'Mom said', 'There was a big tree'];

async function load(modelDir: string, batching: { maxBatch: number; maxWaitMs: number }, requests: number, clients: number, maxTokens: number, deadline: number) {
  const server = await startServer({ model: modelDir, port: 0, maxQueue: 1024, ...batching });
  try {
    const latencies: number[] = [];
    let tokens = 0;
    let next = 0;
    // One untimed request first, so neither configuration pays the first call's warm-up.
    await fetch(`${server.url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ prompt: 'Hello', max_tokens: 2 }) });
    const t0 = Date.now();
    const client = async () => {
      while (next < requests && Date.now() < deadline) {
        const i = next++;
        const started = Date.now();
        const r = await fetch(`${server.url}/v1/completions`, {
          method: 'POST', headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ prompt: PROMPTS[i % PROMPTS.length], max_tokens: maxTokens }),
        });
        const body = (await r.json()) as { usage?: { completion_tokens: number }; error?: { message: string } };
        if (r.status !== 200) throw new Error(`request ${i}: ${r.status} ${body.error?.message}`);
        tokens += body.usage!.completion_tokens;
        latencies.push(Date.now() - started);
      }
    };
    await Promise.all(Array.from({ length: clients }, client));
    const seconds = (Date.now() - t0) / 1000;
    const s = server.stats();
    return {
      requests: latencies.length, seconds: +seconds.toFixed(3),
      requestsPerSecond: +(latencies.length / seconds).toFixed(2), tokensPerSecond: +(tokens / seconds).toFixed(1),
      latencyP50Ms: percentile(latencies, 50), latencyP95Ms: percentile(latencies, 95),
      meanBatchSize: +((s.items - 1) / Math.max(1, s.batches - 1)).toFixed(2),
    };
  } finally {
    await server.close();
  }
}

export async function benchServer(opts: { quick: boolean }): Promise<Record<string, unknown>> {
  const modelDir = path.resolve(root, '..', 'shared', 'assets', 'models', 'stories260K');
  if (!fs.existsSync(path.join(modelDir, 'model.safetensors'))) return { skipped: `${modelDir}/model.safetensors is missing` };
  const requests = opts.quick ? 32 : 128;
  const clients = 8;
  const maxTokens = opts.quick ? 16 : 32;
  // Bounded: each configuration stops issuing requests after this long.
  const budgetMs = opts.quick ? 30_000 : 120_000;
  const one = await load(modelDir, { maxBatch: 1, maxWaitMs: 0 }, requests, clients, maxTokens, Date.now() + budgetMs);
  const batched = await load(modelDir, { maxBatch: 8, maxWaitMs: 5 }, requests, clients, maxTokens, Date.now() + budgetMs);
  return {
    model: 'stories260K', clients, maxTokens, requests,
    oneAtATime: one, microBatched: batched,
    throughputGain: +(batched.tokensPerSecond / one.tokensPerSecond).toFixed(2),
  };
}

if (require.main === module) {
  benchServer({ quick: process.argv.includes('--quick') }).then((r) => console.log(JSON.stringify(r, null, 2)), (e) => {
    console.error(e);
    process.exitCode = 1;
  });
}
