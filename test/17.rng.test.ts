import { expect } from 'chai';
import { AutoModel, manualSeed, rngState, setRngState } from '../lib';
import { throws } from './helpers';

describe('17 random number generators: seeds and saved state', () => {
  const config = {
    model_type: 'gpt2', architectures: ['GPT2LMHeadModel'], vocab_size: 32, n_positions: 16, n_embd: 16, n_layer: 1, n_head: 2,
  };

  it('manualSeed makes newly initialised weights repeat', async () => {
    manualSeed(7);
    const a = await AutoModel.fromConfig(config);
    manualSeed(7);
    const b = await AutoModel.fromConfig(config);
    manualSeed(8);
    const c = await AutoModel.fromConfig(config);
    const name = 'transformer.h.0.attn.c_attn.weight';
    const wa = Array.from(a.getParameter(name).data() as Float32Array);
    expect(Array.from(b.getParameter(name).data() as Float32Array)).to.deep.equal(wa);
    expect(Array.from(c.getParameter(name).data() as Float32Array)).to.not.deep.equal(wa);
  });

  it('a saved state restores the exact random stream (dropout masks resume exactly)', async () => {
    manualSeed(1);
    const state = rngState();
    expect(state).to.be.instanceOf(Uint8Array);
    expect(state.length).to.be.greaterThan(100);
    const dropoutConfig = { ...config, resid_pdrop: 0.5, embd_pdrop: 0.5, attn_pdrop: 0.5 };
    manualSeed(3);
    const model = await AutoModel.fromConfig(dropoutConfig);
    const batch = { inputIds: [[1, 2, 3, 4, 5, 6]], labels: [[1, 2, 3, 4, 5, 6]] };
    model.configureOptimizer({ type: 'sgd', lr: 0 });
    setRngState(state);
    const first = (await model.trainStep(batch)).loss;
    const second = (await model.trainStep(batch)).loss;
    expect(second).to.not.equal(first); // dropout draws new masks each step
    setRngState(state);
    expect((await model.trainStep(batch)).loss).to.equal(first);
    expect((await model.trainStep(batch)).loss).to.equal(second);
  });

  it('bad seeds and states are typed errors', () => {
    expect(throws(() => manualSeed(-1)).code).to.equal('ERR_ARGUMENT');
    expect(throws(() => manualSeed(1.5)).code).to.equal('ERR_ARGUMENT');
    const err = throws(() => setRngState(new Uint8Array(3)));
    expect(err.code).to.equal('ERR_ARGUMENT');
    expect(err.message).to.include('got 3');
    expect(throws(() => rngState('cuda:7')).code).to.equal('ERR_DEVICE');
  });
});
