import { expect } from 'chai';
import * as fs from 'fs';
import * as path from 'path';
import { AutoModel } from '../lib/models';
import { TrialParams, hyperparameterSearch, searchTrials } from '../lib/train/search';
import { Trainer } from '../lib/train/trainer';
import { rejects, tempDir, throws } from './helpers';
import { fixture } from './models-helpers';
import { lmBatches } from './train-helpers';

const llama = () => AutoModel.fromPretrained(fixture('llama'), { quiet: true });

describe('48 train: hyperparameter search', function () {
  this.timeout(60000);

  it('grid: the cartesian product in order, cut by the trial budget', () => {
    expect(searchTrials('grid', { learningRate: [0.1, 0.01], epochs: [1, 2] }, undefined)).to.deep.equal([
      { learningRate: 0.1, epochs: 1 }, { learningRate: 0.1, epochs: 2 }, { learningRate: 0.01, epochs: 1 }, { learningRate: 0.01, epochs: 2 }]);
    expect(searchTrials('grid', { learningRate: [0.1, 0.01], epochs: [1, 2] }, 3)).to.have.length(3);
  });

  it('random: seeded, log-uniform learning rates inside the range, values drawn from lists', () => {
    const a = searchTrials('random', { learningRate: { min: 1e-5, max: 1e-1 }, loraRank: [4, 8, 16] }, 50, 7);
    expect(searchTrials('random', { learningRate: { min: 1e-5, max: 1e-1 }, loraRank: [4, 8, 16] }, 50, 7)).to.deep.equal(a);
    expect(searchTrials('random', { learningRate: { min: 1e-5, max: 1e-1 }, loraRank: [4, 8, 16] }, 50, 8)).to.not.deep.equal(a);
    for (const p of a) {
      expect(p.learningRate).to.be.within(1e-5, 1e-1);
      expect([4, 8, 16]).to.include(p.loraRank);
    }
    // log-uniform: about half the draws fall below the geometric midpoint 1e-3
    const below = a.filter((p) => p.learningRate! < 1e-3).length;
    expect(below).to.be.within(15, 35);
    expect(throws(() => searchTrials('random', { learningRate: [0.1] }, undefined)).message).to.match(/search\.trials: a random search needs a trial budget/);
    expect(throws(() => searchTrials('grid', { learningRate: { min: 1, max: 2 } }, 2)).message).to.match(/a grid needs a list/);
    expect(throws(() => searchTrials('grid', { dropout: [0.1] } as never, 2)).message).to.match(/search\.space\.dropout: unknown parameter/);
    expect(throws(() => searchTrials('grid', { batchSize: [2.5] }, 2)).message).to.match(/space\.batchSize\[0\]: must be a positive integer/);
  });

  it('runs each trial on a fresh model, keeps each report, ranks by the validation metric; a diverged trial ranks last', async () => {
    const out = tempDir();
    const seen: TrialParams[] = [];
    const train = lmBatches(31, 4), validation = lmBatches(32, 2);
    const res = await hyperparameterSearch({
      strategy: 'grid', space: { learningRate: [0.05, 1e15, 0.3], epochs: [1, 2] }, trials: 4,
      model: async (p) => (seen.push(p), llama()),
      train, validation, args: { outputDir: out, optimizer: 'sgd', lrScheduler: 'constant', maxGradNorm: null },
    });
    expect(seen).to.deep.equal([{ learningRate: 0.05, epochs: 1 }, { learningRate: 0.05, epochs: 2 }, { learningRate: 1e15, epochs: 1 }, { learningRate: 1e15, epochs: 2 }]);
    expect(res.metric).to.equal('loss');
    const ok = res.trials.filter((t) => t.metric !== null);
    expect(ok).to.have.length(2);
    expect(ok[0]!.metric!).to.be.at.most(ok[1]!.metric!);
    expect(res.best).to.equal(res.trials[0]);
    expect(res.trials.slice(2).every((t) => t.error !== null && /diverged at step/.test(t.error))).to.equal(true);
    for (const t of ok) expect(fs.existsSync(path.join(t.outputDir, 'report.html'))).to.equal(true);
    // the ranked metric is the trial's validation loss: re-train trial 1 alone and compare
    const again = new Trainer({ model: await llama(), train, validation, args: { outputDir: tempDir(), optimizer: 'sgd', lrScheduler: 'constant',
      maxGradNorm: null, learningRate: 0.05, epochs: 2, report: false } });
    await again.train();
    expect(res.trials.find((t) => t.index === 1)!.metric).to.be.closeTo((await again.evaluate()).metrics.loss!, 1e-9);
    const saved = JSON.parse(fs.readFileSync(res.file, 'utf8'));
    expect(saved.trials.map((t: { index: number }) => t.index)).to.deep.equal(res.trials.map((t) => t.index));
  });

  it('refuses to search batch sizes over prepared batches', async () => {
    const e = await rejects(hyperparameterSearch({ strategy: 'grid', space: { batchSize: [2, 4] }, model: llama, train: lmBatches(1, 2),
      validation: lmBatches(2, 1), args: { outputDir: tempDir() } }));
    expect(e.code).to.equal('ERR_CONFIG');
    expect(e.message).to.match(/search\.space\.batchSize: the training data are prepared batches/);
  });
});
