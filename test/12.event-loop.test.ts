import { expect } from 'chai';
import { measureMatmul, Tensor } from '../lib';

describe('12 native work never blocks the event loop', () => {
  it('setInterval keeps ticking while a multi-second native computation runs', async () => {
    const ticks: number[] = [];
    const timer = setInterval(() => ticks.push(Date.now()), 10);
    const started = Date.now();
    // ~1 s per 10 products of 2048x2048 at ~190 GFLOP/s; make it at least 2 s wherever it runs.
    let gflops = 0;
    let runs = 0;
    while (Date.now() - started < 2000) {
      gflops = await measureMatmul(1024, 60);
      runs += 1;
    }
    const elapsed = Date.now() - started;
    clearInterval(timer);
    expect(gflops).to.be.greaterThan(0);
    expect(elapsed).to.be.greaterThan(1500);
    // With a 10 ms interval over >= 1.5 s, a blocked loop would see ~runs ticks; a free one ~elapsed/10.
    expect(ticks.length).to.be.greaterThan(elapsed / 10 / 3);
    let maxGap = 0;
    for (let i = 1; i < ticks.length; i++) maxGap = Math.max(maxGap, ticks[i]! - ticks[i - 1]!);
    expect(maxGap, `longest pause between ticks in ${runs} native runs`).to.be.lessThan(250);
  });

  it('the object stays alive while a call is in flight, and calls on it are serialised in order', async () => {
    const n = 256;
    const eye = new Float32Array(n * n);
    for (let i = 0; i < n; i++) eye[i * n + i] = 2;
    let t: Tensor | undefined = Tensor.from(eye, { shape: [n, n] });
    const order: number[] = [];
    const calls = [0, 1, 2, 3, 4].map((i) => t!.matmul(t!).then((r) => { order.push(i); return r; }));
    t = undefined; // only the in-flight calls hold it now
    if (global.gc) global.gc();
    const results = await Promise.all(calls);
    expect(order).to.deep.equal([0, 1, 2, 3, 4]);
    for (const r of results) expect((r.data() as Float32Array)[0]).to.equal(4);
  });

  it('a failed call does not stop the queue behind it', async () => {
    const a = Tensor.from(new Float32Array(6), { shape: [2, 3] });
    const b = Tensor.from(new Float32Array(6), { shape: [3, 2] });
    const bad = a.matmul(a);
    const good = a.matmul(b);
    const [r1, r2] = await Promise.allSettled([bad, good]);
    expect(r1.status).to.equal('rejected');
    expect(r2.status).to.equal('fulfilled');
  });
});
