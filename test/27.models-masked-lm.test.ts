import { expect } from 'chai';
import * as fs from 'fs';
import * as path from 'path';
import { AutoModel } from '../lib/models';
import { rejects, tempDir, throws } from './helpers';
import type { NodetuneError } from '../lib/errors';
import { expected, fixture, maxAbsDiff } from './models-helpers';

const MLM = ['bert-mlm', 'roberta-mlm', 'distilbert-mlm'];
const HEADS: Record<string, string[]> = {
  'bert-mlm': ['cls.predictions.transform.dense.weight', 'cls.predictions.transform.dense.bias', 'cls.predictions.transform.LayerNorm.weight',
    'cls.predictions.transform.LayerNorm.bias', 'cls.predictions.bias'],
  'roberta-mlm': ['lm_head.dense.weight', 'lm_head.dense.bias', 'lm_head.layer_norm.weight', 'lm_head.layer_norm.bias', 'lm_head.bias'],
  'distilbert-mlm': ['vocab_transform.weight', 'vocab_transform.bias', 'vocab_layer_norm.weight', 'vocab_layer_norm.bias', 'vocab_projector.bias'],
};

function inputsOf(name: string) {
  const e = expected(name);
  return { inputIds: e.inputIds, attentionMask: e.attentionMask, ...(e.tokenTypeIds ? { tokenTypeIds: e.tokenTypeIds } : {}) };
}

function config(name: string): Record<string, unknown> {
  return JSON.parse(fs.readFileSync(path.join(fixture(name), 'config.json'), 'utf8')) as Record<string, unknown>;
}

describe('27 models: masked-lm heads (BERT, RoBERTa, DistilBERT)', () => {
  for (const name of MLM) {
    it(`${name}: logits and loss equal the reference (1e-4); the tied decoder copies load as ignored`, async () => {
      const e = expected(name);
      const model = await AutoModel.fromPretrained(fixture(name), { quiet: true });
      expect(model.task).to.equal('masked-lm');
      // the checkpoint holds the decoder copies (cls.predictions.decoder.*, lm_head.decoder.*, vocab_projector.weight):
      // accepted and ignored, so nothing is unexpected or newly initialised
      expect(model.loadReport).to.deep.equal({ newlyInitialized: [], unexpected: [], mismatched: [] });
      const names = model.parameters().map((p) => p.name);
      for (const h of HEADS[name]!) expect(names).to.include(h);
      expect(names.some((n) => /decoder|vocab_projector\.weight|pooler/.test(n))).to.equal(false);
      const out = await model.forward(inputsOf(name));
      expect(out.shape).to.deep.equal(e.shape);
      expect(maxAbsDiff(out.logits, e.logits)).to.be.below(1e-4);
      const { loss } = await model.lossAndGradients({ ...inputsOf(name), labels: e.labels }, []);
      expect(Math.abs(loss - e.loss)).to.be.below(1e-4);
    });
  }

  it('savePretrained → fromPretrained gives the same logits; config.json says *ForMaskedLM; no decoder copy is written', async () => {
    for (const name of MLM) {
      const a = await AutoModel.fromPretrained(fixture(name), { quiet: true });
      const dir = tempDir('nodetune-mlm-');
      await a.savePretrained(dir);
      const saved = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8')) as { architectures: string[] };
      expect(saved.architectures[0]).to.match(/ForMaskedLM$/);
      const b = await AutoModel.fromPretrained(dir, { quiet: true });
      expect(b.task).to.equal('masked-lm');
      expect(b.loadReport.newlyInitialized).to.deep.equal([]);
      const x = await a.forward(inputsOf(name));
      const y = await b.forward(inputsOf(name));
      expect(maxAbsDiff(x.logits, y.logits)).to.equal(0);
    }
  });

  it('a base checkpoint loaded as masked-lm gets a fresh head; fromConfig builds one; a bad label shape is ERR_SHAPE', async () => {
    const base = await AutoModel.fromPretrained(fixture('bert-cls'), { task: 'masked-lm', quiet: true, seed: 3 });
    expect(base.loadReport.newlyInitialized.sort()).to.deep.equal([...HEADS['bert-mlm']!].sort());
    expect(base.loadReport.unexpected.sort()).to.deep.equal(['bert.pooler.dense.bias', 'bert.pooler.dense.weight', 'classifier.bias', 'classifier.weight']);
    const fresh = await AutoModel.fromConfig(config('bert-mlm'), { seed: 1 });
    expect(fresh.task).to.equal('masked-lm');
    const ln = fresh.getParameter('cls.predictions.transform.LayerNorm.weight').data() as Float32Array;
    expect(Array.from(ln).every((v) => v === 1)).to.equal(true);
    expect(throws(() => fresh.lossAndGradients({ inputIds: [[1, 2, 3]], labels: [[1, 2]] }, [])).code).to.equal('ERR_SHAPE');
  });

  it('configs: masked-lm on a decoder and an untied encoder are ERR_CONFIG naming the field', async () => {
    const gpt2 = config('gpt2');
    let err = await rejects(AutoModel.fromConfig(gpt2, { task: 'masked-lm' }));
    expect(err.code).to.equal('ERR_CONFIG');
    expect((err as NodetuneError).details.field).to.equal('model_type');
    err = await rejects(AutoModel.fromConfig({ ...config('bert-mlm'), tie_word_embeddings: false }));
    expect((err as NodetuneError).details.field).to.equal('tie_word_embeddings');
  });

  it('trainStep lowers the masked-LM loss on a fixed batch', async () => {
    for (const name of MLM) {
      const e = expected(name);
      const model = await AutoModel.fromPretrained(fixture(name), { quiet: true });
      model.setDropout({ embedding: 0, attention: 0, hidden: 0, classifier: 0 });
      model.configureOptimizer({ type: 'adamw', lr: 1e-2, weightDecay: 0 });
      const batch = { ...inputsOf(name), labels: e.labels };
      const first = (await model.trainStep(batch, { maxGradNorm: 1 })).loss;
      expect(Math.abs(first - e.loss)).to.be.below(1e-4);
      let last = first;
      for (let i = 0; i < 10; i++) last = (await model.trainStep(batch, { maxGradNorm: 1 })).loss;
      expect(last, name).to.be.below(first * 0.7);
    }
  });

  it("setTrainable('head') trains the MLM head (the tied decoder is the embedding, not a head weight); LoRA freezes the pretrained head", async () => {
    const model = await AutoModel.fromPretrained(fixture('bert-mlm'), { quiet: true });
    model.setTrainable('head');
    const trainable = model.parameters().filter((p) => p.trainable).map((p) => p.name).sort();
    expect(trainable).to.deep.equal([...HEADS['bert-mlm']!].sort());
    const lora = await AutoModel.fromPretrained(fixture('bert-mlm'), { quiet: true });
    lora.addLora({ r: 2, alpha: 4, targetModules: ['query', 'value'] });
    expect(lora.parameters().filter((p) => p.trainable)).to.deep.equal([]);
    const s = lora.parameterSummary();
    expect(s.trainable).to.equal(2 * 2 * (2 * 16 + 2 * 16)); // 2 layers x (query, value) x (A + B)
    lora.configureOptimizer({ type: 'adamw', lr: 1e-2 });
    const e = expected('bert-mlm');
    const before = Float32Array.from(lora.getParameter('cls.predictions.bias').data() as Float32Array);
    await lora.trainStep({ ...inputsOf('bert-mlm'), labels: e.labels });
    expect(maxAbsDiff(lora.getParameter('cls.predictions.bias').data() as Float32Array, before)).to.equal(0);
  });
});
