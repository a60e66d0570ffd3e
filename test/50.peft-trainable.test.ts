import { expect } from 'chai';
import { AutoModel, Model } from '../lib/models';
import { formatSummary } from '../lib/peft';
import type { TrainablePolicy } from '../lib/peft/trainable';
import { expected, fixture } from './models-helpers';

const numel = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

function snapshot(model: Model): Map<string, Float32Array> {
  return new Map(model.parameters().map((p) => [p.name, Float32Array.from(model.getParameter(p.name).data() as Float32Array)]));
}

function same(a: Float32Array, b: Float32Array): boolean {
  return a.length === b.length && Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.byteLength), Buffer.from(b.buffer, b.byteOffset, b.byteLength)) === 0;
}

async function train(model: Model, name: string, steps = 2): Promise<void> {
  const e = expected(name);
  model.configureOptimizer({ type: 'adamw', lr: 1e-2, weightDecay: 0.1 });
  const batch = { inputIds: e.inputIds, attentionMask: e.attentionMask, ...(e.tokenTypeIds ? { tokenTypeIds: e.tokenTypeIds } : {}), labels: e.labels };
  for (let i = 0; i < steps; i++) await model.trainStep(batch);
}

/** The names a policy should leave trainable, written out independently of lib/peft. */
const CASES: { fixture: string; policy: TrainablePolicy; options?: { trainEmbeddings?: boolean }; expect: (n: string) => boolean }[] = [
  { fixture: 'gpt2', policy: 'full', expect: () => true },
  { fixture: 'gpt2', policy: 'full', options: { trainEmbeddings: false }, expect: (n) => !/\.(wte|wpe)\.weight$/.test(n) },
  { fixture: 'gpt2', policy: 'bitfit', expect: (n) => n.endsWith('.bias') },
  { fixture: 'gpt2', policy: { lastLayers: 1 }, expect: (n) => n.startsWith('transformer.h.1.') || n.startsWith('transformer.ln_f.') },
  { fixture: 'gpt2', policy: { include: ['*.attn.*'], exclude: ['*.bias'] }, expect: (n) => n.includes('.attn.') && !n.endsWith('.bias') },
  { fixture: 'llama', policy: 'head', expect: (n) => n === 'lm_head.weight' },
  { fixture: 'llama', policy: { lastLayers: 1 }, options: { trainEmbeddings: true }, expect: (n) => n.startsWith('model.layers.1.') || n === 'model.norm.weight' || n === 'lm_head.weight' || n === 'model.embed_tokens.weight' },
  { fixture: 'bert-cls', policy: 'head', expect: (n) => n.startsWith('classifier.') || n.startsWith('bert.pooler.') },
  { fixture: 'bert-cls', policy: 'bitfit', expect: (n) => n.endsWith('.bias') },
  { fixture: 'distilbert-qa', policy: { include: ['distilbert.transformer.layer.1.*'] }, expect: (n) => n.startsWith('distilbert.transformer.layer.1.') },
];

describe('50 peft: freezing policies and parameter counts', () => {
  for (const c of CASES) {
    it(`${c.fixture} ${JSON.stringify(c.policy)}${c.options ? ' ' + JSON.stringify(c.options) : ''}: frozen parameters bit-identical after training, exact counts`, async () => {
      const model = await AutoModel.fromPretrained(fixture(c.fixture), { quiet: true });
      model.setTrainable(c.policy, c.options);
      const params = model.parameters();
      const want = params.filter((p) => c.expect(p.name)).map((p) => p.name);
      expect(params.filter((p) => p.trainable).map((p) => p.name)).to.deep.equal(want);
      const s = model.parameterSummary();
      const total = params.reduce((a, p) => a + numel(p.shape), 0);
      const trainable = params.filter((p) => c.expect(p.name)).reduce((a, p) => a + numel(p.shape), 0);
      expect(s.total).to.equal(total);
      expect(s.trainable).to.equal(trainable);
      expect(s.percent).to.be.closeTo((100 * trainable) / total, 1e-9);
      const before = snapshot(model);
      await train(model, c.fixture);
      const after = snapshot(model);
      let changed = 0;
      for (const p of params) {
        const unchanged = same(before.get(p.name)!, after.get(p.name)!);
        if (!c.expect(p.name)) expect(unchanged, `${p.name} is frozen`).to.equal(true);
        else if (!unchanged) changed++;
      }
      expect(changed).to.be.above(0);
    });
  }

  it('the GPT-2 fixture counts: 7,488 parameters by hand; by module', async () => {
    const model = await AutoModel.fromPretrained(fixture('gpt2'), { quiet: true });
    // wte 40x16 + wpe 16x16 + 2 x (ln 2x32 + c_attn 16x48+48 + c_proj 16x16+16 + c_fc 16x64+64 + c_proj 64x16+16) + ln_f 32
    const s = model.parameterSummary();
    expect(s.total).to.equal(640 + 256 + 2 * (64 + 816 + 272 + 1088 + 1040) + 32);
    expect(s.trainable).to.equal(7488);
    expect(s.percent).to.equal(100);
    expect(s.byModule['transformer.h.0.attn.c_attn']).to.deep.equal({ trainable: 816, total: 816 });
    expect(formatSummary(s)).to.equal('trainable params: 7,488 || all params: 7,488 || trainable%: 100.0000');
    model.setTrainable('bitfit');
    expect(model.parameterSummary().byModule['transformer.h.0.attn.c_attn']).to.deep.equal({ trainable: 48, total: 816 });
  });

  it('a freshly initialised head always trains', async () => {
    const model = await AutoModel.fromPretrained(fixture('llama'), { quiet: true, task: 'sequence-classification', numLabels: 3 });
    expect(model.loadReport.newlyInitialized).to.deep.equal(['score.weight']);
    model.setTrainable({ include: ['model.norm.weight'] });
    expect(model.parameters().filter((p) => p.trainable).map((p) => p.name)).to.deep.equal(['model.norm.weight', 'score.weight']);
    model.setTrainable('bitfit');
    expect(model.parameters().filter((p) => p.trainable).map((p) => p.name)).to.deep.equal(['score.weight']);
  });

  it('rejects bad policies with ERR_ARGUMENT / ERR_STATE', async () => {
    const model = await AutoModel.fromPretrained(fixture('gpt2'), { quiet: true });
    const code = (f: () => void) => {
      try {
        f();
      } catch (e) {
        return (e as { code?: string }).code;
      }
      return 'none';
    };
    expect(code(() => model.setTrainable('nope' as never))).to.equal('ERR_ARGUMENT');
    expect(code(() => model.setTrainable({ lastLayers: 3 }))).to.equal('ERR_ARGUMENT');
    expect(code(() => model.setTrainable({ include: 'x' as never }))).to.equal('ERR_ARGUMENT');
    expect(code(() => model.setTrainable('head'))).to.equal('ERR_STATE'); // tied LM head: no head parameters
  });

  it('changing the policy after configureOptimizer rebuilds the optimizer over the new set', async () => {
    const model = await AutoModel.fromPretrained(fixture('llama'), { quiet: true });
    model.configureOptimizer({ type: 'adamw', lr: 1e-2 });
    model.setTrainable('head');
    const before = snapshot(model);
    const e = expected('llama');
    await model.trainStep({ inputIds: e.inputIds, labels: e.labels });
    const after = snapshot(model);
    for (const [n, v] of before) expect(same(v, after.get(n)!), n).to.equal(n !== 'lm_head.weight');
  });
});
