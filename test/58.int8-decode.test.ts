import { expect } from 'chai';
import { spawnSync } from 'child_process';
import * as path from 'path';
import { AutoModel, Model } from '../lib/models';
import { native } from '../lib/native';
import { repoRoot, throws } from './helpers';
import { TINY_LLAMA, stories260K } from './models-helpers';
import { exactInt8Kernels, withInt8Kernel } from './quant-helpers';

/** A small deterministic generator (the same numbers on every machine). */
function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
}

/**
 * A weight [n, k] whose int8 quantization is exact (row o: integers in [-127, 127], one of them +-127, times 2^-e),
 * an input [m, k], and in float64: the product, sum |x w| (the float32 rounding's scale) and the bound of the q8
 * input rounding, sum over blocks of 32 of (absmax / 127 / 2) * sum |w| (nn/int8_decode.h).
 */
function problem(n: number, k: number, m: number, seed: number) {
  const rnd = lcg(seed);
  const w = new Float32Array(n * k), x = new Float32Array(m * k);
  const q = new Int8Array(n * k), scale = new Float64Array(n);
  for (let o = 0; o < n; o++) {
    scale[o] = 2 ** -(4 + (o % 5));
    for (let i = 0; i < k; i++) q[o * k + i] = Math.round(rnd() * 254) - 127;
    q[o * k + (o % k)] = o % 2 ? 127 : -127;
    for (let i = 0; i < k; i++) w[o * k + i] = q[o * k + i]! * scale[o]!;
  }
  // Inputs spread over a few orders of magnitude, so the blocks' scales differ.
  for (let i = 0; i < m * k; i++) x[i] = (rnd() - 0.5) * 2 ** (Math.floor(i / 32) % 4 - 1);
  const exact = new Float64Array(m * n), mag = new Float64Array(m * n), bound = new Float64Array(m * n);
  for (let r = 0; r < m; r++)
    for (let o = 0; o < n; o++) {
      let s = 0, a = 0, b = 0;
      for (let b0 = 0; b0 < k; b0 += 32) {
        let amax = 0, sw = 0;
        for (let i = b0; i < Math.min(k, b0 + 32); i++) {
          amax = Math.max(amax, Math.abs(x[r * k + i]!));
          sw += Math.abs(q[o * k + i]!);
        }
        b += (amax / 127 / 2) * sw;
      }
      for (let i = 0; i < k; i++) {
        s += x[r * k + i]! * q[o * k + i]!;
        a += Math.abs(x[r * k + i]! * q[o * k + i]!);
      }
      exact[r * n + o] = s * scale[o]!, mag[r * n + o] = a * scale[o]!, bound[r * n + o] = b * scale[o]!;
    }
  return { w, x, exact, mag, bound };
}

async function lastLogits(model: Model, ids: number[]): Promise<Float32Array> {
  return (await model.forward({ inputIds: [ids] })).logits;
}

function relativeError(a: Float32Array, b: Float32Array): number {
  let worst = 0, scale = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!)), scale = Math.max(scale, Math.abs(b[i]!));
  return worst / scale;
}

describe('58 int8 decoding kernels: q8 (input rounded to int8 in blocks of 32) and exact', () => {
  const kernels = native().int8DecodeKernels();
  // Widths around the kernels' steps (blocks of 32, two blocks an iteration) and their tails; 520 output rows: split
  // over LibTorch's threads where there are two (test:numerics' second pass).
  const widths = [1, 5, 31, 32, 33, 63, 64, 65, 96, 127, 128, 129, 200];

  it('lists the kernels this CPU runs (the portable two always), sets and restores one, refuses unknown names', () => {
    expect(kernels).to.include.members(['q8', 'exact']);
    const before = native().setInt8DecodeKernel('auto');
    expect(native().int8DecodeKernel()).to.equal(kernels[0]);  // 'auto': the first listed
    // Without NODETUNE_INT8_DECODE (test:numerics sets it), the process started on 'auto' too.
    if (!process.env.NODETUNE_INT8_DECODE) expect(before).to.equal(kernels[0]);
    native().setInt8DecodeKernel('exact');
    expect(native().int8DecodeKernel()).to.equal('exact');
    native().setInt8DecodeKernel(before);
    const e = throws(() => native().setInt8DecodeKernel('q4'));
    expect(e.code).to.equal('ERR_ARGUMENT');
    expect(e.message).to.match(/unknown int8 decoding kernel 'q4'/);
    for (const k of ['q8-vnni', 'q8-avx2', 'exact-avx2'].filter((k) => !kernels.includes(k)))
      expect(throws(() => native().setInt8DecodeKernel(k)).message).to.match(/this CPU cannot run/);
    expect(throws(() => native().int8DecodeProduct(new Float32Array(6), 2, 3, new Float32Array(15), 5, '')).code).to.equal('ERR_SHAPE');
  });

  it('NODETUNE_INT8_DECODE chooses the kernel at start; an unknown value is an error naming it', () => {
    const script = `const { native } = require(${JSON.stringify(path.join(repoRoot, 'dist', 'lib', 'native.js'))});
      try { console.log(native().int8DecodeKernel()); } catch (e) { console.log(e.code + ': ' + e.message); }`;
    const run = (value: string) => spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', env: { ...process.env, NODETUNE_INT8_DECODE: value } }).stdout.trim();
    expect(run('exact')).to.equal('exact');
    expect(run('q8')).to.equal('q8');
    expect(run('fast')).to.match(/^ERR_ARGUMENT: NODETUNE_INT8_DECODE: unknown int8 decoding kernel 'fast'/);
  });

  for (const kernel of kernels)
    it(`${kernel}: 1-4 rows, widths off every step, against the float64 product ${kernel.startsWith('q8') ? "within the input rounding's bound" : 'to float32 rounding'}`, () => {
      let worstShare = 0;
      for (const k of widths)
        for (let m = 1; m <= 4; m++) {
          const { w, x, exact, mag, bound } = problem(520, k, m, 1000 * k + m);
          const y = native().int8DecodeProduct(w, 520, k, x, m, kernel);
          const portable = kernel.startsWith('q8') ? native().int8DecodeProduct(w, 520, k, x, m, 'q8') : undefined;
          for (let i = 0; i < y.length; i++) {
            const err = Math.abs(y[i]! - exact[i]!), where = `k ${k}, ${m} rows, output ${i}`;
            if (!portable) {
              expect(err, where).to.be.at.most(2e-5 * mag[i]! + 1e-30);
              continue;
            }
            expect(err, where).to.be.at.most(bound[i]! + 2e-5 * mag[i]!);
            // The same integer sums as the portable loop: only the float32 order of the block sums differs.
            expect(Math.abs(y[i]! - portable[i]!), `${where} against the portable q8`).to.be.at.most(2e-6 * mag[i]!);
            worstShare = Math.max(worstShare, err / bound[i]!);
          }
        }
      // q8 does round the input (the error is a visible share of its bound); the exact kernels do not.
      if (kernel.startsWith('q8')) expect(worstShare).to.be.within(0.01, 1);
    });

  it('q8 against exact through a model: decoding logits of a tiny random Llama (and stories260K) within 4% of the largest logit', async function () {
    this.timeout(60000);
    const config = { ...TINY_LLAMA, hidden_size: 96, num_attention_heads: 4, num_key_value_heads: 2, intermediate_size: 200, vocab_size: 67 };
    const models: [string, Model, number[]][] = [['tiny', await AutoModel.fromConfig(config, { quantize: 'int8', computeDtype: 'float32', seed: 7 }), [3, 14, 15, 9]]];
    const story = stories260K();
    if (story) models.push(['stories260K', await AutoModel.fromPretrained(story, { quantize: 'int8', computeDtype: 'float32', quantizeLmHead: true }), [1, 403, 261, 29]]);
    const exact = exactInt8Kernels()[0]!;
    for (const [name, model, ids] of models)
      for (const q8 of kernels.filter((k) => k.startsWith('q8')))
        for (let t = 1; t <= 4; t++) {
          const a = await withInt8Kernel(q8, () => lastLogits(model, ids.slice(0, t)));
          const b = await withInt8Kernel(exact, () => lastLogits(model, ids.slice(0, t)));
          const rel = relativeError(a, b);
          expect(rel, `${name}, ${q8}, ${t} rows`).to.be.below(0.04);  // measured: tiny 0.6-0.7%, stories260K 1.0-1.6%
          expect(rel, `${name}, ${q8}, ${t} rows: q8 rounds the input`).to.be.above(0);
        }
  });
});
