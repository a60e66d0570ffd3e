import { expect } from 'chai';
import { AutoModel } from '../lib/models';
import { CancelledError, QueueFullError } from '../lib/pipelines/batcher';
import { ContinuousScheduler } from '../lib/pipelines/continuous';
import type { RowStream } from '../lib/pipelines/continuous';
import type { SessionToken } from '../lib/models/session';
import { fixture } from './models-helpers';

async function all(row: RowStream): Promise<SessionToken[]> {
  const out: SessionToken[] = [];
  for (let t = await row.next(); ; t = await row.next()) {
    out.push(t);
    if (t.finish) return out;
  }
}

describe('60 pipelines: the continuous-batching scheduler', () => {
  const prompt = [5, 9, 13, 22, 7];
  const opts = { maxNewTokens: 4, stopTokens: null };

  it('admits waiting requests within the prefill budget per step; retires finished rows at once', async () => {
    const model = await AutoModel.fromPretrained(fixture('llama'), { quiet: true });
    const rowsPerStep = async (s: ContinuousScheduler) => {
      const seen: number[] = [];
      s.onStep = (rows) => seen.push(rows);
      const rows = [s.submit(prompt, opts, undefined), s.submit(prompt, opts, undefined), s.submit(prompt, { ...opts, maxNewTokens: 2 }, undefined)];
      const tokens = await Promise.all(rows.map(all));
      return { seen, tokens };
    };
    // Budget 6 prompt tokens: one 5-token prompt per step joins (the first always does).
    const tight = await rowsPerStep(new ContinuousScheduler(model, { prefillBudget: 6 }));
    // Then the third row (2 tokens) and the first (4) leave at once after their last tokens; the second runs on.
    expect(tight.seen).to.deep.equal([1, 2, 3, 3, 1]);
    // A budget for all three: they join at the first step and decode together.
    const wide = await rowsPerStep(new ContinuousScheduler(model, { prefillBudget: 512 }));
    expect(wide.seen).to.deep.equal([3, 3, 2, 2]);
    expect(wide.tokens.map((t) => t.map((x) => x.token))).to.deep.equal(tight.tokens.map((t) => t.map((x) => x.token)));
    expect(wide.tokens.map((t) => t[t.length - 1]!.finish)).to.deep.equal(['length', 'length', 'length']);
  });

  it('static batching admits rows only into an empty batch; maxRows, maxQueue and cancel hold', async () => {
    const model = await AutoModel.fromPretrained(fixture('llama'), { quiet: true });
    const s = new ContinuousScheduler(model, { static: true, staticWaitMs: 0, maxRows: 2, maxQueue: 2 });
    const seen: number[] = [];
    s.onStep = (rows) => seen.push(rows);
    const a = s.submit(prompt, opts, undefined);
    const b = s.submit(prompt, { ...opts, maxNewTokens: 2 }, undefined);
    await new Promise((r) => setImmediate(r));  // a and b form the batch
    const c = s.submit(prompt, { ...opts, maxNewTokens: 2 }, undefined);
    const d = s.submit(prompt, { ...opts, maxNewTokens: 2 }, undefined);
    expect(s.stats()).to.include({ waiting: 2 });
    expect(() => s.submit(prompt, opts, undefined)).to.throw(QueueFullError);  // maxQueue 2
    await Promise.all([a, b, c, d].map(all));
    // c and d joined only once a and b both ended (static), though b ended after 2 tokens.
    expect(seen).to.deep.equal([2, 2, 1, 1, 2, 2]);
    // Cancel: a waiting request leaves the queue; a running one is freed at the next step.
    const long = s.submit(prompt, { ...opts, maxNewTokens: 50 }, undefined);
    await long.next();
    long.cancel('client left');
    let err: unknown;
    try { await long.next(); } catch (e) { err = e; }
    expect(err).to.be.instanceOf(CancelledError);
    const e = s.submit(prompt, opts, undefined);
    expect((await all(e)).length).to.equal(4);
    expect(s.stats()).to.include({ running: 0, waiting: 0 });
  });
});
