import { expect } from 'chai';
import * as fs from 'fs';
import * as path from 'path';
import { AutoModel } from '../lib/models';
import type { Model } from '../lib/models/model';
import { rejects, tempDir, throws } from './helpers';
import { fixture, maxAbsDiff } from './models-helpers';
import { T5_FIXTURES, t5Expected } from './t5-helpers';

const T5_CONFIG = {
  model_type: 't5', vocab_size: 64, d_model: 16, d_kv: 4, d_ff: 32, num_layers: 2, num_heads: 4,
  relative_attention_num_buckets: 8, relative_attention_max_distance: 16, dropout_rate: 0, feed_forward_proj: 'relu',
};

async function params(model: Model): Promise<Map<string, Float32Array>> {
  const out = new Map<string, Float32Array>();
  for (const p of model.parameters()) out.set(p.name, Float32Array.from(model.getParameter(p.name).data() as Float32Array));
  return out;
}

function std(a: Float32Array): number {
  let s = 0;
  for (const x of a) s += x * x;
  return Math.sqrt(s / a.length);
}

describe('25 models: T5 / mT5 encoder-decoders', () => {
  for (const name of T5_FIXTURES) {
    it(`${name}: decoder logits and the loss equal the reference (1e-4), labels shifted right when no decoder inputs`, async () => {
      const e = t5Expected(name);
      const model = await AutoModel.fromPretrained(fixture(name), { quiet: true });
      expect(model.task).to.equal('seq2seq-lm');
      // t5-tiny carries encoder/decoder.embed_tokens.weight copies: accepted and ignored.
      expect(model.loadReport).to.deep.equal({ newlyInitialized: [], unexpected: [], mismatched: [] });
      const out = await model.forward({ inputIds: e.inputIds, attentionMask: e.attentionMask, decoderInputIds: e.decoderInputIds });
      expect(out.shape).to.deep.equal(e.shape);
      expect(maxAbsDiff(out.logits, e.logits)).to.be.below(1e-4);
      // Labels of their own length (shorter than inputIds for t5-tiny, longer for mt5-tiny), -100 ignored.
      expect(e.labels[0]!.length).to.not.equal(e.inputIds[0]!.length);
      expect(e.labels[1]).to.include(-100);
      const shifted = await model.lossAndGradients({ inputIds: e.inputIds, attentionMask: e.attentionMask, labels: e.labels }, []);
      expect(Math.abs(shifted.loss - e.loss)).to.be.below(1e-4);
      const explicit = await model.lossAndGradients({ inputIds: e.inputIds, attentionMask: e.attentionMask, decoderInputIds: e.decoderInputIds, labels: e.labels }, []);
      expect(Math.abs(explicit.loss - e.loss)).to.be.below(1e-4);
    });

    it(`${name}: task 'base' is the encoder (hidden states equal the reference; decoder weights unexpected)`, async () => {
      const e = t5Expected(name);
      const model = await AutoModel.fromPretrained(fixture(name), { quiet: true, task: 'base' });
      const out = await model.forward({ inputIds: e.inputIds, attentionMask: e.attentionMask });
      expect(out.shape).to.deep.equal(e.encoderShape);
      expect(maxAbsDiff(out.logits, e.encoder)).to.be.below(1e-4);
      expect(model.loadReport.unexpected.some((n) => n.startsWith('decoder.'))).to.equal(true);
      expect(model.parameters().some((p) => p.name.startsWith('decoder.'))).to.equal(false);
    });
  }

  it('weight names are transformers\' (shared, block 0 holds the relative bias, mt5: untied lm_head and gated FFN)', async () => {
    const t5 = (await AutoModel.fromPretrained(fixture('t5-tiny'), { quiet: true })).parameters().map((p) => p.name);
    expect(t5).to.include.members(['shared.weight', 'encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight',
      'decoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight', 'decoder.block.1.layer.1.EncDecAttention.k.weight',
      'encoder.block.1.layer.1.DenseReluDense.wi.weight', 'decoder.block.1.layer.2.DenseReluDense.wo.weight', 'decoder.final_layer_norm.weight']);
    expect(t5.filter((n) => n.includes('relative_attention_bias'))).to.have.length(2);
    expect(t5).to.not.include('lm_head.weight');
    const mt5 = (await AutoModel.fromPretrained(fixture('mt5-tiny'), { quiet: true })).parameters().map((p) => p.name);
    expect(mt5).to.include.members(['lm_head.weight', 'encoder.block.0.layer.1.DenseReluDense.wi_0.weight',
      'encoder.block.0.layer.1.DenseReluDense.wi_1.weight', 'decoder.block.2.layer.2.DenseReluDense.wi_1.weight']);
    expect(mt5.some((n) => n.startsWith('decoder.block.3.'))).to.equal(false);
    // umt5: a relative attention bias in every self-attention block, none in cross-attention.
    const umt5 = (await AutoModel.fromPretrained(fixture('umt5-tiny'), { quiet: true })).parameters().map((p) => p.name);
    expect(umt5.filter((n) => n.includes('relative_attention_bias'))).to.deep.equal([0, 1].map((i) => `encoder.block.${i}.layer.0.SelfAttention.relative_attention_bias.weight`)
      .concat([0, 1].map((i) => `decoder.block.${i}.layer.0.SelfAttention.relative_attention_bias.weight`)));
  });

  it('input errors: decoderInputIds required by forward(), rows must match, labels are token ids or -100', async () => {
    const e = t5Expected('t5-tiny');
    const model = await AutoModel.fromPretrained(fixture('t5-tiny'), { quiet: true });
    const base = { inputIds: e.inputIds, attentionMask: e.attentionMask };
    const missing = throws(() => model.forward(base));
    expect(missing.code).to.equal('ERR_ARGUMENT');
    expect(missing.message).to.match(/decoderInputIds/);
    expect(throws(() => model.forward({ ...base, decoderInputIds: [[0, 1]] })).code).to.equal('ERR_SHAPE');
    expect(throws(() => model.forward({ ...base, decoderInputIds: [[0, 1], [0, 2]], decoderAttentionMask: [[1], [1]] })).code).to.equal('ERR_SHAPE');
    const bad = throws(() => model.lossAndGradients({ ...base, labels: [[5, 100], [1, 2]] }, []));
    expect(bad.code).to.equal('ERR_ARGUMENT');
    expect(bad.message).to.match(/labels\[0\]\[1\] = 100/);
    const shape = throws(() => model.lossAndGradients({ ...base, decoderInputIds: [[0, 1, 2], [0, 1, 2]], labels: [[5, 6], [1, 2]] }, []));
    expect(shape.code).to.equal('ERR_SHAPE');
    const gpt2 = await AutoModel.fromPretrained(fixture('gpt2'), { quiet: true });
    expect(throws(() => gpt2.forward({ inputIds: [[1, 2]], decoderInputIds: [[0]] })).code).to.equal('ERR_ARGUMENT');
  });

  it('a decoder attention mask hides padded decoder positions from the real ones', async () => {
    const e = t5Expected('t5-tiny');
    const model = await AutoModel.fromPretrained(fixture('t5-tiny'), { quiet: true });
    const inputs = { inputIds: e.inputIds, attentionMask: e.attentionMask };
    const short = await model.forward({ ...inputs, decoderInputIds: [[0, 7, 3], [0, 66, 14]] });
    const padded = await model.forward({ ...inputs, decoderInputIds: [[0, 7, 3, 9, 9], [0, 66, 14, 9, 9]], decoderAttentionMask: [[1, 1, 1, 0, 0], [1, 1, 1, 0, 0]] });
    const v = short.shape[2]!;
    for (let b = 0; b < 2; b++)
      for (let t = 0; t < 3; t++) {
        const a = short.logits.subarray((b * 3 + t) * v, (b * 3 + t + 1) * v);
        const c = padded.logits.subarray((b * 5 + t) * v, (b * 5 + t + 1) * v);
        expect(maxAbsDiff(a, c)).to.be.below(1e-5);
      }
  });

  it('savePretrained + fromPretrained is bit-exact (shared.weight once, lm_head only when untied)', async () => {
    for (const name of T5_FIXTURES) {
      const model = await AutoModel.fromPretrained(fixture(name), { quiet: true });
      const dir = tempDir();
      await model.savePretrained(dir);
      const again = await AutoModel.fromPretrained(dir, { quiet: true });
      expect(again.loadReport).to.deep.equal({ newlyInitialized: [], unexpected: [], mismatched: [] });
      expect(again.task).to.equal('seq2seq-lm');
      const a = await params(model);
      const b = await params(again);
      expect([...b.keys()]).to.deep.equal([...a.keys()]);
      for (const [k, v] of a) expect(Buffer.compare(Buffer.from(v.buffer), Buffer.from(b.get(k)!.buffer)), k).to.equal(0);
      const config = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
      const arch: Record<string, string> = { 't5-tiny': 'T5', 'mt5-tiny': 'MT5', 'umt5-tiny': 'UMT5' };
      expect(config.architectures).to.deep.equal([`${arch[name]!}ForConditionalGeneration`]);
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('fromConfig builds t5 and mt5 with transformers-like init (factor-scaled normals per matrix)', async () => {
    const t5 = await AutoModel.fromConfig(T5_CONFIG, { seed: 3 });
    expect(t5.task).to.equal('seq2seq-lm');
    const out = await t5.forward({ inputIds: [[5, 6, 7]], decoderInputIds: [[0, 4]] });
    expect(out.shape).to.deep.equal([1, 2, 64]);
    const p = await params(t5);
    expect(std(p.get('shared.weight')!)).to.be.closeTo(1.0, 0.1);
    expect(std(p.get('encoder.block.0.layer.0.SelfAttention.q.weight')!)).to.be.closeTo((16 * 4) ** -0.5, 0.03);
    expect(std(p.get('encoder.block.0.layer.0.SelfAttention.k.weight')!)).to.be.closeTo(16 ** -0.5, 0.04);
    expect(std(p.get('encoder.block.1.layer.1.DenseReluDense.wo.weight')!)).to.be.closeTo(32 ** -0.5, 0.03);
    expect(Array.from(p.get('decoder.final_layer_norm.weight')!)).to.deep.equal(new Array(16).fill(1));
    const mt5 = await AutoModel.fromConfig({ ...T5_CONFIG, model_type: 'mt5', feed_forward_proj: 'gated-gelu', num_decoder_layers: 3 }, { seed: 3 });
    const names = mt5.parameters().map((x) => x.name);
    expect(names).to.include.members(['lm_head.weight', 'decoder.block.2.layer.2.DenseReluDense.wi_0.weight']);
    expect(std((await params(mt5)).get('lm_head.weight')!)).to.be.closeTo(1.0, 0.1);
  });

  it('config errors name the field: feed_forward_proj, seq2seq-lm on a decoder, other tasks on t5', async () => {
    for (const proj of ['gated-swishy', 'tanh', 'gated-gelu-x', 'fancy-gelu']) {
      const err = await rejects(AutoModel.fromConfig({ ...T5_CONFIG, feed_forward_proj: proj }));
      expect(err.code, proj).to.equal('ERR_CONFIG');
      expect((err as { details?: { field?: string } }).details?.field).to.equal('feed_forward_proj');
      expect(err.message).to.include(proj);
    }
    const task = await rejects(AutoModel.fromConfig(T5_CONFIG, { task: 'sequence-classification' }));
    expect(task.code).to.equal('ERR_CONFIG');
    const gpt2 = await rejects(AutoModel.fromConfig({ model_type: 'gpt2', n_layer: 1, n_embd: 8, n_head: 2, vocab_size: 10 }, { task: 'seq2seq-lm' }));
    expect(gpt2.code).to.equal('ERR_CONFIG');
  });

  it('trainStep lowers the loss on a repeated batch; gradient checkpointing gives the same gradients', async () => {
    const e = t5Expected('mt5-tiny');
    const batch = { inputIds: e.inputIds, attentionMask: e.attentionMask, labels: e.labels };
    const norms: number[] = [];
    for (const ckpt of [false, true]) {
      const model = await AutoModel.fromPretrained(fixture('mt5-tiny'), { quiet: true });
      model.setDropout({ embedding: 0, attention: 0, hidden: 0 });
      if (ckpt) model.setGradientCheckpointing(true);
      model.configureOptimizer({ type: 'adamw', lr: 3e-3 });
      const first = await model.trainStep(batch);
      norms.push(first.gradNorm);
      expect(Math.abs(first.loss - e.loss)).to.be.below(1e-4);
      let last = first.loss;
      for (let i = 0; i < 8; i++) last = (await model.trainStep(batch)).loss;
      expect(last).to.be.below(first.loss - 0.5);
    }
    expect(Math.abs(norms[0]! - norms[1]!)).to.be.below(1e-4 * norms[0]!);
  });

  it('LoRA on q,v (PEFT\'s T5 defaults) wraps every attention q and v and trains', async () => {
    const e = t5Expected('t5-tiny');
    const model = await AutoModel.fromPretrained(fixture('t5-tiny'), { quiet: true });
    model.addLora({ r: 4, alpha: 8, targetModules: ['q', 'v'], seed: 1 });
    const names = Object.keys(model.parameterSummary().byModule).filter((m) => m.endsWith('.lora_A [default]'));
    // encoder 2 blocks x 1 attention + decoder 2 blocks x 2 attentions = 6 attentions x {q, v}
    expect(names).to.have.length(12);
    expect(names).to.include('decoder.block.1.layer.1.EncDecAttention.q.lora_A [default]');
    expect(names.every((n) => /\.(q|v)\.lora_A/.test(n))).to.equal(true);
    const batch = { inputIds: e.inputIds, attentionMask: e.attentionMask, labels: e.labels };
    const before = await model.lossAndGradients(batch, []);
    expect(Math.abs(before.loss - e.loss)).to.be.below(1e-4);  // lora_B starts at zero
    const shared = Float32Array.from(model.getParameter('shared.weight').data() as Float32Array);
    model.configureOptimizer({ type: 'adamw', lr: 1e-2 });
    for (let i = 0; i < 5; i++) await model.trainStep(batch);
    const after = await model.lossAndGradients(batch, []);
    expect(after.loss).to.be.below(before.loss);
    expect(maxAbsDiff(model.getParameter('shared.weight').data() as Float32Array, shared)).to.equal(0);
  });
});
