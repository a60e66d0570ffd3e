import { expect } from 'chai';
import { spawnSync } from 'child_process';
import * as path from 'path';
import { AutoModel, manualSeed, Model, Tensor } from '../lib';
import { expectClose, rejects, tempDir, throws } from './helpers';
import { TINY_IDS, TINY_LLAMA } from './models-helpers';

describe('19 trainStep options: gradient norm, skipping non-finite updates, dropout overrides', () => {
  const config = {
    model_type: 'gpt2', architectures: ['GPT2LMHeadModel'], vocab_size: 32, n_positions: 16, n_embd: 16, n_layer: 1, n_head: 2,
    resid_pdrop: 0, embd_pdrop: 0, attn_pdrop: 0,
  };
  const batch = { inputIds: [[1, 2, 3, 4, 5, 6]], labels: [[1, 2, 3, 4, 5, 6]] };
  const snapshot = (m: Model) => new Map(m.parameters().map((p) => [p.name, Array.from(m.getParameter(p.name).data() as Float32Array)]));

  async function fresh(): Promise<Model> {
    manualSeed(4);
    const m = await AutoModel.fromConfig(config);
    m.configureOptimizer({ type: 'adamw', lr: 0.01 });
    return m;
  }

  it('returns the gradient norm with and without clipping', async () => {
    const m = await fresh();
    const free = await m.trainStep(batch);
    expect(free.gradNorm).to.be.greaterThan(0);
    expect(free.skipped).to.equal(false);
    const clipped = await m.trainStep(batch, { maxGradNorm: 1e-3 });
    expect(clipped.gradNorm).to.be.greaterThan(1e-3); // the norm before clipping
  });

  it('skipNonFinite: a NaN loss makes no update; without it the weights become NaN', async () => {
    const poison = (m: Model) => {
      const name = 'transformer.wpe.weight';
      const w = m.getParameter(name).data() as Float32Array;
      const bad = Float32Array.from(w);
      bad[0] = Number.NaN;
      m.setParameter(name, Tensor.from(bad, { shape: m.getParameter(name).shape }).handle);
    };
    const m = await fresh();
    await m.trainStep(batch);
    poison(m);
    const before = snapshot(m);
    const r = await m.trainStep(batch, { skipNonFinite: true });
    expect(Number.isNaN(r.loss)).to.equal(true);
    expect(r.skipped).to.equal(true);
    const after = snapshot(m);
    for (const [name, values] of before) if (name !== 'transformer.wpe.weight') expect(after.get(name), name).to.deep.equal(values);

    const n = await fresh();
    poison(n);
    const r2 = await n.trainStep(batch);
    expect(r2.skipped).to.equal(false);
    expect((n.getParameter('transformer.h.0.attn.c_attn.weight').data() as Float32Array).some(Number.isNaN)).to.equal(true);
  });

  it('setDropout overrides config.json for training; bad values are typed errors', async () => {
    const m = await fresh();
    m.configureOptimizer({ type: 'sgd', lr: 0 });
    const a = (await m.trainStep(batch)).loss;
    expect((await m.trainStep(batch)).loss).to.equal(a); // no dropout in the config
    m.setDropout({ hidden: 0.5, attention: 0.5 });
    const b = (await m.trainStep(batch)).loss;
    const c = (await m.trainStep(batch)).loss;
    expect(b).to.not.equal(c);
    m.setDropout({ hidden: 0, attention: 0 });
    expect((await m.trainStep(batch)).loss).to.equal(a);
    expect(throws(() => m.setDropout({ hidden: 1 })).code).to.equal('ERR_ARGUMENT');
    expect(throws(() => m.setDropout({ nope: 0.1 } as never)).message).to.include("unknown key 'nope'");
  });
});

describe('19 gradient checkpointing', () => {
  const configs = {
    gpt2: { model_type: 'gpt2', architectures: ['GPT2LMHeadModel'], vocab_size: 40, n_positions: 16, n_embd: 16, n_layer: 2, n_head: 2,
      resid_pdrop: 0.2, embd_pdrop: 0.1, attn_pdrop: 0.3 },
    bert: { model_type: 'bert', architectures: ['BertForMaskedLM'], vocab_size: 40, hidden_size: 16, num_hidden_layers: 2, num_attention_heads: 2,
      intermediate_size: 32, max_position_embeddings: 32, hidden_dropout_prob: 0.2, attention_probs_dropout_prob: 0.3 },
    distilbert: { model_type: 'distilbert', architectures: ['DistilBertModel'], vocab_size: 40, dim: 16, n_layers: 2, n_heads: 2, hidden_dim: 32,
      max_position_embeddings: 32, dropout: 0.2, attention_dropout: 0.3 },
    llama: { model_type: 'llama', architectures: ['LlamaForCausalLM'], vocab_size: 40, hidden_size: 16, intermediate_size: 32,
      num_hidden_layers: 2, num_attention_heads: 2, num_key_value_heads: 1, max_position_embeddings: 32, attention_dropout: 0.3 },
  };
  const batch = { inputIds: [[1, 5, 9, 13, 17, 21], [2, 6, 10, 14, 18, 22]], labels: [[1, 5, 9, 13, 17, 21], [2, 6, 10, 14, 18, 22]] };

  for (const [name, config] of Object.entries(configs)) {
    it(`${name}: the same updates with and without checkpointing (dropout masks repeat in the recomputation)`, async () => {
      const run = async (checkpointing: boolean) => {
        manualSeed(9);
        const encoder = name === 'bert' || name === 'distilbert';
        const m = await AutoModel.fromConfig(config, encoder ? { task: 'token-classification', numLabels: 3 } : {});
        m.setGradientCheckpointing(checkpointing);
        m.configureOptimizer({ type: 'adamw', lr: 0.01 });
        const losses: number[] = [];
        const labels = encoder ? batch.labels.map((r) => r.map((v) => v % 3)) : batch.labels;
        for (let i = 0; i < 3; i++) losses.push((await m.trainStep({ inputIds: batch.inputIds, labels })).loss);
        return { losses, params: new Map(m.parameters().map((p) => [p.name, Array.from(m.getParameter(p.name).data() as Float32Array)])) };
      };
      const plain = await run(false);
      const ckpt = await run(true);
      // Step 1 repeats the same forward; steps 2-3 run on weights updated from recomputed activations (another path,
      // the weights agree to 1e-6 below): float32 losses within rtol 1e-5.
      expect(ckpt.losses[0]).to.equal(plain.losses[0]);
      expectClose(ckpt.losses, plain.losses, { rtol: 1e-5 }, 'losses with checkpointing');
      let worst = 0;
      for (const [n, v] of plain.params) {
        const w = ckpt.params.get(n)!;
        for (let i = 0; i < v.length; i++) worst = Math.max(worst, Math.abs(v[i]! - w[i]!));
      }
      expect(worst).to.be.lessThan(1e-6);
    });
  }
});

describe('19 mixed precision (bf16 autocast, float32 master weights)', () => {
  const config = TINY_LLAMA;
  const ids = TINY_IDS;

  it("precision 'bf16' computes in bfloat16 (loss close to, not equal to fp32's), keeps float32 weights, and learns", async () => {
    const run = async (precision: 'fp32' | 'bf16') => {
      manualSeed(21);
      const m = await AutoModel.fromConfig(config);
      m.configureOptimizer({ type: 'adamw', lr: 0.01 });
      const losses: number[] = [];
      for (let i = 0; i < 8; i++) losses.push((await m.trainStep({ inputIds: ids, labels: ids }, { precision })).loss);
      return { losses, m };
    };
    const fp32 = await run('fp32');
    const bf16 = await run('bf16');
    expect(bf16.losses[0]).to.not.equal(fp32.losses[0]); // the forward really ran in bfloat16
    expect(Math.abs(bf16.losses[0]! - fp32.losses[0]!) / fp32.losses[0]!).to.be.lessThan(0.02);
    expect(bf16.losses[7]!).to.be.lessThan(bf16.losses[0]! * 0.9);
    for (const p of bf16.m.parameters()) expect(p.dtype, p.name).to.equal('float32');
    // Autocast does not leak out of the step: a plain forward afterwards equals an fp32 model's on the same weights.
    const after = await bf16.m.forward({ inputIds: ids });
    const dir = tempDir('nodetune-bf16-');
    await bf16.m.savePretrained(dir);
    const reloaded = await AutoModel.fromPretrained(dir, { quiet: true });
    expect(Array.from(after.logits)).to.deep.equal(Array.from((await reloaded.forward({ inputIds: ids })).logits));
  });

  it('prints nothing on stderr: mixed-precision steps (full and LoRA) under any LibTorch (2.4+ warns at every call of its old autocast API)', () => {
    // In a child process, whose stderr (LibTorch's warnings are written there by the C++ side) is read whole.
    const script = `
      const { AutoModel } = require(${JSON.stringify(path.join(__dirname, '..', 'lib'))});
      (async () => {
        const config = ${JSON.stringify({ ...config, tie_word_embeddings: true })};
        for (const dtype of ['float32', 'bfloat16']) {
          const m = await AutoModel.fromConfig(config, { seed: 3, dtype });
          if (dtype === 'bfloat16') m.addLora({ r: 4, alpha: 8, targetModules: 'all-linear', seed: 1 });
          m.configureOptimizer({ type: 'adamw', lr: 0.01 });
          for (let i = 0; i < 2; i++) await m.trainStep({ inputIds: ${JSON.stringify(ids)}, labels: ${JSON.stringify(ids)} }, { precision: 'bf16' });
        }
        process.stdout.write('done');
      })().catch((e) => { console.error(e); process.exitCode = 1; });`;
    const out = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8' });
    expect(out.status, out.stderr).to.equal(0);
    expect(out.stdout).to.equal('done');
    expect(out.stderr).to.equal('');
  });

  it("'fp16' needs CUDA: on the CPU it is an ERR_DEVICE error; unknown precisions are ERR_ARGUMENT", async () => {
    manualSeed(1);
    const m = await AutoModel.fromConfig(config);
    m.configureOptimizer({ type: 'adamw', lr: 0.01 });
    const { cudaAvailable } = (await import('../lib')).runtimeInfo();
    if (!cudaAvailable) {
      const e = await rejects(m.trainStep({ inputIds: ids, labels: ids }, { precision: 'fp16' }));
      expect(e.code).to.equal('ERR_DEVICE');
      expect(e.message).to.include('float16 autocast needs a CUDA device');
    }
    expect(throws(() => m.trainStep({ inputIds: ids, labels: ids }, { precision: 'fp8' as never })).code).to.equal('ERR_ARGUMENT');
  });
});

describe('19 dynamic loss scaling (the float16 recipe; its logic checked in float32 on any device)', () => {
  const config = {
    model_type: 'gpt2', architectures: ['GPT2LMHeadModel'], vocab_size: 32, n_positions: 16, n_embd: 16, n_layer: 1, n_head: 2,
    resid_pdrop: 0, embd_pdrop: 0, attn_pdrop: 0,
  };
  const batch = { inputIds: [[1, 2, 3, 4, 5, 6]], labels: [[1, 2, 3, 4, 5, 6]] };
  const fresh = async () => {
    manualSeed(4);
    const m = await AutoModel.fromConfig(config);
    m.configureOptimizer({ type: 'adamw', lr: 0.01 });
    return m;
  };
  const weights = (m: Model) => m.parameters().map((p) => Array.from(m.getParameter(p.name).data() as Float32Array));

  it('scaling by a power of two and unscaling leaves the updates unchanged; the scale grows after growthInterval good steps', async () => {
    const plain = await fresh();
    const scaled = await fresh();
    scaled.setLossScalerState({ scale: 1024, growthInterval: 2 });
    for (let i = 0; i < 3; i++) {
      const a = await plain.trainStep(batch, { maxGradNorm: 1 });
      const b = await scaled.trainStep(batch, { maxGradNorm: 1, lossScaling: true });
      // the reported loss is unscaled (power-of-two scaling is exact in float arithmetic, but the scaled backward is
      // another path: within float32 rounding)
      expectClose(b.loss, a.loss, { rtol: 1e-6 }, `step ${i + 1} loss with loss scaling`);
    }
    const [wa, wb] = [weights(plain), weights(scaled)];
    let worst = 0;
    wa.forEach((v, i) => v.forEach((x, j) => (worst = Math.max(worst, Math.abs(x - wb[i]![j]!)))));
    expect(worst).to.be.lessThan(1e-6);
    expect(scaled.lossScalerState()).to.deep.equal({ scale: 2048, goodSteps: 1, growthInterval: 2 });
  });

  it('non-finite gradients: the step is skipped and the scale halved', async () => {
    const m = await fresh();
    m.setLossScalerState({ scale: 4096 });
    const name = 'transformer.wpe.weight';
    const clean = m.getParameter(name);
    const bad = Float32Array.from(clean.data() as Float32Array);
    bad[0] = Number.POSITIVE_INFINITY;
    m.setParameter(name, Tensor.from(bad, { shape: clean.shape }).handle);
    const before = weights(m);
    const r = await m.trainStep(batch, { lossScaling: true });
    expect(r.skipped).to.equal(true);
    expect(weights(m)).to.deep.equal(before);
    expect(m.lossScalerState().scale).to.equal(2048);
    expect(throws(() => m.setLossScalerState({ scale: -1 })).code).to.equal('ERR_ARGUMENT');
  });
});
