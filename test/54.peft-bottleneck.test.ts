import { expect } from 'chai';
import * as fs from 'fs';
import * as path from 'path';
import { AutoModel, Model } from '../lib/models';
import { readSafetensorsHeader } from '../lib/models/safetensors';
import { tempDir } from './helpers';
import { expected, fixture, maxAbsDiff } from './models-helpers';

function values(model: Model, name: string, adapter?: string): Float32Array {
  return Float32Array.from(model.getParameter(name, adapter).data() as Float32Array);
}

async function logits(model: Model, name: string, adapter?: string | null): Promise<Float32Array> {
  const e = expected(name);
  const inputs = { inputIds: e.inputIds, attentionMask: e.attentionMask, ...(e.tokenTypeIds ? { tokenTypeIds: e.tokenTypeIds } : {}) };
  return (await model.forward(inputs, adapter === undefined ? {} : { adapter })).logits;
}

async function train(model: Model, name: string, steps: number): Promise<void> {
  const e = expected(name);
  model.configureOptimizer({ type: 'adamw', lr: 5e-2 });
  const batch = { inputIds: e.inputIds, attentionMask: e.attentionMask, ...(e.tokenTypeIds ? { tokenTypeIds: e.tokenTypeIds } : {}), labels: e.labels };
  for (let i = 0; i < steps; i++) await model.trainStep(batch);
}

describe('54 peft: bottleneck adapters (Houlsby)', () => {
  for (const [name, hidden, layers] of [['gpt2', 16, 2], ['llama', 24, 2], ['bert-cls', 16, 2], ['distilbert-qa', 16, 2]] as const) {
    it(`${name}: identity at step 0 (up-projection zero), exact counts, training moves only adapter (and head) weights, save -> load`, async () => {
      const model = await AutoModel.fromPretrained(fixture(name), { quiet: true });
      const base = await logits(model, name);
      const total = model.parameterSummary().total;
      model.addAdapter({ kind: 'bottleneck', reduction: 4, seed: 2 }, 'bn');
      expect(maxAbsDiff(await logits(model, name), base)).to.equal(0);
      const size = hidden / 4;
      const perSite = size * hidden + size + hidden * size + hidden;
      const s = model.parameterSummary();
      expect(s.total).to.equal(total + 2 * layers * perSite);
      const headTrainable = model.parameters().filter((p) => p.trainable).reduce((a, p) => a + p.shape.reduce((x, y) => x * y, 1), 0);
      expect(s.trainable).to.equal(2 * layers * perSite + headTrainable);
      const frozen = model.parameters().filter((p) => !p.trainable).map((p) => p.name);
      const before = new Map(frozen.map((n) => [n, values(model, n)]));
      await train(model, name, 3);
      for (const n of frozen) expect(maxAbsDiff(values(model, n), before.get(n)!), n).to.equal(0);
      const tuned = await logits(model, name);
      expect(maxAbsDiff(tuned, base)).to.be.above(1e-4);
      const dir = tempDir('nodetune-bottleneck-');
      await model.saveAdapter(dir);
      const cfg = JSON.parse(fs.readFileSync(path.join(dir, 'adapter_config.json'), 'utf8')) as Record<string, unknown>;
      expect(cfg).to.deep.include({ peft_type: 'BOTTLENECK', nodetune_format: 1, reduction: 4, bottleneck_size: size, non_linearity: 'relu', placement: 'houlsby' });
      const keys = readSafetensorsHeader(path.join(dir, 'adapter_model.safetensors')).tensors.map((t) => t.name);
      const layer0 = { gpt2: 'transformer.h.0.', llama: 'model.layers.0.', 'bert-cls': 'bert.encoder.layer.0.', 'distilbert-qa': 'distilbert.transformer.layer.0.' }[name];
      expect(keys).to.include.members([`base_model.model.${layer0}attention.adapter_down.weight`, `base_model.model.${layer0}mlp.adapter_up.bias`]);
      const again = await AutoModel.fromPretrained(fixture(name), { quiet: true });
      await again.loadAdapter(dir, 'bn');
      expect(maxAbsDiff(await logits(again, name), tuned)).to.equal(0); // a trained head travels as modules_to_save
      expect(cfg.modules_to_save).to.deep.equal(model.task === 'causal-lm' ? null : model.task === 'question-answering' ? ['qa_outputs'] : ['classifier']);
      expect(() => model.mergeAdapter('bn')).to.throw(/only LoRA adapters can be merged/);
    });
  }

  it('bad options and files', async () => {
    const model = await AutoModel.fromPretrained(fixture('gpt2'), { quiet: true });
    expect(() => model.addAdapter({ kind: 'bottleneck', reduction: 5 })).to.throw(/reduction must divide the hidden size 16/);
    expect(() => model.addAdapter({ kind: 'other' as never, reduction: 4 })).to.throw(/kind must be 'bottleneck'/);
    model.addAdapter({ kind: 'bottleneck', reduction: 2 });
    const dir = tempDir('nodetune-bottleneck-');
    await model.saveAdapter(dir);
    const llama = await AutoModel.fromPretrained(fixture('llama'), { quiet: true });
    const e = await llama.loadAdapter(dir).then(() => undefined, (x: { code: string }) => x);
    expect(e?.code).to.equal('ERR_CHECKPOINT');
  });
});
