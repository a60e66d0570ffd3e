import { expect } from 'chai';
import { AutoModel } from '../lib/models';
import { ARCHS, expected, fixture, maxAbsDiff } from './models-helpers';

describe('20 models: logits and losses match the reference math (float32, 1e-4)', () => {
  for (const name of ARCHS) {
    it(`${name}: forward logits and loss`, async () => {
      const e = expected(name);
      const model = await AutoModel.fromPretrained(fixture(name), { quiet: true });
      expect(model.loadReport).to.deep.equal({ newlyInitialized: [], unexpected: [], mismatched: [] });
      const inputs = {
        inputIds: e.inputIds,
        attentionMask: e.attentionMask,
        ...(e.tokenTypeIds ? { tokenTypeIds: e.tokenTypeIds } : {}),
      };
      const out = await model.forward(inputs);
      expect(out.shape).to.deep.equal(e.shape);
      expect(maxAbsDiff(out.logits, e.logits)).to.be.below(1e-4);
      const { loss } = await model.lossAndGradients({ ...inputs, labels: e.labels }, []);
      expect(Math.abs(loss - e.loss)).to.be.below(1e-4);
    });
  }

  it('tasks follow config.json architectures', async () => {
    const tasks: Record<string, string> = {
      gpt2: 'causal-lm', llama: 'causal-lm', qwen2: 'causal-lm', 'mistral-cls': 'sequence-classification',
      'bert-cls': 'sequence-classification', 'roberta-tok': 'token-classification', 'distilbert-qa': 'question-answering',
    };
    for (const name of ARCHS) {
      const model = await AutoModel.fromPretrained(fixture(name), { quiet: true });
      expect(model.task, name).to.equal(tasks[name]);
      expect(model.dtype).to.equal('float32');
      expect(model.device).to.equal('cpu');
    }
  });
});
