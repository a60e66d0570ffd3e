import { expect } from 'chai';
import { benchServer } from '../bench/serve';
import { stories260K } from './models-helpers';

describe('63 bench: serving load test (quick)', () => {
  it('runs bounded on loopback and reports batch-1, static and continuous batching with streaming clients', async function () {
    if (!stories260K()) return this.skip(); // ../shared/assets/models/stories260K/model.safetensors is missing
    type Run = { clients: number; requests: number; tokensPerSecond: number; ttftP50Ms: number; interTokenP99Ms: number; meanRowsPerStep: number };
    const r = await benchServer({ quick: true }) as { batch1: Run; static16: Run; continuous16: Run; continuousOverBatch1: number };
    expect(r.batch1.clients).to.equal(1);
    expect(r.batch1.meanRowsPerStep).to.equal(1);
    for (const run of [r.static16, r.continuous16]) {
      expect(run.clients).to.equal(16);
      expect(run.requests).to.equal(32);
      expect(run.meanRowsPerStep).to.be.greaterThan(1);
      expect(run.ttftP50Ms).to.be.greaterThan(0);
    }
    expect(r.continuousOverBatch1).to.equal(+(r.continuous16.tokensPerSecond / r.batch1.tokensPerSecond).toFixed(2));
  });
});
