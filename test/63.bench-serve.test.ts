import { expect } from 'chai';
import { benchServer } from '../bench/serve';
import { stories260K } from './models-helpers';

describe('63 bench: serving load test (quick)', () => {
  it('runs bounded on loopback and reports both configurations', async function () {
    if (!stories260K()) return this.skip(); // ../shared/assets/models/stories260K/model.safetensors is missing
    const r = await benchServer({ quick: true }) as {
      oneAtATime: { requests: number; meanBatchSize: number; tokensPerSecond: number };
      microBatched: { requests: number; meanBatchSize: number; tokensPerSecond: number };
      throughputGain: number;
    };
    expect(r.oneAtATime.requests).to.equal(32);
    expect(r.microBatched.requests).to.equal(32);
    expect(r.oneAtATime.meanBatchSize).to.equal(1);
    expect(r.microBatched.meanBatchSize).to.be.greaterThan(1);
    expect(r.throughputGain).to.equal(+(r.microBatched.tokensPerSecond / r.oneAtATime.tokensPerSecond).toFixed(2));
  });
});
