import * as fs from 'fs';
import { expect } from 'chai';
import { AutoModel, Model } from '../lib/models';
import { expectClose, withEnv } from './helpers';
import { TINY_LLAMA, fixture } from './models-helpers';

/**
 * The fused CPU training ops (native/nn/swiglu.h: silu(gate) * up; native/nn/rms_norm.h: RMSNorm, forward and
 * backward; native/nn/lse_attention.h: attention that recomputes its probabilities in backward) against the LibTorch ops they replace, which NODETUNE_TRAIN_FUSED=off selects (read by the native code
 * at every call). The fusions apply on x86 CPUs with AVX2 + FMA; elsewhere both runs take the LibTorch path.
 */
function unfused<T>(fn: () => Promise<T>): Promise<T> {
  return withEnv('NODETUNE_TRAIN_FUSED', 'off', fn);
}

function cpuHasAvx2Fma(): boolean {
  if (process.arch !== 'x64') return false;
  try {
    const flags = fs.readFileSync('/proc/cpuinfo', 'utf8');
    return /\bavx2\b/.test(flags) && /\bfma\b/.test(flags);
  } catch {
    return false;
  }
}

function largest(xs: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < xs.length; i++) m = Math.max(m, Math.abs(xs[i]!));
  return m;
}

type Dtype = 'float32' | 'bfloat16';
// 4 x 16 = 64 token rows: from 64 rows the gate and up products are one (nn/layers.cc fused_linear), below two.
const IDS = Array.from({ length: 4 }, (_, b) => Array.from({ length: 16 }, (_, t) => (b * 7 + t * 3 + 1) % 32));
const LOADERS: [string, (dtype: Dtype) => Promise<Model>][] = [
  // hidden 24 / intermediate 40 and 16 / 24: full eight-lane rows; qwen2 ties the head to the embeddings.
  ['llama fixture', (dtype) => AutoModel.fromPretrained(fixture('llama'), { dtype, quiet: true })],
  ['qwen2 fixture', (dtype) => AutoModel.fromPretrained(fixture('qwen2'), { dtype, quiet: true })],
  ['random llama (fromConfig)', (dtype) => AutoModel.fromConfig(TINY_LLAMA, { seed: 7, dtype })],
  // Rows that are not a multiple of eight (RMSNorm over 36, SwiGLU over 67): the kernels' scalar tails.
  ['random llama, odd widths', (dtype) => AutoModel.fromConfig(
    { ...TINY_LLAMA, hidden_size: 36, intermediate_size: 67, num_attention_heads: 2, num_key_value_heads: 1 }, { seed: 3, dtype })],
];

/** Full fine-tuning, or LoRA on these modules. */
type Lora = false | 'all-linear' | string[];

interface Run { losses: number[]; gradNorms: number[]; logits: Float32Array }

// Padded rows for the attention's mask: right padding (row 0), left padding (row 1: its first query positions see
// only masked keys, a row of equal logits), none (row 2). 19 positions: softmax rows end in scalar tails. 300: the
// fused attention splits the query positions into blocks by the keys they need (256 and 44 positions over 256 and
// 300 keys under the causal mask); row 1 is right-padded there too (a row whose keys are all masked spreads over
// every key, so it makes its block take all of them).
interface Padded { inputIds: number[][]; attentionMask: number[][] }
function padded(len: number): Padded {
  const valid = Math.round(len * 0.7), left = Math.round(len * 0.2), blocks = len > 256;
  return {
    inputIds: Array.from({ length: 3 }, (_, b) => Array.from({ length: len }, (_, t) => (b * 5 + t * 7 + 2) % 32)),
    attentionMask: [
      Array.from({ length: len }, (_, t) => (t < valid ? 1 : 0)),
      Array.from({ length: len }, (_, t) => (blocks ? t < len - left : t >= left) ? 1 : 0),
      Array.from({ length: len }, () => 1),
    ],
  };
}
const labelsOf = (p: Padded) => p.inputIds.map((row, b) => row.map((id, t) => (p.attentionMask[b]![t] ? id : -100)));

/** Three AdamW steps on the tiny batch (or `padded`), then a forward's logits. */
async function train(load: () => Promise<Model>, dtype: Dtype, lora: Lora, pad?: Padded): Promise<Run> {
  const model = await load();
  if (lora) model.addLora({ r: 4, alpha: 8, targetModules: lora, seed: 1 });
  model.configureOptimizer({ type: 'adamw', lr: 1e-3, weightDecay: 0.01 });
  const precision = dtype === 'bfloat16' ? 'bf16' : 'fp32';
  const losses: number[] = [], gradNorms: number[] = [];
  for (let i = 0; i < 3; i++) {
    const r = await model.trainStep(pad ? { ...pad, labels: labelsOf(pad) } : { inputIds: IDS, labels: IDS }, { precision });
    losses.push(r.loss);
    gradNorms.push(r.gradNorm);
  }
  const logits = (await model.forward(pad ?? { inputIds: IDS })).logits;
  return { losses, gradNorms, logits };
}

describe('68 fused training ops (SwiGLU, RMSNorm) against the LibTorch ops', () => {
  const fusedHere = cpuHasAvx2Fma();

  for (const [name, load] of LOADERS) {
    for (const dtype of ['float32', 'bfloat16'] as const) {
      // Full fine-tuning: SwiGLU takes the gate_up product's output whole (its two halves); LoRA on every linear
      // layer: gate and up as two tensors, and the down projection's A product fused with SwiGLU (nn/swiglu.h
      // swiglu_with_product); LoRA on up_proj only: gate a strided half, up a tensor of its own; on gate_proj and
      // down_proj: that fused node where up needs no gradient (the first layer's, whose input needs none).
      const loras: Lora[] = name === 'llama fixture' ? [false, 'all-linear', ['up_proj'], ['gate_proj', 'down_proj']] : [false, 'all-linear'];
      for (const lora of loras) {
        const method = lora === false ? 'full fine-tuning' : `LoRA r4 on ${Array.isArray(lora) ? lora.join(', ') : lora}`;
        const what = `${name} ${dtype}${dtype === 'bfloat16' ? ' (precision bf16)' : ''} ${method}`;
        it(`${what}: 3 AdamW steps give the same losses, gradient norms and logits`, async () => {
          const fused = await train(() => load(dtype), dtype, lora);
          const plain = await unfused(() => train(() => load(dtype), dtype, lora));
          // float32: the same formulas summed in another order (and exp8's 2 ulp): measured within 1.1e-6 of the
          // largest logit and 2.3e-7 relative on the losses and gradient norms, so 1e-5. bfloat16 (weights and
          // products): the fused ops round once where LibTorch rounds after each op (silu, then the product;
          // x * rstd, then the product by w), and three AdamW steps on bfloat16 weights carry that on; measured up to
          // 7.3e-4 relative on the losses, 3.9e-3 on the gradient norms (1.1e-2 on 16-row batches) and 2.7e-2 of the
          // largest logit (7 bfloat16 ulps of it), so 1e-2, 3e-2 and 8e-2.
          const tight = dtype === 'float32';
          expectClose(fused.losses, plain.losses, { rtol: tight ? 1e-5 : 1e-2 }, `${what} losses`);
          expectClose(fused.gradNorms, plain.gradNorms, { rtol: tight ? 1e-5 : 3e-2 }, `${what} gradient norms`);
          expectClose(fused.logits, plain.logits, { atol: (tight ? 1e-5 : 8e-2) * largest(plain.logits) }, `${what} logits`);
          if (fusedHere && tight) {
            // The fused path was taken: another summation order leaves some float32 logit not bit-identical.
            expect(Array.from(fused.logits).some((v, i) => v !== plain.logits[i]), `${what}: fused == unfused bit for bit`).to.equal(true);
          }
        });
      }
    }
  }
});

describe('68 fused attention (probabilities recomputed in backward) on padded batches', () => {
  // Grouped-query attention (4 query heads on 2 key/value heads) and plain multi-head (groups of one).
  const shapes: [string, Record<string, unknown>][] = [
    ['grouped-query', TINY_LLAMA],
    ['multi-head', { ...TINY_LLAMA, num_key_value_heads: 4 }],
  ];
  for (const [name, config] of shapes) {
    for (const dtype of ['float32', 'bfloat16'] as const) {
      for (const len of [19, 300]) {
        const what = `${name} ${dtype}, ${len} positions, right / left / no padding`;
        it(`${what}: 3 AdamW steps give the same losses, gradient norms and logits as LibTorch's attention`, async () => {
          const load = () => AutoModel.fromConfig({ ...config, max_position_embeddings: 512 }, { seed: 5, dtype });
          const batch = padded(len);
          const fused = await train(load, dtype, false, batch);
          const plain = await unfused(() => train(load, dtype, false, batch));
          // The tolerances of the test above: the same ops, the same measured differences.
          const tight = dtype === 'float32';
          expectClose(fused.losses, plain.losses, { rtol: tight ? 1e-5 : 1e-2 }, `${what} losses`);
          expectClose(fused.gradNorms, plain.gradNorms, { rtol: tight ? 1e-5 : 3e-2 }, `${what} gradient norms`);
          expectClose(fused.logits, plain.logits, { atol: (tight ? 1e-5 : 8e-2) * largest(plain.logits) }, `${what} logits`);
          expect(fused.losses.every(Number.isFinite), `${what}: finite losses`).to.equal(true);
        });
      }
    }
  }
});
