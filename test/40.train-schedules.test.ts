import { expect } from 'chai';
import { ReduceLROnPlateau, createSchedule } from '../lib/train/schedules';
import { throws } from './helpers';

const close = (a: number, b: number) => expect(a).to.be.closeTo(b, 1e-12);

describe('40 train: learning-rate schedules', () => {
  const lr = 1e-3;

  it('constant with warmup steps', () => {
    const s = createSchedule({ type: 'constant', warmupSteps: 4 }, 100, lr);
    close(s.lr(0), 0);
    close(s.lr(1), lr / 4);
    close(s.lr(3), (3 * lr) / 4);
    close(s.lr(4), lr);
    close(s.lr(99), lr);
  });

  it('linear: warmup as a ratio, then linear decay to 0', () => {
    const s = createSchedule({ type: 'linear', warmupRatio: 0.1 }, 95, lr);
    expect(s.warmupSteps).to.equal(10); // ceil(9.5)
    close(s.lr(5), lr * 0.5);
    close(s.lr(10), lr);
    close(s.lr(50), (lr * (95 - 50)) / 85);
    close(s.lr(95), 0);
    close(s.lr(120), 0);
  });

  it('cosine with a floor', () => {
    const s = createSchedule({ type: 'cosine', warmupSteps: 10, minLrRatio: 0.1 }, 110, lr);
    close(s.lr(10), lr);
    // halfway: 0.5 * (1 + cos(pi/2)) = 0.5, floored: 0.5 * 0.9 + 0.1
    close(s.lr(60), lr * 0.55);
    close(s.lr(35), lr * (0.5 * (1 + Math.cos(Math.PI * 0.25)) * 0.9 + 0.1));
    close(s.lr(110), lr * 0.1);
    const plain = createSchedule({ type: 'cosine' }, 100, lr);
    close(plain.lr(100), 0);
    close(plain.lr(25), lr * 0.5 * (1 + Math.cos(Math.PI * 0.25)));
  });

  it('polynomial with power and end lr', () => {
    const end = 1e-5;
    const s = createSchedule({ type: 'polynomial', warmupSteps: 10, power: 2, lrEnd: end }, 110, lr);
    close(s.lr(5), lr / 2);
    close(s.lr(10), lr);
    close(s.lr(60), (lr - end) * 0.5 ** 2 + end);
    close(s.lr(85), (lr - end) * 0.25 ** 2 + end);
    close(s.lr(110), end);
    close(s.lr(500), end);
  });

  it('inverse square root after warmup', () => {
    const s = createSchedule({ type: 'inverse_sqrt', warmupSteps: 16 }, 1000, lr);
    close(s.lr(8), lr / 2);
    close(s.lr(16), lr);
    close(s.lr(64), lr / 2); // 1/sqrt(64/16)
    close(s.lr(144), lr / 3);
    const t = createSchedule({ type: 'inverse_sqrt', timescale: 100 }, 1000, lr);
    close(t.lr(0), lr);
    close(t.lr(300), lr / 2);
  });

  it('rejects bad options with ERR_CONFIG naming the field', () => {
    const e = throws(() => createSchedule({ type: 'exponential' as never }, 10, lr));
    expect(e.code).to.equal('ERR_CONFIG');
    expect(e.message).to.match(/schedule\.type.*constant, linear, cosine, polynomial, inverse_sqrt/);
    expect(throws(() => createSchedule({ type: 'cosine', minLrRatio: 2 }, 10, lr)).message).to.match(/minLrRatio/);
    expect(throws(() => createSchedule({ type: 'polynomial', lrEnd: 1 }, 10, lr)).message).to.match(/lrEnd/);
    expect(throws(() => createSchedule({ type: 'linear', warmupSteps: 1.5 }, 10, lr)).message).to.match(/warmupSteps/);
  });

  it('ReduceLROnPlateau: patience, factor, cooldown, minLr (PyTorch semantics)', () => {
    const p = new ReduceLROnPlateau(1, { mode: 'min', factor: 0.5, patience: 1, cooldown: 1, minLr: 0.2 });
    const lrs = [1.0, 0.9, 0.95, 0.95, 0.96, 0.97, 0.98, 0.99, 1.0, 1.1].map((m) => (p.step(m), p.lr));
    // best 0.9 at eval 2; bad: 3 (1), 4 (2 > 1: reduce to 0.5, cooldown 1); 5: cooldown resets count;
    // 6 (1), 7 (2: reduce to 0.25); 8 cooldown; 9 (1); 10 (2: 0.125 floored at 0.2)
    expect(lrs).to.deep.equal([1, 1, 1, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25, 0.2]);
    const saved = JSON.parse(JSON.stringify(p.toJSON()));
    const q = ReduceLROnPlateau.fromJSON(saved, { mode: 'min', factor: 0.5, patience: 1, cooldown: 1, minLr: 0.2 });
    expect(q.lr).to.equal(0.2);
    expect(q.best).to.equal(0.9);
    expect(q.toJSON()).to.deep.equal(p.toJSON());
    const max = new ReduceLROnPlateau(1, { mode: 'max', patience: 0, threshold: 0.1, thresholdMode: 'abs' });
    expect(max.step(1)).to.equal(false);
    expect(max.step(1.05)).to.equal(true); // not better by 0.1
    expect(max.lr).to.be.closeTo(0.1, 1e-15);
    expect(throws(() => new ReduceLROnPlateau(1, { factor: 1 })).code).to.equal('ERR_CONFIG');
  });
});
