/**
 * Real-size training steps (issue 15): a Qwen2.5-0.5B-shaped and a Llama-3.2-1B-shaped model built with fresh
 * weights (AutoModel.fromConfig), one sequence of 256 tokens, LoRA r 16 on every linear layer in bf16 (bfloat16
 * weights, precision 'bf16') and in fp32, and full fine-tuning of the 0.5B shape in bf16 mixed precision (float32
 * master weights). Each against the same step in PyTorch eager on the same LibTorch (bench/pytorch_step.py: frozen
 * bfloat16 base, float32 LoRA weights, torch.autocast('cpu', bfloat16), AdamW on the trainable weights), each case
 * in its own process, ours and PyTorch's alternated round by round. `--quick`: the 0.5B LoRA bf16 case only.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

export interface RealSizeOptions {
  quick: boolean;
  /** GFLOP/s of 1024 x 1024 products measured in the same run: fp32 (the BLAS) and bf16 (LibTorch, every core). */
  fp32Peak: number;
  bf16Peak: number;
  python: string | undefined;
  runChild(cmd: string, args: string[]): ChildRun;
  median(xs: number[]): number;
}

export interface ChildRun {
  loadMs: number;
  times: number[];
  losses: number[];
  peakRssKb: number;
  threads?: number;
  trainable?: number;
  /** Parameters of the model (weights only). */
  params?: number;
}

type Config = Record<string, unknown>;

const QWEN_05B: Config = {
  model_type: 'qwen2', architectures: ['Qwen2ForCausalLM'], hidden_size: 896, intermediate_size: 4864, num_hidden_layers: 24,
  num_attention_heads: 14, num_key_value_heads: 2, vocab_size: 151936, max_position_embeddings: 32768, rope_theta: 1000000,
  rms_norm_eps: 1e-6, tie_word_embeddings: true, hidden_act: 'silu', use_sliding_window: false, initializer_range: 0.02,
  bos_token_id: 151643, eos_token_id: 151643,
};

const LLAMA_1B: Config = {
  model_type: 'llama', architectures: ['LlamaForCausalLM'], hidden_size: 2048, intermediate_size: 8192, num_hidden_layers: 16,
  num_attention_heads: 32, num_key_value_heads: 8, head_dim: 64, vocab_size: 128256, max_position_embeddings: 131072,
  rope_theta: 500000, rope_scaling: { rope_type: 'llama3', factor: 32, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 },
  rms_norm_eps: 1e-5, tie_word_embeddings: true, hidden_act: 'silu', initializer_range: 0.02, bos_token_id: 128000, eos_token_id: 128001,
};

interface Case {
  name: string;
  config: Config;
  method: 'lora' | 'full';
  precision: 'bf16' | 'fp32';
  dtype: 'bfloat16' | 'float32';
}

/** Weights that take part in matrix products, the tied head included (the embedding lookup is not a product). */
function productParams(c: Config): number {
  const h = c.hidden_size as number, ffn = c.intermediate_size as number, nh = c.num_attention_heads as number;
  const nkv = (c.num_key_value_heads as number | undefined) ?? nh, d = (c.head_dim as number | undefined) ?? h / nh;
  const layer = h * nh * d * 2 + h * nkv * d * 2 + 3 * h * ffn;
  return (c.num_hidden_layers as number) * layer + (c.vocab_size as number) * h;
}

/** LoRA r on every linear layer: r x (in + out) per layer. */
function loraParams(c: Config, r: number): number {
  const h = c.hidden_size as number, ffn = c.intermediate_size as number, nh = c.num_attention_heads as number;
  const nkv = (c.num_key_value_heads as number | undefined) ?? nh, d = (c.head_dim as number | undefined) ?? h / nh;
  const layer = r * ((h + nh * d) * 2 + (h + nkv * d) * 2 + 3 * (h + ffn));
  return (c.num_hidden_layers as number) * layer;
}

/** FLOPs of one step over `tokens` tokens: forward 2NT and the input gradients 2NT over the products; the weight
 * gradients 2NT for the trainable ones (all of them in full fine-tuning, the LoRA matrices otherwise); attention
 * scores and values 2 x 2 x T^2 x (heads x head_dim) per layer forward, twice that backward. */
export function stepFlops(c: Config, method: 'lora' | 'full', tokens: number, r = 16): number {
  const n = productParams(c);
  const nh = c.num_attention_heads as number, h = c.hidden_size as number, d = (c.head_dim as number | undefined) ?? h / nh;
  const attention = 3 * 4 * tokens * tokens * nh * d * (c.num_hidden_layers as number) / 2;  // causal: half the scores
  return method === 'full' ? 6 * n * tokens + attention : 4 * n * tokens + 6 * loraParams(c, r) * tokens + attention;
}

export function benchRealSize(o: RealSizeOptions, work: string): Record<string, unknown>[] {
  const cases: Case[] = [{ name: 'qwen2.5-0.5B', config: QWEN_05B, method: 'lora', precision: 'bf16', dtype: 'bfloat16' }];
  if (!o.quick) {
    cases.push(
      { name: 'qwen2.5-0.5B', config: QWEN_05B, method: 'lora', precision: 'fp32', dtype: 'float32' },
      { name: 'qwen2.5-0.5B', config: QWEN_05B, method: 'full', precision: 'bf16', dtype: 'float32' },
      { name: 'llama-3.2-1B', config: LLAMA_1B, method: 'lora', precision: 'bf16', dtype: 'bfloat16' },
      { name: 'llama-3.2-1B', config: LLAMA_1B, method: 'lora', precision: 'fp32', dtype: 'float32' },
    );
  }
  const seq = 256;
  const rounds = o.quick ? 1 : 2;
  const steps = o.quick ? 2 : 3;
  const cores = os.cpus().length;
  const rows: Record<string, unknown>[] = [];
  for (const c of cases) {
    const vocab = c.config.vocab_size as number;
    const batchFile = path.join(work, `real-${c.name}.json`);
    let state = 7;
    const ids = Array.from({ length: seq }, () => ((state = (Math.imul(state, 1664525) + 1013904223) >>> 0) % vocab));
    fs.writeFileSync(batchFile, JSON.stringify({ inputIds: [ids] }));
    const common = { config: c.config, batchFile, steps, warmup: 1, dtype: c.dtype, precision: c.precision,
      ...(c.method === 'lora' ? { loraTargets: 'all-linear', loraRank: 16 } : {}) };
    // PyTorch with LibTorch threads = cores in bf16 (what nodetune uses there), its default in fp32.
    const torchThreads = c.precision === 'bf16' || c.dtype === 'bfloat16' ? cores : undefined;
    const ours: ChildRun[] = [];
    const torch: ChildRun[] = [];
    for (let r = 0; r < rounds; r++) {
      ours.push(o.runChild(process.execPath, [path.join(__dirname, 'step-child.js'), JSON.stringify({ ...common, mode: 'train' })]));
      if (o.python) torch.push(o.runChild(o.python, [path.join(__dirname, '..', '..', 'bench', 'pytorch_step.py'), JSON.stringify({ ...common, threads: torchThreads })]));
    }
    const flops = stepFlops(c.config, c.method, seq);
    const peak = c.precision === 'bf16' || c.dtype === 'bfloat16' ? o.bf16Peak : o.fp32Peak;
    const summarize = (runs: ChildRun[]) => {
      if (runs.length === 0) return undefined;
      const ms = o.median(runs.flatMap((x) => x.times));
      const peakKb = Math.max(...runs.map((x) => x.peakRssKb));
      return {
        medianStepMs: ms, bestStepMs: Math.min(...runs.flatMap((x) => x.times)), tokensPerSec: seq / (ms / 1000),
        achievedGflops: flops / (ms / 1000) / 1e9, fractionOfPeak: flops / (ms / 1000) / 1e9 / peak,
        peakRssMb: peakKb / 1024 /* MiB (VmHWM is in KiB); the JSON field keeps its name */, loadMs: o.median(runs.map((x) => x.loadMs)),
        firstLoss: runs[0]!.losses[0], trainable: runs[0]!.trainable, threads: runs[0]!.threads,
        // Against the weights' own bytes (issue 15's memory target for LoRA on a bfloat16 base).
        peakRssPerWeightBytes: runs[0]!.params ? peakKb * 1024 / (runs[0]!.params * (c.dtype === 'bfloat16' ? 2 : 4)) : undefined,
      };
    };
    const row = { name: c.name, method: c.method, precision: c.precision, dtype: c.dtype, tokens: seq, stepGflop: flops / 1e9,
      peakUsed: c.precision === 'bf16' || c.dtype === 'bfloat16' ? 'bf16' : 'fp32', nodetune: summarize(ours)!, pytorch: summarize(torch) };
    rows.push(row);
    const n = row.nodetune;
    const label = `${c.name} ${c.method === 'lora' ? 'LoRA r16' : 'full'} ${c.precision}${c.dtype === 'bfloat16' ? ' (bf16 weights)' : ''}`;
    let line = `${label.padEnd(40)} nodetune ${n.medianStepMs.toFixed(0).padStart(6)} ms/step ${n.tokensPerSec.toFixed(0).padStart(4)} tok/s ` +
      `${n.achievedGflops.toFixed(0).padStart(4)} GFLOP/s (${(n.fractionOfPeak * 100).toFixed(0)}% of the ${row.peakUsed} peak) RSS ${n.peakRssMb.toFixed(0)} MiB build ${n.loadMs.toFixed(0)} ms`;
    const p = row.pytorch;
    if (p) line += `\n${''.padEnd(40)} pytorch  ${p.medianStepMs.toFixed(0).padStart(6)} ms/step ${p.tokensPerSec.toFixed(0).padStart(4)} tok/s ` +
      `${p.achievedGflops.toFixed(0).padStart(4)} GFLOP/s (${(p.fractionOfPeak * 100).toFixed(0)}%) RSS ${p.peakRssMb.toFixed(0)} MiB, threads ${p.threads}` +
      ` -> nodetune/pytorch ${(n.medianStepMs / p.medianStepMs).toFixed(2)} (best steps ${(n.bestStepMs / p.bestStepMs).toFixed(2)}), RSS ${(n.peakRssMb / p.peakRssMb).toFixed(2)}`;
    console.log(line);
  }
  const find = (name: string, method: string, precision: string) => rows.find((r) => r.name === name && r.method === method && r.precision === precision) as
    { nodetune: { medianStepMs: number } } | undefined;
  const bf16 = find('qwen2.5-0.5B', 'lora', 'bf16'), fp32 = find('qwen2.5-0.5B', 'lora', 'fp32');
  const big = rows.find((r) => r.name === 'llama-3.2-1B' && r.method === 'lora' && r.precision === 'bf16') as { nodetune: { peakRssMb: number; peakRssPerWeightBytes?: number } } | undefined;
  if (big?.nodetune.peakRssPerWeightBytes !== undefined)
    console.log(`llama-3.2-1B LoRA bf16 peak RSS ${big.nodetune.peakRssMb.toFixed(0)} MiB = ${big.nodetune.peakRssPerWeightBytes.toFixed(2)}x its bfloat16 weights (target <= 1.3)`);
  if (bf16 && fp32) console.log(`qwen2.5-0.5B LoRA bf16/fp32 step time ${(bf16.nodetune.medianStepMs / fp32.nodetune.medianStepMs).toFixed(2)} (target <= 0.5)`);
  return rows;
}
