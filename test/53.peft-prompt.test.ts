import { expect } from 'chai';
import * as fs from 'fs';
import * as path from 'path';
import { AutoModel, Model } from '../lib/models';
import { readSafetensorsHeader } from '../lib/models/safetensors';
import { tempDir } from './helpers';
import { TIE_MARGIN, fixture, greedyLead, maxAbsDiff } from './models-helpers';

function values(model: Model, name: string, adapter?: string): Float32Array {
  return Float32Array.from(model.getParameter(name, adapter).data() as Float32Array);
}

/** Logits [B, T, V] -> the last `keep` positions of each row. */
function tail(logits: Float32Array, shape: number[], keep: number): Float32Array {
  const [b, t, v] = shape as [number, number, number];
  const out = new Float32Array(b * keep * v);
  for (let i = 0; i < b; i++) out.set(logits.subarray((i * t + t - keep) * v, (i * t + t) * v), i * keep * v);
  return out;
}

const PREFIX = [7, 3, 11];

describe('53 peft: prompt tuning', () => {
  for (const [name, embed] of [['llama', 'model.embed_tokens.weight'], ['gpt2', 'transformer.wte.weight'], ['bert-cls', 'bert.embeddings.word_embeddings.weight']] as const) {
    it(`${name}: virtual tokens initialised from ids act exactly like those tokens before the input (masks and positions adjusted)`, async () => {
      const model = await AutoModel.fromPretrained(fixture(name), { quiet: true });
      const ids = [[5, 9, 2, 17, 30], [0, 0, 4, 8, 1]];
      const mask = [[1, 1, 1, 1, 1], [0, 0, 1, 1, 1]];
      const decoder = model.task === 'causal-lm';
      const base = await model.forward({ inputIds: ids.map((r) => [...PREFIX, ...r]), attentionMask: mask.map((r) => [1, 1, 1, ...r]) });
      await model.addPromptTuning({ numVirtualTokens: 3, init: { ids: PREFIX } });
      const table = values(model, embed);
      const h = model.config.n_embd ?? model.config.hidden_size;
      const prompt = values(model, 'prompt_embeddings', 'default');
      PREFIX.forEach((id, i) => expect(maxAbsDiff(prompt.subarray(i * Number(h), (i + 1) * Number(h)), table.subarray(id * Number(h), (id + 1) * Number(h)))).to.equal(0));
      const out = await model.forward({ inputIds: ids, attentionMask: mask });
      if (decoder) {
        expect(out.shape).to.deep.equal([2, 5, base.shape[2]]);
        expect(maxAbsDiff(out.logits, tail(base.logits, base.shape, 5))).to.be.below(1e-5);
      } else {
        // BERT classifies from the first position: with the prompt that is [CLS] after the virtual tokens
        expect(out.shape).to.deep.equal(base.shape);
      }
      const plain = await model.forward({ inputIds: ids, attentionMask: mask }, { adapter: null });
      expect(maxAbsDiff(plain.logits, out.logits)).to.be.above(1e-4);
    });
  }

  it('causal LM: loss equals the base loss with labels padded by -100; generate continues as after the real prefix', async () => {
    const model = await AutoModel.fromPretrained(fixture('llama'), { quiet: true });
    const ids = [[5, 9, 2, 17, 30, 11]];
    const labels = [[5, 9, 2, 17, -100, 11]];
    const base = await model.lossAndGradients({ inputIds: [[...PREFIX, ...ids[0]!]], labels: [[-100, -100, -100, ...labels[0]!]] }, []);
    await model.addPromptTuning({ numVirtualTokens: 3, init: { ids: PREFIX } });
    const prompted = await model.lossAndGradients({ inputIds: ids, labels }, []);
    expect(Math.abs(prompted.loss - base.loss)).to.be.below(1e-5);
    const gBase = await model.generate([[...PREFIX, 5, 9]], { maxNewTokens: 6, adapter: null, eosTokenId: null });
    const gPrompt = await model.generate([[5, 9]], { maxNewTokens: 6, eosTokenId: null });
    // (virtual tokens vs the real prefix: other float paths, the same ids as no greedy step is a near-tie)
    expect(await greedyLead(model, gBase, 5, null), 'no near-tie in the fixture').to.be.above(TIE_MARGIN);
    expect(gPrompt[0]).to.deep.equal(gBase[0]!.slice(3));
  });

  it('training changes prompt_embeddings only; the file is PEFT PROMPT_TUNING and loads back to the same logits', async () => {
    const model = await AutoModel.fromPretrained(fixture('gpt2'), { quiet: true });
    await model.addPromptTuning({ numVirtualTokens: 4, init: 'vocab', seed: 3 });
    const s = model.parameterSummary();
    expect(s.trainable).to.equal(4 * 16);
    expect(s.total).to.equal(7488 + 64);
    const before = new Map(model.parameters().map((p) => [p.name, values(model, p.name)]));
    const p0 = values(model, 'prompt_embeddings', 'default');
    model.configureOptimizer({ type: 'adamw', lr: 1e-2, weightDecay: 0.1 });
    const batch = { inputIds: [[5, 9, 2, 17, 30, 11]], labels: [[5, 9, 2, 17, 30, 11]] };
    for (let i = 0; i < 3; i++) await model.trainStep(batch);
    for (const [n, v] of before) expect(maxAbsDiff(values(model, n), v), n).to.equal(0);
    expect(maxAbsDiff(values(model, 'prompt_embeddings', 'default'), p0)).to.be.above(1e-4);
    const tuned = await model.forward({ inputIds: batch.inputIds });
    const dir = tempDir('nodetune-prompt-');
    await model.saveAdapter(dir);
    const cfg = JSON.parse(fs.readFileSync(path.join(dir, 'adapter_config.json'), 'utf8')) as Record<string, unknown>;
    expect(cfg).to.deep.include({ peft_type: 'PROMPT_TUNING', task_type: 'CAUSAL_LM', num_virtual_tokens: 4, token_dim: 16, num_transformer_submodules: 1, prompt_tuning_init: 'SAMPLE_VOCAB' });
    expect(readSafetensorsHeader(path.join(dir, 'adapter_model.safetensors')).tensors.map((t) => [t.name, t.shape])).to.deep.equal([['prompt_embeddings', [4, 16]]]);
    const again = await AutoModel.fromPretrained(fixture('gpt2'), { quiet: true });
    await again.loadAdapter(dir, 'p');
    expect(maxAbsDiff((await again.forward({ inputIds: batch.inputIds })).logits, tuned.logits)).to.equal(0);
    fs.writeFileSync(path.join(dir, 'adapter_config.json'), JSON.stringify({ ...cfg, token_dim: 24 }));
    // GPT-2 has 16 positions: 4 virtual tokens leave 12
    await again.forward({ inputIds: [new Array(12).fill(1)] });
    expect(() => again.forward({ inputIds: [new Array(13).fill(1)] })).to.throw(/length 13 exceeds the model's 12 positions \(after 4 virtual tokens\)/);
    await again.forward({ inputIds: [new Array(16).fill(1)] }, { adapter: null });
    expect(() => again.generate([new Array(10).fill(1)], { maxNewTokens: 3 })).to.throw(/17 tokens exceed/);
    const other = await AutoModel.fromPretrained(fixture('gpt2'), { quiet: true });
    const err = await other.loadAdapter(dir).then(() => undefined, (e: { code: string }) => e);
    expect(err?.code).to.equal('ERR_CHECKPOINT');
  });

  it('init: random is N(0, 1); text goes through a tokenizer and repeats to numVirtualTokens; bad options are ERR_ARGUMENT', async () => {
    const model = await AutoModel.fromPretrained(fixture('llama'), { quiet: true });
    await model.addPromptTuning({ numVirtualTokens: 40, seed: 1 }, 'r');
    const r = values(model, 'prompt_embeddings', 'r');
    const mean = r.reduce((a, x) => a + x, 0) / r.length;
    const std = Math.sqrt(r.reduce((a, x) => a + (x - mean) ** 2, 0) / r.length);
    expect(std).to.be.within(0.9, 1.1);
    const tokenizer = { encode: async (text: string) => ({ ids: text === 'hi there' ? [4, 6] : [] }) };
    await model.addPromptTuning({ numVirtualTokens: 5, init: { text: 'hi there', tokenizer } }, 't');
    const t = values(model, 'prompt_embeddings', 't');
    const table = values(model, 'model.embed_tokens.weight');
    [4, 6, 4, 6, 4].forEach((id, i) => expect(maxAbsDiff(t.subarray(i * 24, (i + 1) * 24), table.subarray(id * 24, (id + 1) * 24))).to.equal(0));
    for (const bad of [{ numVirtualTokens: 0 }, { numVirtualTokens: 2, init: { ids: [999] } }, { numVirtualTokens: 2, init: { text: 'x' } }, { numVirtualTokens: 2, init: 'other' }]) {
      const e = await model.addPromptTuning(bad as never, 'bad').then(() => undefined, (x: { code: string }) => x);
      expect(e?.code, JSON.stringify(bad)).to.equal('ERR_ARGUMENT');
    }
    expect(model.adapterNames()).to.deep.equal(['r', 't']);
  });

  it('prompt-only use: no adapter, a few-shot template through the same generate path leaves every weight as it was', async () => {
    const model = await AutoModel.fromPretrained(fixture('llama'), { quiet: true });
    const before = new Map(model.parameters().map((p) => [p.name, values(model, p.name)]));
    const fewShot = [[1, 5, 6, 2, 1, 7, 8, 2, 1, 9]];
    const a = await model.generate(fewShot, { maxNewTokens: 4, eosTokenId: null });
    const b = await model.generate(fewShot, { maxNewTokens: 4, eosTokenId: null });
    expect(a).to.deep.equal(b);
    for (const [n, v] of before) expect(maxAbsDiff(values(model, n), v)).to.equal(0);
  });
});
