import { expect } from 'chai';
import * as fs from 'fs';
import * as path from 'path';
import { AutoModel, Model, TrainBatch } from '../lib/models';
import { native } from '../lib/native';
import { tempDir } from './helpers';
import { expected, fixture, maxAbsDiff } from './models-helpers';

/** A copy of a fixture with config.json fields overridden. */
function variant(name: string, overrides: Record<string, unknown>): string {
  const dir = tempDir('nodetune-model-');
  fs.copyFileSync(path.join(fixture(name), 'model.safetensors'), path.join(dir, 'model.safetensors'));
  const config = JSON.parse(fs.readFileSync(path.join(fixture(name), 'config.json'), 'utf8')) as Record<string, unknown>;
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ ...config, ...overrides }));
  return dir;
}

function values(model: Model, name: string): Float32Array {
  return Float32Array.from(model.getParameter(name).data() as Float32Array);
}

/** Checks `name`'s gradient g at the given flat indices against central differences of the loss (step 1e-2), then
 * puts the parameter back. */
async function expectFiniteDifferences(model: Model, name: string, batch: TrainBatch, g: Float32Array, indices: number[]): Promise<void> {
  const Tensor = native().Tensor;
  const base = values(model, name);
  const shape = model.getParameter(name).shape;
  const h = 1e-2;
  for (const i of indices) {
    const at = async (delta: number) => {
      const p = Float32Array.from(base);
      p[i] = p[i]! + delta;
      model.setParameter(name, new Tensor(p, shape));
      return (await model.lossAndGradients(batch, [])).loss;
    };
    const numeric = ((await at(h)) - (await at(-h))) / (2 * h);
    expect(Math.abs(numeric - g[i]!), `${name}[${i}]`).to.be.below(2e-3 + 2e-2 * Math.abs(g[i]!));
  }
  model.setParameter(name, new Tensor(base, shape));
}

describe('22 models: trainStep, AdamW, clipping, gradients', () => {
  it('trainStep reduces the loss on a fixed batch (causal-lm and classification)', async () => {
    for (const name of ['llama', 'mistral-cls']) {
      const e = expected(name);
      const model = await AutoModel.fromPretrained(fixture(name), { quiet: true });
      model.configureOptimizer({ type: 'adamw', lr: 1e-2, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0.01 });
      const batch = { inputIds: e.inputIds, attentionMask: e.attentionMask, labels: e.labels };
      const first = (await model.trainStep(batch, { maxGradNorm: 1.0 })).loss;
      expect(Math.abs(first - e.loss)).to.be.below(1e-4);
      let last = first;
      for (let i = 0; i < 15; i++) last = (await model.trainStep(batch, { maxGradNorm: 1.0 })).loss;
      expect(last, name).to.be.below(first * 0.7);
    }
  });

  it('one AdamW step on a one-layer model equals the hand-computed update', async () => {
    const dir = variant('gpt2', { n_layer: 1, resid_pdrop: 0, embd_pdrop: 0, attn_pdrop: 0 });
    const model = await AutoModel.fromPretrained(dir, { quiet: true });
    expect(model.loadReport.unexpected.length).to.be.above(0); // layer 1's weights
    const e = expected('gpt2');
    const batch = { inputIds: e.inputIds, labels: e.labels };
    const names = model.parameters().map((p) => p.name);
    const { grads } = await model.lossAndGradients(batch, names);
    const before = names.map((n) => values(model, n));
    const [lr, b1, b2, eps, wd] = [0.01, 0.9, 0.95, 1e-6, 0.1];
    model.configureOptimizer({ type: 'adamw', lr: 0.5, betas: [b1, b2], eps, weightDecay: wd });
    await model.trainStep(batch, { lr }); // the per-step lr replaces the configured one
    let worst = 0;
    names.forEach((n, k) => {
      const g = grads[k]!.data() as Float32Array;
      const p0 = before[k]!;
      const p1 = values(model, n);
      const decay = model.parameters()[k]!.shape.length >= 2 ? wd : 0;
      for (let i = 0; i < p0.length; i++) {
        const m = (1 - b1) * g[i]!, v = (1 - b2) * g[i]! * g[i]!;
        const update = (lr * (m / (1 - b1))) / (Math.sqrt(v) / Math.sqrt(1 - b2) + eps);
        const want = p0[i]! * (1 - lr * decay) - update;
        worst = Math.max(worst, Math.abs(p1[i]! - want));
      }
    });
    expect(worst).to.be.below(2e-6);
  });

  it('AdamW over several steps keeps its moments and bias corrections (the fused float32 update)', async () => {
    const model = await AutoModel.fromPretrained(fixture('llama'), { quiet: true });
    const e = expected('llama');
    const batch = { inputIds: e.inputIds, attentionMask: e.attentionMask, labels: e.labels };
    const names = model.parameters().map((p) => p.name);
    const [lr, b1, b2, eps, wd] = [0.02, 0.8, 0.9, 1e-5, 0.05];
    model.configureOptimizer({ type: 'adamw', lr, betas: [b1, b2], eps, weightDecay: wd });
    const m = names.map((n) => new Float64Array(values(model, n).length));
    const v = names.map((n) => new Float64Array(values(model, n).length));
    for (let step = 1; step <= 3; step++) {
      const { grads } = await model.lossAndGradients(batch, names);
      const before = names.map((n) => values(model, n));
      await model.trainStep(batch);
      let worst = 0;
      names.forEach((n, k) => {
        const g = grads[k]!.data() as Float32Array;
        const decay = model.parameters()[k]!.shape.length >= 2 ? wd : 0;
        const p1 = values(model, n);
        for (let i = 0; i < g.length; i++) {
          m[k]![i] = b1 * m[k]![i]! + (1 - b1) * g[i]!;
          v[k]![i] = b2 * v[k]![i]! + (1 - b2) * g[i]! * g[i]!;
          const update = ((lr / (1 - b1 ** step)) * m[k]![i]!) / (Math.sqrt(v[k]![i]!) / Math.sqrt(1 - b2 ** step) + eps);
          worst = Math.max(worst, Math.abs(p1[i]! - (before[k]![i]! * (1 - lr * decay) - update)));
        }
      });
      expect(worst, `step ${step}`).to.be.below(2e-5);
    }
  });

  it('causal-lm loss with gradients (the fused head + loss) equals the loss from the logits; all labels -100 give NaN', async () => {
    for (const name of ['gpt2', 'llama']) {
      const model = await AutoModel.fromPretrained(fixture(name), { quiet: true });
      const e = expected(name);
      const withGrads = (await model.lossAndGradients({ inputIds: e.inputIds, attentionMask: e.attentionMask, labels: e.labels }, [])).loss;
      expect(Math.abs(withGrads - e.loss), name).to.be.below(1e-4);
      const ignored = e.inputIds.map((row) => row.map(() => -100));
      expect((await model.lossAndGradients({ inputIds: e.inputIds, attentionMask: e.attentionMask, labels: ignored }, [])).loss, name).to.be.NaN;
    }
  });

  it('maxGradNorm clips the global gradient norm (SGD step of norm lr * maxGradNorm)', async () => {
    const model = await AutoModel.fromPretrained(fixture('llama'), { quiet: true });
    const e = expected('llama');
    const names = model.parameters().map((p) => p.name);
    const before = names.map((n) => values(model, n));
    model.configureOptimizer({ type: 'sgd', lr: 1 });
    await model.trainStep({ inputIds: e.inputIds, labels: e.labels }, { maxGradNorm: 1e-3 });
    let sq = 0;
    names.forEach((n, k) => {
      const p1 = values(model, n);
      for (let i = 0; i < p1.length; i++) sq += (p1[i]! - before[k]![i]!) ** 2;
    });
    expect(Math.sqrt(sq)).to.be.closeTo(1e-3, 1e-5);
  });

  it('gradients agree with finite differences', async () => {
    const model = await AutoModel.fromPretrained(fixture('llama'), { quiet: true });
    const e = expected('llama');
    const batch = { inputIds: e.inputIds, labels: e.labels };
    const names = ['model.layers.0.mlp.up_proj.weight', 'model.layers.1.self_attn.q_proj.weight', 'model.norm.weight', 'lm_head.weight'];
    const { grads } = await model.lossAndGradients(batch, names);
    for (const [k, name] of names.entries()) await expectFiniteDifferences(model, name, batch, grads[k]!.data() as Float32Array, [0, 5, 17]);
  });

  it('a word embedding\'s gradient (sparse from the lookup: repeated ids summed, a tied head\'s added) agrees with finite differences, and trains', async () => {
    // gpt2: the embedding is also the LM head (its dense gradient takes the lookup's rows); mistral-cls: the lookup
    // alone (the gradient stays sparse until it is read, and is read dense). Ids repeat within and across rows.
    const cases: [string, string, number[] | null][] = [['gpt2', 'transformer.wte.weight', null], ['mistral-cls', 'model.embed_tokens.weight', [2, 0]]];
    for (const [name, table, labels] of cases) {
      const model = await AutoModel.fromPretrained(fixture(name), { quiet: true });
      const ids = [[5, 9, 5, 5, 2, 9, 7], [9, 9, 4, 5, 2, 2, 6]];
      const batch = { inputIds: ids, labels: labels ?? ids };
      const { grads } = await model.lossAndGradients(batch, [table]);
      const g = grads[0]!.data() as Float32Array;
      const [rows, width] = model.getParameter(table).shape as [number, number];
      expect(g.length, name).to.equal(rows * width);
      const base = values(model, table);
      // row 5 (four times), row 9 (four), row 6 (once), row 11 (not looked up: the head's part alone, or zero)
      const unused = 11 * width + 7;
      await expectFiniteDifferences(model, table, batch, g, [5 * width + 3, 9 * width, 6 * width + width - 1, unused]);
      if (labels) expect(g[unused], `${name}: a row no id looked up`).to.equal(0);
      // full fine-tuning reads the gradient as a dense one (clipping, AdamW), over a window of two micro-batches too
      model.configureOptimizer({ type: 'adamw', lr: 1e-2 });
      const first = await model.trainStep(batch, { maxGradNorm: 1.0 });
      const window = ids.map((r, k) => ({ inputIds: [r], labels: labels ? [labels[k]!] : [r] }));
      const second = await model.trainStep(window, { maxGradNorm: 1.0 });
      expect(first.gradNorm, name).to.be.above(0);
      expect(second.loss, name).to.be.below(first.loss);
      expect(maxAbsDiff(values(model, table), base), `${name}: the table moved`).to.be.above(1e-4);
    }
  });

  it('a regression head (numLabels 1) takes float targets and uses mean squared error', async () => {
    const model = await AutoModel.fromPretrained(fixture('bert-cls'), { numLabels: 1, quiet: true, seed: 3 });
    expect(model.loadReport.mismatched).to.deep.equal(['classifier.weight', 'classifier.bias']);
    expect(model.loadReport.newlyInitialized).to.deep.equal(['classifier.weight', 'classifier.bias']);
    const ids = [[2, 3, 4], [5, 6, 7]];
    const f = await model.forward({ inputIds: ids });
    expect(f.shape).to.deep.equal([2, 1]);
    const { loss } = await model.lossAndGradients({ inputIds: ids, labels: [0.5, -1.25] }, []);
    expect(loss).to.be.closeTo(((f.logits[0]! - 0.5) ** 2 + (f.logits[1]! + 1.25) ** 2) / 2, 1e-5);
  });

  it('validates optimizer options and labels', async () => {
    const model = await AutoModel.fromPretrained(fixture('bert-cls'), { quiet: true });
    const e = expected('bert-cls');
    expect(() => model.trainStep({ inputIds: e.inputIds, labels: [0, 1] })).to.throw().with.property('code', 'ERR_STATE');
    expect(() => model.configureOptimizer({ type: 'adam' as 'adamw', lr: 1 })).to.throw().with.property('code', 'ERR_ARGUMENT');
    expect(() => model.configureOptimizer({ type: 'adamw', lr: 1, betas: [0.9, 1.5] })).to.throw().with.property('code', 'ERR_ARGUMENT');
    model.configureOptimizer({ type: 'adamw', lr: 1e-3 });
    expect(() => model.trainStep({ inputIds: e.inputIds, labels: [0] })).to.throw().with.property('code', 'ERR_SHAPE');
    expect(() => model.trainStep({ inputIds: e.inputIds, labels: [0, 7] })).to.throw().with.property('code', 'ERR_ARGUMENT');
    expect(() => model.trainStep({ inputIds: e.inputIds, attentionMask: [[1]], labels: [0, 1] })).to.throw().with.property('code', 'ERR_SHAPE');
    const { loss } = await model.trainStep({ inputIds: e.inputIds, attentionMask: e.attentionMask, tokenTypeIds: e.tokenTypeIds!, labels: [1, 2] });
    expect(loss).to.be.a('number');
  });
});
