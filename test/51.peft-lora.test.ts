import { expect } from 'chai';
import * as fs from 'fs';
import * as path from 'path';
import { AutoModel, Model } from '../lib/models';
import { expectClose, expectRelativeNorm } from './helpers';
import { expected, fixture, maxAbsDiff, stories260K } from './models-helpers';

function values(model: Model, name: string, adapter?: string): Float32Array {
  return Float32Array.from(model.getParameter(name, adapter).data() as Float32Array);
}

async function logits(model: Model, name: string, adapter?: string | null): Promise<Float32Array> {
  const e = expected(name);
  const inputs = { inputIds: e.inputIds, attentionMask: e.attentionMask, ...(e.tokenTypeIds ? { tokenTypeIds: e.tokenTypeIds } : {}) };
  return (await model.forward(inputs, adapter === undefined ? {} : { adapter })).logits;
}

async function train(model: Model, name: string, steps: number): Promise<void> {
  const e = expected(name);
  model.configureOptimizer({ type: 'adamw', lr: 5e-2 });
  const batch = { inputIds: e.inputIds, attentionMask: e.attentionMask, ...(e.tokenTypeIds ? { tokenTypeIds: e.tokenTypeIds } : {}), labels: e.labels };
  for (let i = 0; i < steps; i++) await model.trainStep(batch);
}

const TARGETS: [string, string[] | string][] = [
  ['gpt2', ['c_attn']],
  ['llama', ['q_proj', 'v_proj']],
  ['llama', ['o_proj', 'lm_head']],
  ['qwen2', 'all-linear'],
  ['bert-cls', ['query', 'value']],
  ['roberta-tok', ['query', 'value']],
  ['distilbert-qa', ['q_lin', 'v_lin']],
];

describe('51 peft: LoRA', () => {
  for (const [name, targetModules] of TARGETS) {
    it(`${name} ${JSON.stringify(targetModules)}: logits at step 0 equal the base model's; training moves only adapter (and head) weights; merged = unmerged`, async () => {
      const model = await AutoModel.fromPretrained(fixture(name), { quiet: true });
      const base = await logits(model, name);
      model.addLora({ r: 4, alpha: 8, targetModules, seed: 1 });
      expect(maxAbsDiff(await logits(model, name), base)).to.equal(0);
      const frozen = model.parameters().filter((p) => !p.trainable).map((p) => p.name);
      const before = new Map(frozen.map((n) => [n, values(model, n)]));
      await train(model, name, 3);
      for (const n of frozen) expect(maxAbsDiff(values(model, n), before.get(n)!), n).to.equal(0);
      const tuned = await logits(model, name);
      expect(maxAbsDiff(tuned, base)).to.be.above(1e-4);
      // every lora_B got gradients, i.e. every targeted layer (lm_head included) runs through its adapter
      const bs = Object.keys(model.parameterSummary().byModule).filter((m) => m.endsWith('.lora_B [default]'));
      expect(bs.length).to.be.above(0);
      for (const m of bs) expect(Math.max(...values(model, m.replace(' [default]', '.weight'), 'default').map(Math.abs)), m).to.be.above(0);
      // The task head of a classifier trains with the adapter (modules_to_save) and is shared, so "no adapter"
      // equals the base model for causal LMs only.
      const causal = model.task === 'causal-lm';
      if (causal) expect(maxAbsDiff(await logits(model, name, null), base)).to.equal(0);
      model.mergeAdapter();
      expect(maxAbsDiff(await logits(model, name), tuned)).to.be.below(1e-5);
      expect(maxAbsDiff(await logits(model, name, null), tuned)).to.be.below(1e-5); // merged into the base weights
      model.unmergeAdapter();
      if (causal) expect(maxAbsDiff(await logits(model, name, null), base)).to.be.below(1e-5);
      expect(maxAbsDiff(await logits(model, name), tuned)).to.be.below(1e-5);
      for (const n of frozen) expect(maxAbsDiff(values(model, n), before.get(n)!), n).to.be.below(1e-6);
    });
  }

  it('targets: suffixes, full paths, regular expressions, all-linear (heads excluded), GPT-2 Conv1D shapes', async () => {
    const model = await AutoModel.fromPretrained(fixture('gpt2'), { quiet: true });
    model.addLora({ r: 2, alpha: 2, targetModules: ['c_attn', 'mlp.c_proj'] }, 'a');
    expect(model.parameters().filter((p) => p.trainable)).to.deep.equal([]);
    const s = model.parameterSummary();
    // c_attn: A [2, 16] + B [48, 2]; mlp.c_proj (Conv1D [64, 16]): A [2, 64] + B [16, 2]; two layers
    expect(s.trainable).to.equal(2 * (32 + 96 + 128 + 32));
    expect(s.total).to.equal(7488 + s.trainable);
    expect(model.getParameter('transformer.h.1.mlp.c_proj.lora_A.weight', 'a').shape).to.deep.equal([2, 64]);
    expect(model.getParameter('transformer.h.1.mlp.c_proj.lora_B.weight', 'a').shape).to.deep.equal([16, 2]);
    model.addLora({ r: 2, alpha: 2, targetModules: 'transformer\\.h\\.0\\.attn\\.c_attn' }, 'b');
    expect(model.parameterSummary().byModule['transformer.h.0.attn.c_attn.lora_A [b]']).to.deep.equal({ trainable: 0, total: 32 });
    const llama = await AutoModel.fromPretrained(fixture('llama'), { quiet: true });
    llama.addLora({ r: 1, alpha: 1, targetModules: 'all-linear' });
    const modules = Object.keys(llama.parameterSummary().byModule).filter((m) => m.endsWith('lora_A [default]'));
    expect(modules.length).to.equal(14);
    expect(modules.some((m) => m.startsWith('lm_head'))).to.equal(false);
    const err = (() => {
      try {
        llama.addLora({ r: 1, alpha: 1, targetModules: ['nope'] }, 'x');
      } catch (e) {
        return e as { code: string; message: string };
      }
      return undefined;
    })();
    expect(err?.code).to.equal('ERR_ARGUMENT');
    expect(err?.message).to.match(/q_proj/);
  });

  it('A is kaiming-uniform (|A| <= 1/sqrt(in)), B zero; the seed reproduces A (rsLoRA scale: see 52, Python-made adapter)', async () => {
    const model = await AutoModel.fromPretrained(fixture('llama'), { quiet: true });
    model.addLora({ r: 4, alpha: 16, targetModules: ['q_proj'], seed: 7 }, 'plain');
    model.addLora({ r: 4, alpha: 16, targetModules: ['q_proj'], seed: 7, useRslora: true }, 'rs');
    const a = values(model, 'model.layers.0.self_attn.q_proj.lora_A.weight', 'plain');
    expect(Math.max(...a.map(Math.abs))).to.be.at.most(1 / Math.sqrt(24));
    expect(Math.max(...a.map(Math.abs))).to.be.above(0.5 / Math.sqrt(24));
    expect(maxAbsDiff(a, values(model, 'model.layers.0.self_attn.q_proj.lora_A.weight', 'rs'))).to.equal(0);
    expect(Math.max(...values(model, 'model.layers.0.self_attn.q_proj.lora_B.weight', 'plain').map(Math.abs))).to.equal(0);
  });

  it('named adapters: each call uses its own adapter (forward and generate), one base serves them all', async () => {
    const model = await AutoModel.fromPretrained(fixture('llama'), { quiet: true });
    const base = await logits(model, 'llama');
    model.addLora({ r: 4, alpha: 8, targetModules: ['q_proj', 'v_proj'], seed: 1 }, 'one');
    await train(model, 'llama', 3);
    const one = await logits(model, 'llama');
    model.addLora({ r: 2, alpha: 8, targetModules: ['o_proj'], seed: 2 }, 'two');
    expect(model.activeAdapter).to.equal('one');
    model.setActiveAdapter('two');
    await train(model, 'llama', 3);
    const two = await logits(model, 'llama');
    expect(maxAbsDiff(two, one)).to.be.above(1e-4);
    // interleaved calls, each naming its adapter
    const [a, b, c, d] = await Promise.all([logits(model, 'llama', 'one'), logits(model, 'llama', 'two'), logits(model, 'llama', null), logits(model, 'llama')]);
    expect(maxAbsDiff(a, one)).to.equal(0);
    expect(maxAbsDiff(b, two)).to.equal(0);
    expect(maxAbsDiff(c, base)).to.equal(0);
    expect(maxAbsDiff(d, two)).to.equal(0);
    const prompt = [[5, 9, 2]];
    const g1 = await model.generate(prompt, { maxNewTokens: 6, adapter: 'one', eosTokenId: null });
    const g2 = await model.generate(prompt, { maxNewTokens: 6, adapter: 'two', eosTokenId: null });
    model.setActiveAdapter('one');
    expect(await model.generate(prompt, { maxNewTokens: 6, eosTokenId: null })).to.deep.equal(g1);
    model.setActiveAdapter('two');
    expect(await model.generate(prompt, { maxNewTokens: 6, eosTokenId: null })).to.deep.equal(g2);
    // a merged adapter excludes the others until unmerged
    model.mergeAdapter('one');
    let code = '';
    await logits(model, 'llama', 'two').catch((e: { code: string }) => (code = e.code));
    expect(code).to.equal('ERR_STATE');
    model.unmergeAdapter();
    expect(maxAbsDiff(await logits(model, 'llama', 'two'), two)).to.be.below(1e-5);
    expect(() => model.forward({ inputIds: [[1]] }, { adapter: 'three' })).to.throw(/no adapter named "three"/);
    const e = expected('llama');
    const batch = { inputIds: e.inputIds, labels: e.labels };
    const fresh = await AutoModel.fromPretrained(fixture('llama'), { quiet: true });
    const baseLoss = (await fresh.lossAndGradients(batch, [])).loss;
    expect((await model.lossAndGradients(batch, [], { adapter: null })).loss).to.equal(baseLoss);
    expect((await model.lossAndGradients(batch, [], { adapter: 'one' })).loss).to.not.equal(baseLoss);
  });

  it('LoRA on the grouped products (q/k/v and gate/up as one product from 64 token rows, their adapters together) trains as the per-layer path', async () => {
    // Two rows of 32 tokens as one step (64 rows: one product per group, one A product for its adapters, each B
    // added into its layer's columns) against a window of the same rows one at a time (32 rows each: a product and
    // an adapter per layer): SGD, so the weights carry the gradients. Two steps: the first moves B off zero.
    // float32: element-wise. bfloat16: the loss and gradient norm element-wise, the weights in the relative L2 norm
    // (all together, and each tensor more loosely): a weight whose gradient is a sum with cancellation differs by
    // several per cent between 64-row and 32-row products in bfloat16 (measured: 1.8% for one tensor, 0.3% overall),
    // while a wrong scale or cast on the bfloat16 path moves whole tensors.
    let seed = 17;
    const row = () => Array.from({ length: 32 }, () => 1 + ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) % 31));
    const rows = [row(), row()];
    for (const [dtype, precision, tol] of [['float32', 'fp32', { rtol: 1e-5, atol: 1e-6 }], ['bfloat16', 'bf16', { rtol: 2e-2, atol: 2e-3 }]] as const) {
      const load = async () => {
        const m = await AutoModel.fromPretrained(fixture('qwen2'), { quiet: true, dtype });
        m.addLora({ r: 4, alpha: 8, targetModules: 'all-linear', seed: 1 });
        m.configureOptimizer({ type: 'sgd', lr: 0.5 });
        return m;
      };
      const grouped = await load(), perLayer = await load();
      for (let step = 0; step < 2; step++) {
        const a = await perLayer.trainStep(rows.map((r) => ({ inputIds: [r], labels: [r] })), { precision });
        const c = await grouped.trainStep({ inputIds: rows, labels: rows }, { precision });
        expectClose(a.loss, c.loss, tol, `${dtype} step ${step} loss`);
        expectClose(a.gradNorm, c.gradNorm, tol, `${dtype} step ${step} gradient norm`);
      }
      const adapted = Object.keys(grouped.parameterSummary().byModule).filter((m) => m.endsWith(' [default]')).map((m) => m.replace(' [default]', '.weight'));
      expect(adapted.filter((n) => /(q|k|v|gate|up)_proj\.lora_B/.test(n)).length).to.equal(10); // 2 layers x 5 grouped
      if (dtype === 'float32') {
        for (const n of adapted) expectClose(values(grouped, n, 'default'), values(perLayer, n, 'default'), tol, `${dtype} ${n}`);
      } else {
        for (const n of adapted) expectRelativeNorm(values(grouped, n, 'default'), values(perLayer, n, 'default'), 5e-2, `${dtype} ${n}`);
        const all = (m: Model) => adapted.flatMap((n) => Array.from(values(m, n, 'default')));
        expectRelativeNorm(all(grouped), all(perLayer), 1e-2, `${dtype} all adapter weights`);
      }
    }
  });

  it('dropout applies while training only', async () => {
    const model = await AutoModel.fromPretrained(fixture('llama'), { quiet: true });
    model.addLora({ r: 4, alpha: 8, dropout: 0.5, targetModules: ['q_proj', 'v_proj'], seed: 1 });
    await train(model, 'llama', 2);
    const x = await logits(model, 'llama');
    expect(maxAbsDiff(await logits(model, 'llama'), x)).to.equal(0); // inference: deterministic
    // lr 0: the weights stay, so different losses on one batch come from dropout alone (the fixture has none elsewhere)
    const e = expected('llama');
    const batch = { inputIds: e.inputIds, labels: e.labels };
    const losses = new Set<number>();
    for (let i = 0; i < 4; i++) losses.add((await model.trainStep(batch, { lr: 0 })).loss);
    expect(losses.size).to.be.above(1);
    const none = await AutoModel.fromPretrained(fixture('llama'), { quiet: true });
    none.addLora({ r: 4, alpha: 8, targetModules: ['q_proj', 'v_proj'], seed: 1 });
    await train(none, 'llama', 2);
    const plain = new Set<number>();
    for (let i = 0; i < 3; i++) plain.add((await none.trainStep(batch, { lr: 0 })).loss);
    expect(plain.size).to.equal(1);
  });

  it('merge then savePretrained gives a plain checkpoint with the adapted outputs', async () => {
    const model = await AutoModel.fromPretrained(fixture('gpt2'), { quiet: true });
    model.addLora({ r: 4, alpha: 8, targetModules: ['c_attn', 'c_fc'], seed: 3 });
    await train(model, 'gpt2', 3);
    const tuned = await logits(model, 'gpt2');
    model.mergeAdapter();
    const { tempDir } = await import('./helpers');
    const dir = tempDir('nodetune-merged-');
    await model.savePretrained(dir);
    const plain = await AutoModel.fromPretrained(dir, { quiet: true });
    expect(plain.adapterNames()).to.deep.equal([]);
    expect(maxAbsDiff(await logits(plain, 'gpt2'), tuned)).to.be.below(1e-5);
  });

  it('a model from fromConfig (every weight fresh): LoRA trains the adapter alone', async () => {
    const config = JSON.parse(fs.readFileSync(path.join(fixture('gpt2'), 'config.json'), 'utf8')) as Record<string, unknown>;
    const model = await AutoModel.fromConfig(config, { seed: 1 });
    model.addLora({ r: 2, alpha: 4, targetModules: ['c_attn'] });
    expect(model.parameters().filter((p) => p.trainable)).to.deep.equal([]);
    expect(model.parameterSummary().trainable).to.equal(2 * (2 * 16 + 48 * 2));
  });

  it('the real stories260K Llama: LoRA starts at the base logits and lowers the loss on a batch', async function () {
    const dir = stories260K();
    if (!dir) this.skip();
    const model = await AutoModel.fromPretrained(dir!, { quiet: true });
    const ids = [[1, 403, 407, 261, 378, 291, 343, 263, 275, 302, 291, 430, 261, 414, 46]];
    const base = (await model.forward({ inputIds: ids })).logits;
    model.addLora({ r: 8, alpha: 16, targetModules: 'all-linear', seed: 1 });
    expect(maxAbsDiff((await model.forward({ inputIds: ids })).logits, base)).to.equal(0);
    model.configureOptimizer({ type: 'adamw', lr: 1e-2 });
    const first = (await model.trainStep({ inputIds: ids, labels: ids })).loss;
    let last = first;
    for (let i = 0; i < 10; i++) last = (await model.trainStep({ inputIds: ids, labels: ids })).loss;
    expect(last).to.be.below(first * 0.8);
    expect(model.parameterSummary().percent).to.be.below(100);
  });
});
