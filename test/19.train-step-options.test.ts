import { expect } from 'chai';
import { AutoModel, manualSeed, Model, Tensor } from '../lib';
import { throws } from './helpers';

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
