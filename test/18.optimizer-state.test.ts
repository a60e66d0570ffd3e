import { expect } from 'chai';
import * as fs from 'fs';
import * as path from 'path';
import { AutoModel, manualSeed } from '../lib';
import { rejects, tempDir } from './helpers';

describe('18 optimizer state: saved and restored for exact resume', () => {
  const config = {
    model_type: 'llama', architectures: ['LlamaForCausalLM'], vocab_size: 48, hidden_size: 16, intermediate_size: 32,
    num_hidden_layers: 1, num_attention_heads: 2, num_key_value_heads: 1, max_position_embeddings: 32,
  };
  const batch = { inputIds: [[1, 5, 9, 13, 17, 21], [2, 6, 10, 14, 18, 22]], labels: [[1, 5, 9, 13, 17, 21], [2, 6, 10, 14, 18, 22]] };

  async function fresh() {
    manualSeed(11);
    const m = await AutoModel.fromConfig(config);
    return m;
  }

  for (const type of ['adamw', 'sgd'] as const) {
    it(`${type}: training on after a save/load equals training on uninterrupted`, async () => {
      const dir = tempDir('nodetune-optim-');
      const options = type === 'adamw' ? { type, lr: 0.01, weightDecay: 0.1 } : { type, lr: 0.05, momentum: 0.9 };
      const a = await fresh();
      a.configureOptimizer(options);
      for (let i = 0; i < 3; i++) await a.trainStep(batch);
      await a.savePretrained(path.join(dir, 'weights'));
      await a.saveOptimizerState(path.join(dir, 'optimizer.pt'));
      const continued: number[] = [];
      for (let i = 0; i < 3; i++) continued.push((await a.trainStep(batch)).loss);

      const b = await AutoModel.fromPretrained(path.join(dir, 'weights'), { quiet: true });
      b.configureOptimizer(options);
      await b.loadOptimizerState(path.join(dir, 'optimizer.pt'));
      const resumed: number[] = [];
      for (let i = 0; i < 3; i++) resumed.push((await b.trainStep(batch)).loss);
      expect(resumed).to.deep.equal(continued);

      // Without the state, the moments start from zero and the curve differs.
      const c = await AutoModel.fromPretrained(path.join(dir, 'weights'), { quiet: true });
      c.configureOptimizer(options);
      await c.trainStep(batch);
      expect((await c.trainStep(batch)).loss).to.not.equal(resumed[1]);
    });
  }

  it('a state for other parameters, a wrong optimizer type and a bad file are typed errors', async () => {
    const dir = tempDir('nodetune-optim-');
    const a = await fresh();
    a.configureOptimizer({ type: 'adamw', lr: 0.01 });
    await a.trainStep(batch);
    const file = path.join(dir, 'optimizer.pt');
    await a.saveOptimizerState(file);

    manualSeed(1);
    const other = await AutoModel.fromConfig({ ...config, hidden_size: 24, intermediate_size: 40 });
    other.configureOptimizer({ type: 'adamw', lr: 0.01 });
    let err = await rejects(other.loadOptimizerState(file));
    expect(err.code).to.equal('ERR_STATE');
    expect(err.message).to.include('of other shapes');

    const sgd = await fresh();
    sgd.configureOptimizer({ type: 'sgd', lr: 0.01, momentum: 0.9 });
    await sgd.trainStep(batch);
    err = await rejects(sgd.loadOptimizerState(file));
    expect(['ERR_CHECKPOINT', 'ERR_STATE']).to.include(err.code);

    const junk = path.join(dir, 'junk.pt');
    fs.writeFileSync(junk, 'not a zip archive');
    const b = await fresh();
    b.configureOptimizer({ type: 'adamw', lr: 0.01 });
    err = await rejects(b.loadOptimizerState(junk));
    expect(err.code).to.equal('ERR_CHECKPOINT');
    expect(err.message).to.include(junk);
    err = await rejects(b.loadOptimizerState(path.join(dir, 'missing.pt')));
    expect(err.code).to.equal('ERR_IO');
  });
});
