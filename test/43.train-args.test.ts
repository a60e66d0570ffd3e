import { expect } from 'chai';
import { resolveArgs } from '../lib/train/args';
import { throws } from './helpers';

describe('43 train: TrainingArgs validation and defaults', () => {
  it('fills in transformers-like defaults', () => {
    const a = resolveArgs({ outputDir: '/tmp/x' }, true);
    expect(a).to.include({ epochs: 3, batchSize: 8, gradientAccumulationSteps: 1, learningRate: 5e-5, optimizer: 'adamw', adamBeta1: 0.9,
      adamBeta2: 0.999, adamEpsilon: 1e-8, weightDecay: 0, maxGradNorm: 1, lrScheduler: 'linear', seed: 42, evalStrategy: 'epoch',
      saveStrategy: 'no', metricForBestModel: 'loss', greaterIsBetter: false, loadBestAtEnd: false });
    expect(a.maxSteps).to.equal(null);
    expect(resolveArgs({ outputDir: '/tmp/x' }, false).evalStrategy).to.equal('no');
    expect(resolveArgs({ outputDir: '/tmp/x', metricForBestModel: 'accuracy' }, true).greaterIsBetter).to.equal(true);
    expect(resolveArgs({ outputDir: '/tmp/x', metricForBestModel: 'perplexity' }, true).greaterIsBetter).to.equal(false);
    expect(resolveArgs({ outputDir: '/tmp/x', maxGradNorm: null }, false).maxGradNorm).to.equal(null);
  });

  it('each bad field is an ERR_CONFIG naming the field and what is allowed', () => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [{}, /TrainingArgs\.outputDir: must be a non-empty path/],
      [{ outputDir: 'o', learningRate: -1 }, /TrainingArgs\.learningRate: must be a number in \[0, /],
      [{ outputDir: 'o', optimizer: 'adam' }, /TrainingArgs\.optimizer: must be one of 'adamw', 'sgd', got "adam"/],
      [{ outputDir: 'o', lrScheduler: 'step' }, /TrainingArgs\.lrScheduler: must be one of 'constant', 'linear', 'cosine', 'polynomial', 'inverse_sqrt'/],
      [{ outputDir: 'o', gradientAccumulationSteps: 0 }, /TrainingArgs\.gradientAccumulationSteps: must be an integer >= 1, got 0/],
      [{ outputDir: 'o', batchSize: 2.5 }, /TrainingArgs\.batchSize/],
      [{ outputDir: 'o', adamBeta2: 1 }, /TrainingArgs\.adamBeta2: must be a number in \[0, 1\)/],
      [{ outputDir: 'o', warmupRatio: 1.5 }, /TrainingArgs\.warmupRatio/],
      [{ outputDir: 'o', evalStrategy: 'steps' }, /evalStrategy: is 'steps' but no validation data/],
      [{ outputDir: 'o', loadBestAtEnd: true }, /loadBestAtEnd: needs evaluations/],
      [{ outputDir: 'o', saveStrategy: 'always' }, /saveStrategy: must be one of 'no', 'steps', 'epoch'/],
      [{ outputDir: 'o', learningrate: 1 }, /TrainingArgs\.learningrate: unknown option/],
      [{ outputDir: 'o', shuffle: 'yes' }, /shuffle: must be true or false/],
    ];
    for (const [args, re] of cases) {
      const e = throws(() => resolveArgs(args as never, false));
      expect(e.code, JSON.stringify(args)).to.equal('ERR_CONFIG');
      expect(e.message).to.match(re);
    }
    const e = throws(() => resolveArgs({ outputDir: 'o', evalStrategy: 'steps', evalSteps: 10, saveStrategy: 'steps', saveSteps: 15, loadBestAtEnd: true }, true));
    expect(e.message).to.match(/saveSteps: must be a multiple of evalSteps \(10\)/);
    const e2 = throws(() => resolveArgs({ outputDir: 'o', evalStrategy: 'epoch', loadBestAtEnd: true }, true));
    expect(e2.message).to.match(/saveStrategy: must match evalStrategy \('epoch'\) with loadBestAtEnd/);
  });
});
