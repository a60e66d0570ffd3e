import { expect } from 'chai';
import * as fs from 'fs';
import * as path from 'path';
import { AutoModel, Model } from '../lib/models';
import { MODEL_TYPES, RawConfig } from '../lib/models/config';
import { native } from '../lib/native';
import { LAYER_STACKS, planLayers } from '../lib/models/structure';
import { repoRoot, rejects, tempDir, throws } from './helpers';
import { ARCHS, expected, fixture, maxAbsDiff } from './models-helpers';

const KEEP1 = JSON.parse(fs.readFileSync(path.join(repoRoot, 'test', 'fixtures', 'structure', 'keep-1.json'), 'utf8')) as
  Record<string, { shape: number[]; logits: number[] }>;

function values(model: Model, name: string): Float32Array {
  return model.getParameter(name).data() as Float32Array;
}

function bytesOf(model: Model, name: string): Buffer {
  const d = model.getParameter(name).data();
  return Buffer.from(d.buffer, d.byteOffset, d.byteLength);
}

function expectSameWeights(a: Model, b: Model): void {
  const pa = a.parameters(), pb = b.parameters();
  expect(pb.map((p) => [p.name, p.shape])).to.deep.equal(pa.map((p) => [p.name, p.shape]));
  for (const p of pa) expect(bytesOf(b, p.name).equals(bytesOf(a, p.name)), p.name).to.equal(true);
}

function stats(x: Float32Array): { mean: number; std: number } {
  let s = 0;
  for (const v of x) s += v;
  const mean = s / x.length;
  let q = 0;
  for (const v of x) q += (v - mean) ** 2;
  return { mean, std: Math.sqrt(q / x.length) };
}

function row(model: Model, name: string, i: number): Float32Array {
  const p = model.getParameter(name);
  const w = p.shape[1]!;
  return (p.data() as Float32Array).slice(i * w, (i + 1) * w);
}

function copyFixture(name: string, edit?: (c: RawConfig) => void): string {
  const dir = tempDir('nodetune-structure-');
  for (const f of fs.readdirSync(fixture(name))) fs.copyFileSync(path.join(fixture(name), f), path.join(dir, f));
  if (edit) {
    const c = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8')) as RawConfig;
    edit(c);
    fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(c));
  }
  return dir;
}

async function logits(model: Model, name: string): Promise<Float32Array> {
  const e = expected(name);
  const out = await model.forward({ inputIds: e.inputIds, attentionMask: e.attentionMask, ...(e.tokenTypeIds ? { tokenTypeIds: e.tokenTypeIds } : {}) });
  return out.logits;
}

const RANGE = 0.05;
const CONFIGS: Record<string, RawConfig> = {
  gpt2: { model_type: 'gpt2', vocab_size: 300, n_embd: 96, n_layer: 3, n_head: 4, n_positions: 64, n_inner: 200, initializer_range: RANGE, pad_token_id: 5 },
  llama: { model_type: 'llama', vocab_size: 300, hidden_size: 96, intermediate_size: 200, num_hidden_layers: 3, num_attention_heads: 6,
    num_key_value_heads: 2, initializer_range: RANGE, pad_token_id: 7 },
  bert: { model_type: 'bert', vocab_size: 300, hidden_size: 96, intermediate_size: 200, num_hidden_layers: 3, num_attention_heads: 3,
    max_position_embeddings: 64, initializer_range: RANGE },
  roberta: { model_type: 'roberta', vocab_size: 300, hidden_size: 96, intermediate_size: 200, num_hidden_layers: 1, num_attention_heads: 2,
    max_position_embeddings: 66, initializer_range: RANGE, pad_token_id: 1 },
  distilbert: { model_type: 'distilbert', vocab_size: 300, dim: 96, hidden_dim: 200, n_layers: 5, n_heads: 12, max_position_embeddings: 64,
    initializer_range: RANGE, pad_token_id: 3 },
};

describe('28 models: models from a config (transformers initialisation)', function () {
  this.timeout(60000);

  for (const [type, config] of Object.entries(CONFIGS)) {
    it(`${type}: normal(0, initializer_range) matrices, zero biases, unit norms, padding row zeroed`, async () => {
      const m = await AutoModel.fromConfig(config, { seed: 11 });
      let checked = 0;
      for (const p of m.parameters()) {
        const x = values(m, p.name);
        const short = p.name.split('.').slice(-2).join('.');
        if (/(LayerNorm|layer_norm|ln_\d|ln_f|norm)\.weight$|layernorm\.weight$/.test(p.name)) {
          expect(x.every((v) => v === 1), `${p.name} ones`).to.equal(true);
        } else if (p.name.endsWith('.bias')) {
          expect(x.every((v) => v === 0), `${p.name} zeros`).to.equal(true);
        } else if (x.length >= 4000) {
          const want = type === 'gpt2' && short === 'c_proj.weight' ? RANGE / Math.sqrt(2 * 3) : RANGE;
          const s = stats(x);
          expect(Math.abs(s.std - want) / want, `${p.name} std ${s.std}`).to.be.below(0.06);
          expect(Math.abs(s.mean), `${p.name} mean`).to.be.below((5 * want) / Math.sqrt(x.length));
          checked++;
        }
      }
      expect(checked).to.be.above(3);
      const pad = type === 'bert' ? 0 : (config.pad_token_id as number);  // BertConfig's default pad_token_id is 0
      const emb = type === 'gpt2' ? 'transformer.wte.weight' : type === 'llama' ? 'model.embed_tokens.weight' : `${type}.embeddings.word_embeddings.weight`;
      // GPT-2's wte has no padding_idx: its pad row stays random.
      expect(row(m, emb, pad).every((v) => v === 0), `${emb}[${pad}]`).to.equal(type !== 'gpt2');
      expect(row(m, emb, pad + 1).some((v) => v !== 0)).to.equal(true);
      if (type === 'roberta') expect(row(m, 'roberta.embeddings.position_embeddings.weight', 1).every((v) => v === 0)).to.equal(true);
      if (type === 'bert') expect(row(m, 'bert.embeddings.position_embeddings.weight', 0).some((v) => v !== 0)).to.equal(true);
    });
  }

  it('llama without pad_token_id keeps every embedding row random; pad_token_id null on BERT: no padding row', async () => {
    const { pad_token_id: _, ...llama } = CONFIGS.llama!;
    const m = await AutoModel.fromConfig(llama, { seed: 1 });
    for (const i of [0, 7]) expect(row(m, 'model.embed_tokens.weight', i).some((v) => v !== 0)).to.equal(true);
    const b = await AutoModel.fromConfig({ ...CONFIGS.bert!, pad_token_id: null }, { seed: 1 });
    expect(row(b, 'bert.embeddings.word_embeddings.weight', 0).some((v) => v !== 0)).to.equal(true);
  });

  it('heads: normal weights, zero biases (sequence-classification, token-classification, question-answering)', async () => {
    const cls = await AutoModel.fromConfig(CONFIGS.bert!, { task: 'sequence-classification', numLabels: 50, seed: 2 });
    expect(stats(values(cls, 'classifier.weight')).std).to.be.closeTo(RANGE, RANGE * 0.1);
    expect(values(cls, 'classifier.bias').every((v) => v === 0)).to.equal(true);
    const score = await AutoModel.fromConfig(CONFIGS.llama!, { task: 'sequence-classification', numLabels: 60, seed: 2 });
    expect(stats(values(score, 'score.weight')).std).to.be.closeTo(RANGE, RANGE * 0.1);
    const qa = await AutoModel.fromConfig(CONFIGS.distilbert!, { task: 'question-answering', seed: 2 });
    expect(values(qa, 'qa_outputs.bias').every((v) => v === 0)).to.equal(true);
  });

  it('the same seed gives bit-identical weights, another seed different ones', async () => {
    for (const config of [CONFIGS.gpt2!, CONFIGS.distilbert!]) {
      const a = await AutoModel.fromConfig(config, { seed: 5 });
      const b = await AutoModel.fromConfig(config, { seed: 5 });
      const c = await AutoModel.fromConfig(config, { seed: 6 });
      expectSameWeights(a, b);
      const name = a.parameters()[0]!.name;
      expect(bytesOf(a, name).equals(bytesOf(c, name))).to.equal(false);
    }
  });

  for (const type of ['gpt2', 'llama', 'bert', 'distilbert']) {
    it(`${type}: a model from a config saves and reloads bit-exactly`, async () => {
      const m = await AutoModel.fromConfig(CONFIGS[type]!, { seed: 3 });
      const dir = tempDir('nodetune-fromconfig-');
      await m.savePretrained(dir);
      const back = await AutoModel.fromPretrained(dir, { quiet: true });
      expect(back.loadReport.newlyInitialized).to.deep.equal([]);
      expectSameWeights(m, back);
    });
  }

  it('any sizes: one layer, odd widths, many heads', async () => {
    const m = await AutoModel.fromConfig({ model_type: 'llama', vocab_size: 11, hidden_size: 30, intermediate_size: 7, num_hidden_layers: 1,
      num_attention_heads: 15, num_key_value_heads: 5 }, { seed: 0 });
    expect(m.parameters().find((p) => p.name === 'model.layers.0.mlp.down_proj.weight')!.shape).to.deep.equal([30, 7]);
    const out = await m.forward({ inputIds: [[1, 2, 3]] });
    expect(out.shape).to.deep.equal([1, 3, 11]);
  });

  it('invalid combinations are ERR_CONFIG naming the field', async () => {
    const cases: [RawConfig, string][] = [
      [{ ...CONFIGS.gpt2!, n_head: 5 }, 'n_head'],
      [{ ...CONFIGS.llama!, num_key_value_heads: 4 }, 'num_key_value_heads'],
      [{ ...CONFIGS.llama!, hidden_size: 100 }, 'num_attention_heads'],
      [{ ...CONFIGS.bert!, num_attention_heads: 5 }, 'num_attention_heads'],
      [{ ...CONFIGS.distilbert!, n_heads: 7 }, 'n_heads'],
      [{ ...CONFIGS.distilbert!, sinusoidal_pos_embds: true }, 'sinusoidal_pos_embds'],
      [{ ...CONFIGS.llama!, pad_token_id: 300 }, 'pad_token_id'],
      [{ ...CONFIGS.bert!, num_hidden_layers: 0 }, 'num_hidden_layers'],
      [{ ...CONFIGS.gpt2!, n_layer: 2.5 }, 'n_layer'],
    ];
    for (const [config, field] of cases) {
      const e = await rejects(AutoModel.fromConfig(config));
      expect(e.code, field).to.equal('ERR_CONFIG');
      expect((e as { details?: { field?: string } }).details?.field).to.equal(field);
    }
  });
});

describe('28 models: dropLayers / keepLayers', function () {
  this.timeout(60000);

  for (const name of ARCHS) {
    it(`${name}: keeping every layer changes nothing`, async () => {
      const a = await AutoModel.fromPretrained(fixture(name), { quiet: true });
      const before = await logits(a, name);
      await a.dropLayers({ keepLayers: [0, 1] });
      expect(Buffer.from((await logits(a, name)).buffer).equals(Buffer.from(before.buffer))).to.equal(true);
    });
  }

  for (const name of Object.keys(KEEP1)) {
    it(`${name}: dropping layer 0 equals the reference run of layer 1 alone; the checkpoint reloads the same`, async () => {
      const m = await AutoModel.fromPretrained(fixture(name), { quiet: true });
      const names = m.parameters().map((p) => p.name);
      await m.dropLayers([0]);
      const want = KEEP1[name]!;
      expect(maxAbsDiff(await logits(m, name), want.logits)).to.be.below(1e-4);
      const count = { gpt2: 'n_layer', llama: 'num_hidden_layers', 'distilbert-qa': 'n_layers' }[name] ?? 'num_hidden_layers';
      expect(m.config[count]).to.equal(1);
      // Parameter names: the old ones of layer 1 renamed to layer 0, nothing of layer 1 left.
      const now = m.parameters().map((p) => p.name);
      expect(now.some((n) => /\.1\./.test(n) && /(h|layers|layer)\.1\./.test(n))).to.equal(false);
      expect(now.length).to.be.below(names.length);
      const dir = tempDir('nodetune-drop-');
      await m.savePretrained(dir);
      const saved = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8')) as RawConfig;
      expect(saved[count]).to.equal(1);
      const back = await AutoModel.fromPretrained(dir, { quiet: true });
      expect(back.loadReport.unexpected).to.deep.equal([]);
      expectSameWeights(m, back);
      // fromPretrained's keepLayers loads the same model straight from the checkpoint.
      const direct = await AutoModel.fromPretrained(fixture(name), { quiet: true, keepLayers: [1] });
      expect(direct.loadReport.unexpected).to.deep.equal([]);
      expectSameWeights(m, direct);
    });
  }

  it('decoders: dropping the last layer equals the full model with that block silenced (by hand)', async () => {
    for (const [name, silence] of [['gpt2', ['attn.c_proj.weight', 'attn.c_proj.bias', 'mlp.c_proj.weight', 'mlp.c_proj.bias']],
      ['llama', ['self_attn.o_proj.weight', 'mlp.down_proj.weight']]] as const) {
      const layer = name === 'gpt2' ? 'transformer.h.1.' : 'model.layers.1.';
      const full = await AutoModel.fromPretrained(fixture(name), { quiet: true });
      for (const s of silence) {
        const p = full.getParameter(layer + s);
        full.setParameter(layer + s, new (native().Tensor)(new Float32Array(p.data().length), p.shape));
      }
      const cut = await AutoModel.fromPretrained(fixture(name), { quiet: true });
      await cut.dropLayers({ keepLayers: [0] });
      expect(maxAbsDiff(await logits(cut, name), await logits(full, name)), name).to.be.below(1e-5);
    }
  });

  it('gpt2 scale_attn_by_inverse_layer_idx: kept layers use their new index', async () => {
    const dir = copyFixture('gpt2', (c) => { c.scale_attn_by_inverse_layer_idx = true; });
    const m = await AutoModel.fromPretrained(dir, { quiet: true });
    await m.dropLayers([0]);
    // The old layer 1 now scales its attention by 1/1 instead of 1/2: the flag-free reference of layer 1 alone applies.
    expect(maxAbsDiff(await logits(m, 'gpt2'), KEEP1.gpt2!.logits)).to.be.below(1e-4);
  });

  it('per-layer config lists (llama layer_types) follow the kept layers', async () => {
    const dir = copyFixture('llama', (c) => { c.layer_types = ['full_attention', 'sliding_attention']; });
    const m = await AutoModel.fromPretrained(dir, { quiet: true });
    await m.dropLayers([0]);
    expect(m.config.layer_types).to.deep.equal(['sliding_attention']);
    expect(m.config.num_hidden_layers).to.equal(1);
  });

  it('trainability and the loss scaler carry over; a configured optimizer is reset', async () => {
    const m = await AutoModel.fromPretrained(fixture('bert-cls'), { quiet: true });
    m.setTrainable('head');
    m.configureOptimizer({ type: 'adamw', lr: 1e-3 });
    m.setLossScalerState({ scale: 512, growthInterval: 7 });
    await m.dropLayers([1]);
    expect(m.lossScalerState()).to.deep.include({ scale: 512, growthInterval: 7 });
    const trainable = m.parameters().filter((p) => p.trainable).map((p) => p.name);
    expect(trainable.sort()).to.deep.equal(['bert.pooler.dense.bias', 'bert.pooler.dense.weight', 'classifier.bias', 'classifier.weight']);
    const e = expected('bert-cls');
    const batch = { inputIds: e.inputIds, attentionMask: e.attentionMask, labels: e.labels as number[] };
    expect(() => m.trainStep(batch)).to.throw(/configureOptimizer/);
    m.configureOptimizer({ type: 'adamw', lr: 1e-3 });
    const r = await m.trainStep(batch);
    expect(Number.isFinite(r.loss)).to.equal(true);
  });

  it('errors: empty result, out-of-range or duplicate indices, adapters attached (typed, naming the field)', async () => {
    const m = await AutoModel.fromPretrained(fixture('gpt2'), { quiet: true });
    const cases: [number[] | { keepLayers: number[] }, string][] = [
      [[0, 1], 'indices'], [{ keepLayers: [] }, 'keepLayers'], [[2], 'indices'], [[-1], 'indices'], [[0.5], 'indices'],
      [{ keepLayers: [1, 1] }, 'keepLayers'], [[1, 1], 'indices'],
    ];
    for (const [spec, field] of cases) {
      const e = await rejects(m.dropLayers(spec));
      expect(e.code, JSON.stringify(spec)).to.equal('ERR_ARGUMENT');
      expect((e as { details?: { field?: string } }).details?.field).to.equal(field);
    }
    expect((await rejects(m.dropLayers({ keepLayers: [0], stack: 'decoder' }))).code).to.equal('ERR_ARGUMENT');
    m.addLora({ r: 2, alpha: 4, targetModules: ['c_attn'] });
    const e = await rejects(m.dropLayers([0]));
    expect(e.code).to.equal('ERR_STATE');
    expect(e.message).to.match(/adapters attached \(default\)/);
    m.deleteAdapter('default');
    await m.dropLayers([0]);
    expect(m.config.n_layer).to.equal(1);
    const k = await rejects(AutoModel.fromPretrained(fixture('llama'), { keepLayers: [3] }));
    expect(k.code).to.equal('ERR_ARGUMENT');
  });

  it('t5: dropping block 0 of each stack moves its relative attention bias to the new block 0', async function () {
    if (!MODEL_TYPES.t5 || !fs.existsSync(path.join(fixture('t5-tiny'), 'config.json'))) return this.skip();  // T5 not in this build
    const m = await AutoModel.fromPretrained(fixture('t5-tiny'), { quiet: true });
    const bias = (s: string) => `${s}.block.0.layer.0.SelfAttention.relative_attention_bias.weight`;
    const before = [bytesOf(m, bias('encoder')), bytesOf(m, bias('decoder'))];
    const q1 = bytesOf(m, 'encoder.block.1.layer.0.SelfAttention.q.weight');
    await m.dropLayers({ keepLayers: [1], stack: 'encoder' });
    expect(m.config.num_layers).to.equal(1);
    await m.dropLayers({ keepLayers: [1], stack: 'decoder' });
    expect(m.config.num_decoder_layers).to.equal(1);
    expect(bytesOf(m, bias('encoder')).equals(before[0]!)).to.equal(true);
    expect(bytesOf(m, bias('decoder')).equals(before[1]!)).to.equal(true);
    expect(bytesOf(m, 'encoder.block.0.layer.0.SelfAttention.q.weight').equals(q1)).to.equal(true);
    expect(m.parameters().some((p) => p.name.includes('.block.1.'))).to.equal(false);
    const dir = tempDir('nodetune-drop-t5-');
    await m.savePretrained(dir);
    const back = await AutoModel.fromPretrained(dir, { quiet: true });
    expectSameWeights(m, back);
  });

  it('umt5: every block keeps its own relative attention bias when block 0 is dropped', async () => {
    const m = await AutoModel.fromPretrained(fixture('umt5-tiny'), { quiet: true });
    const bias = (i: number) => `encoder.block.${i}.layer.0.SelfAttention.relative_attention_bias.weight`;
    const own = bytesOf(m, bias(1));
    expect(own.equals(bytesOf(m, bias(0)))).to.equal(false);
    await m.dropLayers({ keepLayers: [1], stack: 'encoder' });
    expect(m.config.num_layers).to.equal(1);
    expect(bytesOf(m, bias(0)).equals(own)).to.equal(true);
    const dir = tempDir('nodetune-drop-umt5-');
    await m.savePretrained(dir);
    expectSameWeights(m, await AutoModel.fromPretrained(dir, { quiet: true }));
  });

  it('the stack table renames a T5-like two-stack model, moving layer 0\'s shared bias to the new layer 0', () => {
    LAYER_STACKS['test-t5'] = [
      { stack: 'encoder', path: 'encoder.block.', underBase: false, countKey: 'num_layers', perLayerKeys: [], firstLayerOnly: /^layer\.0\.SelfAttention\.relative_attention_bias\./ },
      { stack: 'decoder', path: 'decoder.block.', underBase: false, countKey: 'num_decoder_layers', fallbackKey: 'num_layers', perLayerKeys: [], firstLayerOnly: /^layer\.0\.SelfAttention\.relative_attention_bias\./ },
    ];
    try {
      const raw = { model_type: 't5', num_layers: 3 };
      expect(throws(() => planLayers(raw, 'test-t5', 'transformer', [0], 'dropLayers()')).message).to.match(/stacks encoder, decoder/);
      const plan = planLayers(raw, 'test-t5', 'transformer', { keepLayers: [1, 2], stack: 'encoder' }, 'dropLayers()');
      expect(plan.raw).to.deep.include({ num_layers: 2, num_decoder_layers: 3 });
      const bias = 'layer.0.SelfAttention.relative_attention_bias.weight';
      expect(plan.rename(`encoder.block.0.${bias}`)).to.equal(`encoder.block.0.${bias}`);
      expect(plan.rename('encoder.block.0.layer.0.SelfAttention.q.weight')).to.equal(null);
      expect(plan.rename('encoder.block.2.layer.1.DenseReluDense.wi.weight')).to.equal('encoder.block.1.layer.1.DenseReluDense.wi.weight');
      expect(plan.rename('decoder.block.0.layer.0.SelfAttention.q.weight')).to.equal('decoder.block.0.layer.0.SelfAttention.q.weight');
      expect(plan.rename('shared.weight')).to.equal('shared.weight');
    } finally {
      delete LAYER_STACKS['test-t5'];
    }
  });
});
