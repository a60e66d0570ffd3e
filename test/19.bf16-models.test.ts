import { expect } from 'chai';
import * as fs from 'fs';
import * as path from 'path';
import { AutoModel } from '../lib/models';
import { native } from '../lib/native';
import { trainStepThreads } from '../lib/runtime';
import { readSafetensorsHeader } from '../lib/models/safetensors';
import { OMP_SPIN_ROUNDS, ompSpinSetByNodetune, setOmpWaitPolicy, stepTorchThreads } from '../lib/threads';
import { spawnSync } from 'child_process';
import { expectClose, repoRoot, tempDir } from './helpers';
import { TINY_IDS, TINY_LLAMA } from './models-helpers';

// bfloat16 models (issue 15): built without the slow per-element draws, frozen weights kept in bfloat16 while the
// trainable adapter weights are float32, and the thread rule for steps whose products are bfloat16.
describe('19 bfloat16 models: fromConfig, float32 adapters over a bfloat16 base, threads', () => {
  const small = TINY_LLAMA;
  const ids = TINY_IDS;

  it('fromConfig in bfloat16 gives the float32 model of the same seed, rounded (tensors above one 16 MB draw included)', async () => {
    // vocab 4099 x 1024: 4,197,376 values, one chunk of 4,194,304 and a remainder of 3,072.
    const config = { ...small, vocab_size: 4099, hidden_size: 1024, intermediate_size: 64, num_attention_heads: 4, num_key_value_heads: 4, num_hidden_layers: 1 };
    const f32 = await AutoModel.fromConfig(config, { seed: 5 });
    const b16 = await AutoModel.fromConfig(config, { seed: 5, dtype: 'bfloat16' });
    const names = f32.parameters().map((p) => p.name);
    expect(names).to.include('model.embed_tokens.weight');
    for (const name of names) {
      const expected = (await (await f32.getParameter(name).to(null, 'bfloat16')).to(null, 'float32')).data();
      const actual = (await b16.getParameter(name).to(null, 'float32')).data();
      expect(b16.getParameter(name).dtype, name).to.equal('bfloat16');
      expect(Buffer.from(actual.buffer, actual.byteOffset, actual.byteLength).equals(Buffer.from(expected.buffer, expected.byteOffset, expected.byteLength)), name).to.equal(true);
    }
  });

  it('LoRA over a bfloat16 base: float32 adapter weights, the base frozen in bfloat16, learns in fp32 and bf16 steps, saved as F32', async () => {
    for (const precision of ['fp32', 'bf16'] as const) {
      const m = await AutoModel.fromConfig(small, { seed: 3, dtype: 'bfloat16' });
      m.addLora({ r: 4, alpha: 8, targetModules: 'all-linear', seed: 1 });
      const params = m.parameters();
      const a = m.getParameter('model.layers.0.self_attn.q_proj.lora_A.weight', 'default');
      expect(a.dtype).to.equal('float32');
      for (const p of params) expect(p.dtype, p.name).to.equal('bfloat16');
      expect(params.filter((p) => p.trainable).map((p) => p.name)).to.deep.equal(['lm_head.weight']); // the task head trains fully
      m.configureOptimizer({ type: 'adamw', lr: 0.02 });
      const before = Array.from((await m.getParameter('model.layers.0.mlp.down_proj.weight').to(null, 'float32')).data() as Float32Array);
      const losses: number[] = [];
      for (let i = 0; i < 6; i++) losses.push((await m.trainStep({ inputIds: ids, labels: ids }, { precision })).loss);
      expect(losses.every(Number.isFinite), precision).to.equal(true);
      expect(losses[5]!, precision).to.be.lessThan(losses[0]!);
      const after = Array.from((await m.getParameter('model.layers.0.mlp.down_proj.weight').to(null, 'float32')).data() as Float32Array);
      expect(after, 'the base stays frozen').to.deep.equal(before);
      const out = await m.forward({ inputIds: ids });
      expect(Array.from(out.logits).every(Number.isFinite)).to.equal(true);
      const dir = tempDir('nodetune-bf16-lora-');
      await m.saveAdapter(dir);
      const header = readSafetensorsHeader(path.join(dir, 'adapter_model.safetensors')).tensors;
      expect(new Set(header.filter((t) => t.name.includes('lora_')).map((t) => t.dtype))).to.deep.equal(new Set(['F32']));
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a bottleneck adapter over a bfloat16 base runs forward and trains', async () => {
    const m = await AutoModel.fromConfig(small, { seed: 3, dtype: 'bfloat16' });
    m.addAdapter({ kind: 'bottleneck', reduction: 4, seed: 1 });
    m.configureOptimizer({ type: 'adamw', lr: 0.02 });
    const first = (await m.trainStep({ inputIds: ids, labels: ids })).loss;
    let last = first;
    for (let i = 0; i < 5; i++) last = (await m.trainStep({ inputIds: ids, labels: ids })).loss;
    expect(last).to.be.lessThan(first);
  });

  it('a bfloat16 model\'s causal-LM loss with gradients (the fused head in bfloat16) equals the loss from its logits; gradients near the float32 twin\'s', async () => {
    const config = { ...small, tie_word_embeddings: true, vocab_size: 300 };  // tied: the head's gradient comes from the fused loss
    const rows = [[1, 5, 9, 13, 17, 21, 25, 29, 33, 37, 41, 45, 49, 53, 57, 61, 65, 69, 73, 77]];
    const labels = [rows[0]!.map((x, i) => (i === 3 ? -100 : x))];
    const names = ['model.embed_tokens.weight', 'model.layers.0.mlp.up_proj.weight', 'model.norm.weight'];
    const b16 = await AutoModel.fromConfig(config, { seed: 4, dtype: 'bfloat16' });
    const f32 = await AutoModel.fromConfig(config, { seed: 4 });
    const fused = await b16.lossAndGradients({ inputIds: rows, labels }, names);
    // The loss from the logits forward() returns (bfloat16 products as in the fused head, log-softmax here in float64).
    const logits = (await b16.forward({ inputIds: rows })).logits as Float32Array;
    const v = config.vocab_size;
    let sum = 0, count = 0;
    for (let t = 0; t + 1 < rows[0]!.length; t++) {
      const y = labels[0]![t + 1]!;
      if (y === -100) continue;
      const row = logits.subarray(t * v, (t + 1) * v);
      const max = Math.max(...row);
      let z = 0;
      for (const x of row) z += Math.exp(x - max);
      sum += max + Math.log(z) - row[y]!;
      count++;
    }
    expect(Math.abs(fused.loss - sum / count) / (sum / count)).to.be.below(1e-4);
    const reference = await f32.lossAndGradients({ inputIds: rows, labels }, names);
    for (const [k, name] of names.entries()) {
      const g = (await fused.grads[k]!.to(null, 'float32')).data() as Float32Array;
      const r = reference.grads[k]!.data() as Float32Array;
      let diff = 0, norm = 0;
      for (let i = 0; i < r.length; i++) diff += (g[i]! - r[i]!) ** 2, norm += r[i]! ** 2;
      expect(norm, name).to.be.greaterThan(0);
      expect(Math.sqrt(diff / norm), name).to.be.below(0.05);
    }
  });

  it('a frozen base multiplies q/k/v and gate/up from their shared block (64+ rows) as the separate products do', async () => {
    const m = await AutoModel.fromConfig({ ...small, attention_bias: true }, { seed: 6 });
    m.addLora({ r: 4, alpha: 8, targetModules: ['q_proj', 'up_proj'], seed: 1 });
    expect(m.parameters().find((p) => p.name === 'model.layers.0.self_attn.k_proj.weight')!.trainable).to.equal(false);
    const rows = Array.from({ length: 5 }, (_, b) => Array.from({ length: 16 }, (_, t) => (b * 7 + t * 3) % 64));
    const together = (await m.forward({ inputIds: rows })).logits as Float32Array;  // 80 rows: one product over the block
    const v = small.vocab_size;
    for (const [b, row] of rows.entries()) {
      const alone = (await m.forward({ inputIds: [row] })).logits as Float32Array;  // 16 rows: separate products
      expectClose(alone, together.subarray(b * 16 * v, (b + 1) * 16 * v), { atol: 1e-5, rtol: 1e-4 }, `row ${b}`);
    }
  });

  it('gradient checkpointing with LoRA over a frozen, tied base (nothing before the blocks needs a gradient): the same updates', async () => {
    const config = { ...small, tie_word_embeddings: true };
    const run = async (checkpointing: boolean) => {
      const m = await AutoModel.fromConfig(config, { seed: 9 });
      m.addLora({ r: 4, alpha: 8, targetModules: 'all-linear', seed: 1 });
      m.setGradientCheckpointing(checkpointing);
      m.configureOptimizer({ type: 'adamw', lr: 0.01 });
      const losses: number[] = [];
      for (let i = 0; i < 3; i++) losses.push((await m.trainStep({ inputIds: ids, labels: ids })).loss);
      return { losses, b: m.getParameter('model.layers.1.mlp.down_proj.lora_B.weight', 'default').data() as Float32Array };
    };
    const plain = await run(false), recomputed = await run(true);
    expectClose(recomputed.losses, plain.losses, { atol: 1e-6 }, 'losses');
    expect(plain.losses[2]!).to.be.lessThan(plain.losses[0]!);
    expectClose(recomputed.b, plain.b, { atol: 1e-6 }, 'lora_B');
  });

  it('a bfloat16 model\'s calls (forward, generate, sessions) take every core by the same rule, with the same results as on one', async () => {
    const binding = native();
    // Every core unless the threads were chosen (NODETUNE_NUM_THREADS, or setNumThreads({ torch }) by an earlier test).
    expect(binding.bf16ModelThreads()).to.equal(trainStepThreads('cpu', 'bf16', 'bfloat16') ?? 0);
    const m = await AutoModel.fromConfig(small, { seed: 3, dtype: 'bfloat16' });
    const rows = Array.from({ length: 4 }, (_, b) => Array.from({ length: 24 }, (_, t) => (b * 5 + t * 3) % 64));
    const all = (await m.forward({ inputIds: rows })).logits as Float32Array;
    const before = binding.bf16ModelThreads();
    binding.setBf16ModelThreads(1);
    try {
      expect(binding.bf16ModelThreads()).to.equal(1);
      const one = (await m.forward({ inputIds: rows })).logits as Float32Array;
      const largest = one.reduce((x, v) => Math.max(x, Math.abs(v)), 0);
      // The products' blocking may change with the thread count: within a bfloat16 step of the largest logit.
      expectClose(all, one, { atol: largest / 64 }, 'logits on every core against one');
    } finally {
      binding.setBf16ModelThreads(before);
    }
  });

  it('the thread rule for a step: every core when its products are bfloat16, unless the user chose the threads', () => {
    const facts = { blas: { name: 'openblas' }, hardwareThreads: 4 };
    expect(stepTorchThreads(facts, true, false, {})).to.equal(4);
    expect(stepTorchThreads(facts, false, false, {})).to.equal(undefined);
    expect(stepTorchThreads(facts, true, true, {})).to.equal(undefined);
    expect(stepTorchThreads(facts, true, false, { NODETUNE_NUM_THREADS: '1' })).to.equal(undefined);
  });

  it('OpenMP\'s idle threads spin a bounded while unless the user chose a policy; LibTorch\'s OpenMP runtime takes it at load', () => {
    const env: NodeJS.ProcessEnv = {};
    expect(setOmpWaitPolicy(env)).to.equal(true);
    expect(env.GOMP_SPINCOUNT).to.equal(String(OMP_SPIN_ROUNDS));
    expect(env.OMP_WAIT_POLICY).to.equal(undefined);
    expect(setOmpWaitPolicy({ OMP_WAIT_POLICY: 'ACTIVE' })).to.equal(false);
    // This process's own setting is recorded (the bench runs PyTorch without it); other environments do not change it.
    const here = ompSpinSetByNodetune();
    if (here) expect(process.env.GOMP_SPINCOUNT).to.equal(String(OMP_SPIN_ROUNDS));
    setOmpWaitPolicy({});
    expect(ompSpinSetByNodetune()).to.equal(here);
    expect(setOmpWaitPolicy({ GOMP_SPINCOUNT: '10000' })).to.equal(false);
    // OMP_DISPLAY_ENV=VERBOSE makes GNU OpenMP print the settings it read when it loaded (other OpenMP runtimes print
    // nothing, and then there is nothing to check).
    const script = `require(${JSON.stringify(path.join(repoRoot, 'dist', 'lib'))}).runtimeInfo()`;
    for (const [user, expected, spin] of [[undefined, 'PASSIVE', String(OMP_SPIN_ROUNDS)], ['ACTIVE', 'ACTIVE', undefined]] as const) {
      const env2: NodeJS.ProcessEnv = { ...process.env, OMP_DISPLAY_ENV: 'VERBOSE' };
      delete env2.OMP_WAIT_POLICY;
      delete env2.GOMP_SPINCOUNT;
      if (user) env2.OMP_WAIT_POLICY = user;
      const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', env: env2 });
      expect(r.status, r.stderr).to.equal(0);
      const m = /OMP_WAIT_POLICY = '(\w+)'/.exec(r.stderr);
      if (m) expect(m[1], `user value ${String(user)}`).to.equal(expected);
      const rounds = /GOMP_SPINCOUNT = '(\d+)'/.exec(r.stderr);
      if (m && spin) expect(rounds?.[1], 'GOMP_SPINCOUNT as OpenMP read it').to.equal(spin);
    }
  });
});
