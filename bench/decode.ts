/**
 * Decoding speed against its ceiling, in one run: batch-1 greedy decode of the 0.5B Qwen2 shape (random weights
 * from AutoModel.fromConfig, bfloat16) through a generation session, the time to first token (prefill + first
 * draw), and LibTorch's read bandwidth over 1 GiB. Batch-1 decoding reads every weight once per token, so
 * bandwidth / weight bytes is the ceiling in tokens/s; the share is decode tokens/s over it. Then 16 rows
 * decoding together in the same session: aggregate tokens/s and the step time (each row's inter-token latency).
 * Also model.generate() (the same cache, its own loop) for comparison. `--quick`: a 4-layer cut of the shape.
 */
import { AutoModel } from '../lib/models';
import type { GenerationSession } from '../lib/models/session';
import { measureReadBandwidth } from '../lib/runtime';

const QWEN2_05B = {
  model_type: 'qwen2', architectures: ['Qwen2ForCausalLM'], hidden_size: 896, intermediate_size: 4864, num_hidden_layers: 24,
  num_attention_heads: 14, num_key_value_heads: 2, vocab_size: 151936, max_position_embeddings: 32768, rope_theta: 1000000,
  rms_norm_eps: 1e-6, tie_word_embeddings: true, hidden_act: 'silu', eos_token_id: 151643, bos_token_id: 151643,
};

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

/** Steps the session until its rows finish; the time of each step (ms). */
async function timedSteps(session: GenerationSession): Promise<number[]> {
  const times: number[] = [];
  while (session.running > 0) {
    const t0 = process.hrtime.bigint();
    await session.step();
    times.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  return times;
}

export async function benchDecode(opts: { quick: boolean }): Promise<Record<string, unknown>> {
  const config = opts.quick ? { ...QWEN2_05B, num_hidden_layers: 4 } : QWEN2_05B;
  const model = await AutoModel.fromConfig(config, { task: 'causal-lm', dtype: 'bfloat16', seed: 0, quiet: true });
  const weightBytes = model.parameters().reduce((a, p) => a + p.shape.reduce((x, y) => x * y, 1) * 2, 0);
  const newTokens = opts.quick ? 12 : 48;
  const prompt = Array.from({ length: 16 }, (_, i) => 1000 + 37 * i);
  const row = { maxNewTokens: newTokens, stopTokens: null };

  // Warm-up (thread pools, first allocations), then batch 1.
  const warm = model.createSession();
  warm.add(prompt, { maxNewTokens: 2, stopTokens: null });
  await timedSteps(warm);
  warm.close();
  const readGBps = await measureReadBandwidth(2 ** 30, opts.quick ? 3 : 5);
  const one = model.createSession();
  one.add(prompt, row);
  const cpu0 = process.cpuUsage();
  const steps = await timedSteps(one);
  const cpu = process.cpuUsage(cpu0);
  one.close();
  // CPU time the process got over the decode's wall time: on a shared machine, below the threads' count means other
  // processes had the cores part of the time (the read bandwidth is measured in a short burst).
  const cpuPerWall = (cpu.user + cpu.system) / 1e6 / (steps.reduce((a, b) => a + b, 0) / 1000);
  const ttftMs = steps[0]!;
  const decodeMs = steps.slice(1);
  const decodeTokensPerSec = decodeMs.length / (decodeMs.reduce((a, b) => a + b, 0) / 1000);
  const ceiling = readGBps * 1e9 / weightBytes;
  // The bandwidth again after decoding: the machine is shared, so the two brackets show the drift.
  const readAfterGBps = await measureReadBandwidth(2 ** 30, opts.quick ? 3 : 5);

  // model.generate() on the same prompt (prefill included).
  const g0 = process.hrtime.bigint();
  await model.generate([prompt], { maxNewTokens: newTokens, eosTokenId: null });
  const generateTokensPerSec = newTokens / (Number(process.hrtime.bigint() - g0) / 1e9);

  // 16 rows in one session: prefilled one per step (as a server admits them), then decoding together.
  const rows = 16;
  const many = model.createSession();
  for (let i = 0; i < rows; i++) many.add(prompt.map((t) => t + i), row);
  const manySteps = await timedSteps(many);
  many.close();
  const full = manySteps.slice(1, newTokens);  // steps with all rows decoding (the first one prefills them)
  const aggregate = rows * full.length / (full.reduce((a, b) => a + b, 0) / 1000);
  return {
    model: opts.quick ? 'qwen2-0.5B shape, 4 layers' : 'qwen2-0.5B shape', dtype: 'bfloat16', weightGB: +(weightBytes / 1e9).toFixed(3), newTokens,
    readGBps: +readGBps.toFixed(1), readAfterGBps: +readAfterGBps.toFixed(1), ceilingTokensPerSec: +ceiling.toFixed(1),
    batch1: { ttftMs: +ttftMs.toFixed(1), decodeTokensPerSec: +decodeTokensPerSec.toFixed(2), shareOfCeiling: +(decodeTokensPerSec / ceiling).toFixed(3),
      interTokenP50Ms: +percentile(decodeMs, 50).toFixed(1), interTokenP99Ms: +percentile(decodeMs, 99).toFixed(1),
      cpuSecondsPerSecond: +cpuPerWall.toFixed(2) },
    generateTokensPerSec: +generateTokensPerSec.toFixed(2),
    rows16: { aggregateTokensPerSec: +aggregate.toFixed(1), gainOverBatch1: +(aggregate / decodeTokensPerSec).toFixed(2),
      stepP50Ms: +percentile(full, 50).toFixed(1), stepP99Ms: +percentile(full, 99).toFixed(1), prefillStepMs: +manySteps[0]!.toFixed(1) },
  };
}

if (require.main === module) {
  benchDecode({ quick: process.argv.includes('--quick') }).then((r) => console.log(JSON.stringify(r, null, 2)), (e) => {
    console.error(e);
    process.exitCode = 1;
  });
}
