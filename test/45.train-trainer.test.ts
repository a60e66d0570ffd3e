import { expect } from 'chai';
import * as fs from 'fs';
import * as path from 'path';
import { AutoModel } from '../lib/models';
import { Tensor } from '../lib/tensor';
import { Trainer } from '../lib/train/trainer';
import { TrainerEvent } from '../lib/train/events';
import { createSchedule } from '../lib/train/schedules';
import { JsonlLogger } from '../lib/train/logger';
import { expectClose, rejects, tempDir } from './helpers';
import { fixture } from './models-helpers';
import { clsFeatures, lmBatches, maxDiff, snapshot } from './train-helpers';

const llama = () => AutoModel.fromPretrained(fixture('llama'), { quiet: true });

/** Row-major rows of a batch as nested arrays, right-padded to `len` (mask 0, labels -100). */
function rows(data: Int32Array, shape: [number, number], len: number, pad: number): number[][] {
  return Array.from({ length: shape[0] }, (_, r) => {
    const row = Array.from(data.subarray(r * shape[1], (r + 1) * shape[1]));
    while (row.length < len) row.push(pad);
    return row;
  });
}

describe('45 train: the Trainer on tiny models', function () {
  this.timeout(60000);

  it('gradient accumulation over k micro-batches equals one k-times batch (loss and weights within 1e-5)', async () => {
    const micro = lmBatches(3, 4); // lengths 6, 7, 6, 7: windows pad to 7
    for (const optimizer of ['sgd', 'adamw'] as const) {
      const a = await llama();
      const t = new Trainer({ model: a, train: micro, args: { outputDir: tempDir(), optimizer, learningRate: 0.05, lrScheduler: 'constant',
        gradientAccumulationSteps: 2, epochs: 1, shuffle: false, maxGradNorm: null, report: false, weightDecay: 0.01 } });
      const res = await t.train();
      expect(res.globalStep).to.equal(2);
      const b = await llama();
      b.configureOptimizer({ type: optimizer, lr: 0.05, weightDecay: 0.01 });
      const want: number[] = [];
      for (const [x, y] of [[micro[0]!, micro[1]!], [micro[2]!, micro[3]!]] as const) {
        const len = Math.max(x.shape[1], y.shape[1]);
        const big = {
          inputIds: [...rows(x.inputIds, x.shape, len, 0), ...rows(y.inputIds, y.shape, len, 0)],
          attentionMask: [...rows(x.attentionMask, x.shape, len, 0), ...rows(y.attentionMask, y.shape, len, 0)],
          labels: [...rows(x.labels!, x.shape, len, -100), ...rows(y.labels!, y.shape, len, -100)],
        };
        want.push((await b.trainStep(big, { lr: 0.05 })).loss);
      }
      // (accumulated micro-batches vs one big batch: other reduction orders; float32 losses within rtol 1e-5)
      expectClose(res.losses, want, { rtol: 1e-5 }, `${optimizer} losses`);
      expect(maxDiff(snapshot(a), snapshot(b)), optimizer).to.be.below(1e-5);
    }
  });

  it('an interrupted (AbortSignal) and resumed run has the same loss curve as an uninterrupted one', async () => {
    const train = lmBatches(7, 6);
    const args = { learningRate: 0.2, optimizer: 'sgd' as const, lrScheduler: 'linear' as const, warmupSteps: 2, epochs: 2,
      gradientAccumulationSteps: 1, seed: 11, report: false, loggingSteps: 1 };
    const full = await new Trainer({ model: await llama(), train, args: { ...args, outputDir: tempDir() } }).train();
    expect(full.losses).to.have.length(12);

    const out = tempDir();
    const controller = new AbortController();
    const first = new Trainer({ model: await llama(), train, args: { ...args, outputDir: out } });
    first.on('step', (e) => { if (e.step === 5) controller.abort(); });
    const part = await first.train({ signal: controller.signal });
    expect(part.reason).to.equal('aborted');
    expect(part.losses).to.have.length(5);
    expect(fs.existsSync(path.join(out, 'checkpoint-5', 'trainer_state.json'))).to.equal(true);

    const second = new Trainer({ model: await llama(), train, args: { ...args, outputDir: out, resumeFrom: 'latest' } });
    const rest = await second.train();
    expect(rest.reason).to.equal('completed');
    expect([...part.losses, ...rest.losses]).to.deep.equal(full.losses);
    // the log history continues too: one log record per step, steps 1..12
    expect(JsonlLogger.read(path.join(out, 'metrics.jsonl')).map((r) => r.step)).to.deep.equal(Array.from({ length: 12 }, (_, i) => i + 1));
  });

  it('AdamW with dropout resumes exactly: checkpoints carry the optimizer state and the RNG state', async () => {
    const train = lmBatches(7, 6, 40); // the gpt2 fixture's vocabulary
    const gpt2 = () => AutoModel.fromPretrained(fixture('gpt2'), { quiet: true }); // resid/embd/attn dropout 0.1
    const args = { learningRate: 0.01, optimizer: 'adamw' as const, weightDecay: 0.01, lrScheduler: 'cosine' as const, epochs: 1,
      seed: 5, report: false, loggingSteps: 1 };
    const full = await new Trainer({ model: await gpt2(), train, args: { ...args, outputDir: tempDir() } }).train();
    const again = await new Trainer({ model: await gpt2(), train, args: { ...args, outputDir: tempDir() } }).train();
    expect(again.losses).to.deep.equal(full.losses); // same seed, same dropout masks
    const out = tempDir();
    const controller = new AbortController();
    const firstModel = await gpt2();
    firstModel.setLossScalerState({ scale: 512, growthInterval: 7 }); // not used in fp32, but carried by checkpoints
    const first = new Trainer({ model: firstModel, train, args: { ...args, outputDir: out } });
    first.on('step', (e) => { if (e.step === 3) controller.abort(); });
    const part = await first.train({ signal: controller.signal });
    expect(fs.existsSync(path.join(out, 'checkpoint-3', 'optimizer.pt'))).to.equal(true);
    expect(fs.existsSync(path.join(out, 'checkpoint-3', 'rng_state.bin'))).to.equal(true);
    const resumed = await gpt2();
    const rest = await new Trainer({ model: resumed, train, args: { ...args, outputDir: out, resumeFrom: 'latest' } }).train();
    expect([...part.losses, ...rest.losses]).to.deep.equal(full.losses);
    expect(resumed.lossScalerState()).to.deep.equal({ scale: 512, goodSteps: 0, growthInterval: 7 });
  });

  it('refuses a resume it cannot make exact (a model without optimizer state) with ERR_STATE naming what is missing', async () => {
    const train = lmBatches(7, 2);
    const out = tempDir();
    const bare = async () => {
      const m = await llama();
      // the TrainerModel surface without saveOptimizerState/loadOptimizerState
      return {
        task: m.task, config: m.config, device: m.device, dtype: m.dtype,
        forward: m.forward.bind(m), trainStep: m.trainStep.bind(m), configureOptimizer: m.configureOptimizer.bind(m),
        savePretrained: m.savePretrained.bind(m), parameters: m.parameters.bind(m), getParameter: m.getParameter.bind(m),
        setParameter: m.setParameter.bind(m),
      };
    };
    const controller = new AbortController();
    const t = new Trainer({ model: await bare(), train, args: { outputDir: out, optimizer: 'adamw', epochs: 1, report: false } });
    t.on('step', () => controller.abort());
    await t.train({ signal: controller.signal });
    const e = await rejects(new Trainer({ model: await bare(), train, args: { outputDir: out, optimizer: 'adamw', epochs: 1, resumeFrom: 'latest' } }).train());
    expect(e.code).to.equal('ERR_STATE');
    expect(e.message).to.match(/exact resume is not possible: AdamW.*optimizerState\(\).*loadOptimizerState/);
  });

  it('early stopping stops at the expected step on a scripted metric sequence and restores the best weights', async () => {
    const script = [3.0, 2.0, 2.5, 1.9, 2.2, 2.3, 1.0]; // patience 2: best 1.9 at the 4th evaluation, stop at the 6th
    class Scripted extends Trainer {
      private i = 0;
      override async evaluate(): Promise<{ metrics: Record<string, number> }> {
        return { metrics: { loss: script[this.i++]! } };
      }
    }
    const model = await llama();
    const out = tempDir();
    const t = new Scripted({ model, train: lmBatches(5, 4), validation: lmBatches(6, 1), args: { outputDir: out, optimizer: 'sgd', learningRate: 0.3,
      lrScheduler: 'constant', epochs: 10, evalStrategy: 'steps', evalSteps: 2, saveStrategy: 'steps', saveSteps: 2, saveTotalLimit: 1,
      earlyStoppingPatience: 2, loadBestAtEnd: true, report: false } });
    const atEval = new Map<number, Map<string, Float32Array>>();
    const stops: number[] = [];
    t.on('evaluate', (e) => void atEval.set(e.step, snapshot(model)));
    t.on('earlyStop', (e) => void stops.push(e.step));
    const res = await t.train();
    expect(res.reason).to.equal('earlyStop');
    expect(res.globalStep).to.equal(12);
    expect(stops).to.deep.equal([12]);
    expect(res.bestMetric).to.equal(1.9);
    expect(path.basename(res.bestCheckpoint!)).to.equal('checkpoint-8');
    // saveTotalLimit 1 kept the best checkpoint besides the newest
    expect(fs.readdirSync(out).filter((d) => d.startsWith('checkpoint-')).sort()).to.deep.equal(['checkpoint-12', 'checkpoint-8']);
    expect(maxDiff(snapshot(model), atEval.get(8)!)).to.equal(0);
    expect(maxDiff(atEval.get(12)!, atEval.get(8)!)).to.be.above(1e-4);
  });

  it('emits typed events (EventEmitter and async iterator) with lr, tokens/s and ETA; a throwing callback is reported, not fatal', async () => {
    const t = new Trainer({ model: await llama(), train: lmBatches(9, 4), validation: lmBatches(10, 2), args: { outputDir: tempDir(), optimizer: 'sgd',
      learningRate: 0.1, lrScheduler: 'cosine', warmupSteps: 1, minLrRatio: 0.1, epochs: 2, loggingSteps: 2, saveStrategy: 'epoch', report: false } });
    const errors: string[] = [];
    t.on('step', (e) => { if (e.step === 3) throw new Error('user bug'); });
    t.on('log', async () => { throw new Error('async user bug'); });
    t.on('callbackError', (e) => void errors.push(`${e.event}: ${e.error.message}`));
    const seen: TrainerEvent[] = [];
    const iterate = (async () => { for await (const e of t) seen.push(e); })();
    const res = await t.train();
    await iterate;
    expect(res.reason).to.equal('completed');
    await new Promise((r) => setImmediate(r));
    expect(errors).to.include('step: user bug');
    expect(errors).to.include('log: async user bug');
    const types = seen.map((e) => e.type);
    expect(types.filter((x) => x === 'step')).to.have.length(8);
    expect(types.filter((x) => x === 'log')).to.have.length(4);
    expect(types.filter((x) => x === 'evaluate')).to.have.length(2);
    // Each evaluation is announced as it starts (progress shows it), and ends with its metrics.
    expect(types.filter((x) => x === 'evaluate' || x === 'evaluateStart')).to.deep.equal(['evaluateStart', 'evaluate', 'evaluateStart', 'evaluate']);
    expect(types.filter((x) => x === 'checkpoint')).to.have.length(2);
    expect(types[types.length - 1]).to.equal('end');
    const schedule = createSchedule({ type: 'cosine', warmupSteps: 1, minLrRatio: 0.1 }, 8, 0.1);
    for (const e of seen) {
      if (e.type !== 'step') continue;
      expect(e.lr).to.be.closeTo(schedule.lr(e.step - 1), 1e-12);
      expect(e.tokensPerSecond).to.be.above(0);
      expect(e.tokens).to.be.above(0);
      expect(e.etaSeconds).to.be.at.least(0);
    }
    const evals = seen.filter((e): e is Extract<TrainerEvent, { type: 'evaluate' }> => e.type === 'evaluate');
    expect(Object.keys(evals[0]!.metrics)).to.include.members(['loss', 'perplexity', 'tokenAccuracy']);
  });

  it('a non-finite loss stops with an error naming the step', async () => {
    const t = new Trainer({ model: await llama(), train: lmBatches(4, 6), args: { outputDir: tempDir(), optimizer: 'sgd', learningRate: 1e15,
      lrScheduler: 'constant', maxGradNorm: null, epochs: 5, report: false } });
    const steps: number[] = [];
    t.on('step', (e) => void steps.push(e.step));
    const iterated = rejects((async () => { for await (const ev of t) void ev; })());
    const e = await rejects(t.train());
    expect(await iterated).to.equal(e); // the async iterator ends with the same error
    expect(e.code).to.equal('ERR_STATE');
    expect(e.message).to.include(`training diverged at step ${steps.length + 1} (epoch `);
    expect(e.message).to.match(/loss is (NaN|Infinity)/);
  });

  it("onNonFinite: 'skip' drops the poisoned updates and counts them; dropout overrides reach the model", async () => {
    const model = await llama();
    const name = model.parameters()[0]!.name;
    const clean = model.getParameter(name);
    let calls = 0;
    // A model whose 2nd step sees a NaN weight (restored right after): exactly one update must be skipped.
    const overrides: Partial<typeof model> = {};
    const proxy = new Proxy(model, {
      get: (target, key) => (key in overrides ? (overrides as Record<string | symbol, unknown>)[key] : (() => {
        const v = (target as unknown as Record<string | symbol, unknown>)[key];
        return typeof v === 'function' ? (v as Function).bind(target) : v;
      })()),
    });
    overrides.trainStep = async (inputs, options) => {
      calls += 1;
      if (calls === 2) {
        const bad = Float32Array.from(clean.data() as Float32Array);
        bad[0] = Number.NaN;
        model.setParameter(name, Tensor.from(bad, { shape: clean.shape }).handle);
      }
      try {
        return await model.trainStep(inputs, options);
      } finally {
        if (calls === 2) model.setParameter(name, clean);
      }
    };
    const dropoutSeen: unknown[] = [];
    overrides.setDropout = (o) => { dropoutSeen.push(o); model.setDropout(o); };
    const checkpointingSeen: boolean[] = [];
    overrides.setGradientCheckpointing = (on) => { checkpointingSeen.push(on); model.setGradientCheckpointing(on); };
    const res = await new Trainer({ model: proxy, train: lmBatches(4, 4), args: { outputDir: tempDir(), optimizer: 'sgd', learningRate: 0.1,
      epochs: 1, report: false, onNonFinite: 'skip', dropout: { hidden: 0 }, gradientCheckpointing: true } }).train();
    expect(res.reason).to.equal('completed');
    expect(res.skippedSteps).to.equal(1);
    expect(Number.isNaN(res.losses[1]!)).to.equal(true);
    expect(res.losses.filter((l) => Number.isFinite(l))).to.have.length(3);
    for (const p of model.parameters()) expect((model.getParameter(p.name).data() as Float32Array).every(Number.isFinite), p.name).to.equal(true);
    expect(dropoutSeen).to.deep.equal([{ hidden: 0 }]);
    expect(checkpointingSeen).to.deep.equal([true]);
    const bad = await rejects((async () => new Trainer({ model, train: lmBatches(4, 2), args: { outputDir: tempDir(), dropout: { hidden: 1.5 } } }))());
    expect(bad.code).to.equal('ERR_CONFIG');
    expect(bad.message).to.include('TrainingArgs.dropout.hidden');
  });

  it('evaluation loss computed from logits equals the model\'s own loss (causal-lm and classification), metrics per split', async () => {
    const model = await llama();
    const val = lmBatches(12, 1);
    const t = new Trainer({ model, train: val, validation: val, args: { outputDir: tempDir(), report: false } });
    const { metrics } = await t.evaluate();
    const b = val[0]!;
    const [n, len] = b.shape;
    const native = await model.lossAndGradients({ inputIds: rows(b.inputIds, [n, len], len, 0), attentionMask: rows(b.attentionMask, [n, len], len, 0),
      labels: rows(b.labels!, [n, len], len, -100) }, []);
    expect(metrics.loss).to.be.closeTo(native.loss, 1e-5);
    expect(metrics.perplexity).to.be.closeTo(Math.exp(native.loss), 1e-4);

    const cls = await AutoModel.fromPretrained(fixture('mistral-cls'), { quiet: true });
    const feats = clsFeatures(2, 24);
    const out = tempDir();
    const ct = new Trainer({ model: cls, train: feats.slice(0, 16), validation: feats.slice(16, 20), test: feats.slice(20), args: { outputDir: out,
      batchSize: 4, epochs: 2, learningRate: 0.01, metricForBestModel: 'accuracy', report: false } });
    const evals: { split: string; metrics: Record<string, number>; confusion?: number[][] }[] = [];
    ct.on('evaluate', (e) => void evals.push(e));
    const res = await ct.train();
    expect(res.globalStep).to.equal(8); // 16 features / 4 per batch, 2 epochs
    expect(evals.map((e) => e.split)).to.deep.equal(['validation', 'validation', 'test']);
    const last = evals[2]!;
    expect(res.testMetrics).to.deep.equal(last.metrics);
    expect(last.confusion!.flat().reduce((x, y) => x + y, 0)).to.equal(4);
    const correct = last.confusion!.reduce((s, row, i) => s + row[i]!, 0);
    expect(last.metrics.accuracy).to.equal(correct / 4);
    // the test loss from logits equals the mean native loss over the test rows
    const testRows = feats.slice(20);
    const lossSum = await Promise.all(testRows.map((f) => cls.lossAndGradients({ inputIds: [f.inputIds], labels: [f.label!] }, [])));
    expect(last.metrics.loss).to.be.closeTo(lossSum.reduce((s, r) => s + r.loss, 0) / 4, 1e-5);
    const log = JsonlLogger.read(path.join(out, 'metrics.jsonl'));
    expect(log.filter((r) => 'eval_accuracy' in r)).to.have.length(2);
    expect(log.filter((r) => 'test_accuracy' in r)).to.have.length(1);
  });
});
