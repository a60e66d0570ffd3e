import { expect } from 'chai';
import { EarlyStopping } from '../lib/train/early-stopping';
import { throws } from './helpers';

/** Feeds (step, metric) pairs until the stopper says stop; returns the step it stopped at. */
function run(e: EarlyStopping, metrics: number[], every = 10): number | null {
  for (let i = 0; i < metrics.length; i++) if (e.update(metrics[i]!, (i + 1) * every).stop) return (i + 1) * every;
  return null;
}

describe('42 train: early stopping', () => {
  it('min mode with patience 2 stops at the second evaluation in a row without improvement', () => {
    const e = new EarlyStopping({ patience: 2, mode: 'min' });
    expect(run(e, [1.0, 0.8, 0.7, 0.75, 0.71, 0.72, 0.5])).to.equal(50);
    expect(e.best).to.equal(0.7);
    expect(e.bestStep).to.equal(30);
  });

  it('minDelta: improvements smaller than the margin do not count', () => {
    const e = new EarlyStopping({ patience: 2, minDelta: 0.05 });
    // 1.0 best; 0.97 (bad 1); 0.96 (bad 2: stop) although each was lower
    expect(run(e, [1.0, 0.97, 0.96, 0.5])).to.equal(30);
    expect(e.best).to.equal(1.0);
  });

  it('max mode (accuracy) and a reset of the count on improvement', () => {
    const e = new EarlyStopping({ patience: 2, mode: 'max' });
    // 0.5; 0.5 (bad 1); 0.6 (reset); 0.55 (1); 0.9 (reset); 0.8 (1); 0.85 (2: stop)
    expect(run(e, [0.5, 0.5, 0.6, 0.55, 0.9, 0.8, 0.85, 0.95])).to.equal(70);
    expect(e.bestStep).to.equal(50);
    expect(e.best).to.equal(0.9);
  });

  it('its state survives JSON and continues identically', () => {
    const opts = { patience: 3, mode: 'min' as const };
    const a = new EarlyStopping(opts);
    run(a, [3, 2, 2.5]);
    const b = EarlyStopping.fromJSON(JSON.parse(JSON.stringify(a)), opts);
    expect(b.update(2.6, 40).stop).to.equal(false);
    expect(b.update(2.7, 50).stop).to.equal(true);
    expect(throws(() => EarlyStopping.fromJSON({} as never, opts)).code).to.equal('ERR_STATE');
  });

  it('rejects bad options and non-finite metrics', () => {
    expect(throws(() => new EarlyStopping({ patience: 0 })).message).to.match(/earlyStopping\.patience/);
    expect(throws(() => new EarlyStopping({ patience: 1, mode: 'up' as never })).message).to.match(/'min' or 'max'/);
    expect(throws(() => new EarlyStopping({ patience: 1 }).update(NaN, 7)).message).to.match(/step 7/);
  });
});
