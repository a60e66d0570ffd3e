import { expect } from 'chai';
import * as fs from 'fs';
import * as path from 'path';
import { AutoModel } from '../lib/models';
import { readSafetensorsHeader } from '../lib/models/safetensors';
import { stepTorchThreads } from '../lib/threads';
import { tempDir } from './helpers';

// bfloat16 models (issue 15): built without the slow per-element draws, frozen weights kept in bfloat16 while the
// trainable adapter weights are float32, and the thread rule for steps whose products are bfloat16.
describe('19 bfloat16 models: fromConfig, float32 adapters over a bfloat16 base, threads', () => {
  const small = {
    model_type: 'llama', architectures: ['LlamaForCausalLM'], vocab_size: 64, hidden_size: 32, intermediate_size: 64,
    num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, max_position_embeddings: 32,
  };
  const ids = [[1, 5, 9, 13, 17, 21, 25, 29], [2, 6, 10, 14, 18, 22, 26, 30]];

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

  it('the thread rule for a step: every core when its products are bfloat16, unless the user chose the threads', () => {
    const facts = { blas: { name: 'openblas' }, hardwareThreads: 4 };
    expect(stepTorchThreads(facts, true, false, {})).to.equal(4);
    expect(stepTorchThreads(facts, false, false, {})).to.equal(undefined);
    expect(stepTorchThreads(facts, true, true, {})).to.equal(undefined);
    expect(stepTorchThreads(facts, true, false, { NODETUNE_NUM_THREADS: '1' })).to.equal(undefined);
  });
});
