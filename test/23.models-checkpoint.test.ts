import { expect } from 'chai';
import * as fs from 'fs';
import * as path from 'path';
import { AutoModel, Model } from '../lib/models';
import { readSafetensorsHeader } from '../lib/models/safetensors';
import { rejects, tempDir } from './helpers';
import { ARCHS, expected, fixture, loadPeakInChild } from './models-helpers';

function copyFixture(name: string): string {
  const dir = tempDir('nodetune-ckpt-');
  for (const f of fs.readdirSync(fixture(name))) fs.copyFileSync(path.join(fixture(name), f), path.join(dir, f));
  return dir;
}

function bytesOf(model: Model, name: string): Buffer {
  const d = model.getParameter(name).data();
  return Buffer.from(d.buffer, d.byteOffset, d.byteLength);
}

async function expectSameWeights(a: Model, b: Model): Promise<void> {
  const pa = a.parameters(), pb = b.parameters();
  expect(pb.map((p) => p.name)).to.deep.equal(pa.map((p) => p.name));
  for (const p of pa) expect(bytesOf(b, p.name).equals(bytesOf(a, p.name)), p.name).to.equal(true);
}

/** Rewrites a safetensors file's header JSON (the data bytes stay). */
function editHeader(file: string, edit: (h: Record<string, any>) => void): void {
  const buf = fs.readFileSync(file);
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString()) as Record<string, any>;
  edit(header);
  const json = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  fs.writeFileSync(file, Buffer.concat([len, json, buf.subarray(8 + n)]));
}

/** Removes a tensor from a safetensors file, header entry and bytes, keeping the layout contiguous. */
function dropTensor(file: string, name: string): void {
  const buf = fs.readFileSync(file);
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString()) as Record<string, any>;
  const data = buf.subarray(8 + n);
  const kept = Object.keys(header).filter((k) => k !== '__metadata__' && k !== name).sort((x, y) => header[x].data_offsets[0] - header[y].data_offsets[0]);
  const parts: Buffer[] = [];
  let offset = 0;
  for (const k of kept) {
    const [b, e] = header[k].data_offsets as [number, number];
    parts.push(data.subarray(b, e));
    header[k].data_offsets = [offset, offset + e - b];
    offset += e - b;
  }
  delete header[name];
  const json = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  fs.writeFileSync(file, Buffer.concat([len, json, ...parts]));
}

describe('23 models: savePretrained round trips and checkpoint errors', () => {
  for (const name of ARCHS) {
    it(`${name}: save → load is bit-exact`, async () => {
      const model = await AutoModel.fromPretrained(fixture(name), { quiet: true });
      const dir = tempDir('nodetune-save-');
      await model.savePretrained(dir);
      expect(fs.readdirSync(dir).sort()).to.deep.equal(['config.json', 'model.safetensors']);
      const again = await AutoModel.fromPretrained(dir, { quiet: true });
      expect(again.task).to.equal(model.task);
      expect(again.loadReport).to.deep.equal({ newlyInitialized: [], unexpected: [], mismatched: [] });
      await expectSameWeights(model, again);
      const e = expected(name);
      const inputs = { inputIds: e.inputIds, attentionMask: e.attentionMask };
      const [x, y] = [await model.forward(inputs), await again.forward(inputs)];
      expect(Buffer.from(y.logits.buffer).equals(Buffer.from(x.logits.buffer))).to.equal(true);
    });
  }

  it('fromConfig: seeded fresh weights, saved and loaded back bit-exactly', async () => {
    const config = JSON.parse(fs.readFileSync(path.join(fixture('llama'), 'config.json'), 'utf8'));
    const a = await AutoModel.fromConfig(config, { seed: 11 });
    const b = await AutoModel.fromConfig(config, { seed: 11 });
    await expectSameWeights(a, b);
    const norm = Array.from(a.getParameter('model.norm.weight').data() as Float32Array);
    expect(norm.every((x) => x === 1)).to.equal(true);
    const dir = tempDir('nodetune-save-');
    await a.savePretrained(dir);
    await expectSameWeights(a, await AutoModel.fromPretrained(dir, { quiet: true }));
  });

  it('loading memory-maps the file: peak RSS stays under 1.5x the weights', async function () {
    this.timeout(120000);
    const config = {
      model_type: 'llama', architectures: ['LlamaForCausalLM'], vocab_size: 8000, hidden_size: 512, intermediate_size: 1408,
      num_hidden_layers: 4, num_attention_heads: 8, tie_word_embeddings: false,
    };
    const dir = tempDir('nodetune-rss-');
    await (await AutoModel.fromConfig(config, { seed: 1 })).savePretrained(dir);
    const weights = fs.statSync(path.join(dir, 'model.safetensors')).size;
    const peak = loadPeakInChild(dir).peak / weights;
    expect(weights).to.be.above(50e6);
    if (process.env.NODETUNE_VERBOSE) console.log(`peak RSS while loading: ${peak.toFixed(2)}x of ${weights} bytes`);
    expect(peak, `peak ${(peak * 100).toFixed(0)}% of ${weights} bytes`).to.be.below(1.5);
  });

  it('GPT-2 keeps Conv1D [in, out] layout and stores the tied head once', async () => {
    const model = await AutoModel.fromPretrained(fixture('gpt2'), { quiet: true });
    const dir = tempDir('nodetune-save-');
    await model.savePretrained(dir);
    const { tensors } = readSafetensorsHeader(path.join(dir, 'model.safetensors'));
    const byName = new Map(tensors.map((t) => [t.name, t]));
    expect(byName.has('lm_head.weight')).to.equal(false);
    expect(byName.get('transformer.h.0.attn.c_attn.weight')!.shape).to.deep.equal([16, 48]);
    expect(byName.get('transformer.h.0.mlp.c_fc.weight')!.shape).to.deep.equal([16, 64]);
  });

  it('base models save without the prefix and load back; heads are created fresh and reported', async () => {
    const base = await AutoModel.fromPretrained(fixture('gpt2'), { task: 'base', quiet: true });
    expect(base.loadReport.unexpected).to.deep.equal([]);
    const dir = tempDir('nodetune-save-');
    await base.savePretrained(dir);
    const names = readSafetensorsHeader(path.join(dir, 'model.safetensors')).tensors.map((t) => t.name);
    expect(names).to.include('wte.weight').and.include('h.0.attn.c_attn.weight');
    const config = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
    expect(config.architectures).to.deep.equal(['GPT2Model']);
    const reloaded = await AutoModel.fromPretrained(dir, { quiet: true });
    expect(reloaded.task).to.equal('base');
    await expectSameWeights(base, reloaded);
    const hidden = await reloaded.forward({ inputIds: [[1, 2, 3]] });
    expect(hidden.shape).to.deep.equal([1, 3, 16]);

    // A classification head on the prefix-less base checkpoint.
    const cls = await AutoModel.fromPretrained(dir, { task: 'sequence-classification', numLabels: 3, quiet: true, seed: 7 });
    expect(cls.loadReport.newlyInitialized).to.deep.equal(['score.weight']);
    const out = tempDir('nodetune-save-');
    await cls.savePretrained(out);
    const saved = JSON.parse(fs.readFileSync(path.join(out, 'config.json'), 'utf8'));
    expect(saved.architectures).to.deep.equal(['GPT2ForSequenceClassification']);
    expect(Object.keys(saved.id2label)).to.have.length(3);
    expect(saved.label2id).to.deep.equal({ LABEL_0: 0, LABEL_1: 1, LABEL_2: 2 });
    const cls2 = await AutoModel.fromPretrained(out, { quiet: true });
    expect(cls2.task).to.equal('sequence-classification');
    expect(cls2.loadReport.newlyInitialized).to.deep.equal([]);
    await expectSameWeights(cls, cls2);

    const llamaCls = await AutoModel.fromPretrained(fixture('llama'), { task: 'sequence-classification', numLabels: 2, quiet: true });
    expect(llamaCls.loadReport).to.deep.equal({ newlyInitialized: ['score.weight'], unexpected: ['lm_head.weight'], mismatched: [] });
  });

  it('sharded checkpoints (model.safetensors.index.json) round-trip', async () => {
    const model = await AutoModel.fromPretrained(fixture('llama'), { quiet: true });
    const dir = tempDir('nodetune-save-');
    await model.savePretrained(dir, { maxShardSize: 8 * 1024 });
    const files = fs.readdirSync(dir);
    expect(files).to.include('model.safetensors.index.json').and.not.include('model.safetensors');
    expect(files.filter((f) => /^model-\d{5}-of-\d{5}\.safetensors$/.test(f)).length).to.be.above(1);
    expect(files.some((f) => f.includes('.tmp-'))).to.equal(false);
    await expectSameWeights(model, await AutoModel.fromPretrained(dir, { quiet: true }));
  });

  it('loads float32 weights as bfloat16/float16 and saves them in that dtype', async () => {
    const e = expected('llama');
    const f32 = await AutoModel.fromPretrained(fixture('llama'), { quiet: true });
    const ref = await f32.forward({ inputIds: e.inputIds });
    for (const dtype of ['bfloat16', 'float16'] as const) {
      const model = await AutoModel.fromPretrained(fixture('llama'), { dtype, quiet: true });
      expect(model.dtype).to.equal(dtype);
      if (dtype === 'bfloat16') {
        // (LibTorch 1.13 has no float16 matrix products on the CPU; float16 is for CUDA.)
        const out = await model.forward({ inputIds: e.inputIds });
        let worst = 0;
        for (let i = 0; i < out.logits.length; i++) worst = Math.max(worst, Math.abs(out.logits[i]! - ref.logits[i]!));
        expect(worst, dtype).to.be.below(0.15);
      }
      const dir = tempDir('nodetune-save-');
      await model.savePretrained(dir);
      const { tensors } = readSafetensorsHeader(path.join(dir, 'model.safetensors'));
      expect(new Set(tensors.map((t) => t.dtype))).to.deep.equal(new Set([dtype === 'bfloat16' ? 'BF16' : 'F16']));
      await expectSameWeights(model, await AutoModel.fromPretrained(dir, { dtype, quiet: true }));
      // A BF16/F16 file loaded as float32: every value converts exactly.
      const wide = await AutoModel.fromPretrained(dir, { quiet: true });
      const name = 'model.layers.0.mlp.up_proj.weight';
      const narrow = model.getParameter(name);
      const back = await narrow.to(null, 'float32');
      expect(Array.from(wide.getParameter(name).data() as Float32Array)).to.deep.equal(Array.from(back.data() as Float32Array));
    }
  });

  it('resolves repo ids in the Hugging Face cache (HF_HUB_CACHE, HF_HOME)', async () => {
    const cache = tempDir('nodetune-hf-');
    const snap = path.join(cache, 'hub', 'models--tiny-org--tiny-llama', 'snapshots', 'abc123');
    fs.mkdirSync(snap, { recursive: true });
    fs.mkdirSync(path.join(cache, 'hub', 'models--tiny-org--tiny-llama', 'refs'));
    fs.writeFileSync(path.join(cache, 'hub', 'models--tiny-org--tiny-llama', 'refs', 'main'), 'abc123\n');
    for (const f of ['config.json', 'model.safetensors']) fs.copyFileSync(path.join(fixture('llama'), f), path.join(snap, f));
    const saved = { HF_HUB_CACHE: process.env.HF_HUB_CACHE, HF_HOME: process.env.HF_HOME };
    try {
      delete process.env.HF_HUB_CACHE;
      process.env.HF_HOME = cache;
      expect((await AutoModel.fromPretrained('tiny-org/tiny-llama', { quiet: true })).task).to.equal('causal-lm');
      delete process.env.HF_HOME;
      process.env.HF_HUB_CACHE = path.join(cache, 'hub');
      expect((await AutoModel.fromPretrained('tiny-org/tiny-llama', { quiet: true })).task).to.equal('causal-lm');
      const err = await rejects(AutoModel.fromPretrained('tiny-org/absent', { quiet: true }));
      expect(err.code).to.equal('ERR_IO');
    } finally {
      for (const [k, v] of Object.entries(saved)) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
  });

  describe('malformed checkpoints: ERR_CHECKPOINT naming the file and tensor, never a crash', () => {
    const st = (dir: string) => path.join(dir, 'model.safetensors');

    it('header length past the end of the file', async () => {
      const dir = copyFixture('gpt2');
      const buf = fs.readFileSync(st(dir));
      buf.writeBigUInt64LE(BigInt(buf.length), 0);
      fs.writeFileSync(st(dir), buf);
      const err = await rejects(AutoModel.fromPretrained(dir, { quiet: true }));
      expect(err.code).to.equal('ERR_CHECKPOINT');
      expect(err.message).to.include(st(dir)).and.include('header length');
    });

    it('truncated file (tensor data past the end)', async () => {
      const dir = copyFixture('gpt2');
      const buf = fs.readFileSync(st(dir));
      fs.writeFileSync(st(dir), buf.subarray(0, buf.length - 100));
      const err = await rejects(AutoModel.fromPretrained(dir, { quiet: true }));
      expect(err.code).to.equal('ERR_CHECKPOINT');
      expect(err.message).to.include(st(dir)).and.include('past the end');
    });

    it('offsets out of range, or not matching dtype and shape', async () => {
      const dir = copyFixture('gpt2');
      editHeader(st(dir), (h) => (h['transformer.wpe.weight'].data_offsets = [0, 10_000_000]));
      let err = await rejects(AutoModel.fromPretrained(dir, { quiet: true }));
      expect(err.code).to.equal('ERR_CHECKPOINT');
      expect(err.message).to.include('transformer.wpe.weight');
      const dir2 = copyFixture('gpt2');
      editHeader(st(dir2), (h) => (h['transformer.wpe.weight'].shape = [16, 15]));
      err = await rejects(AutoModel.fromPretrained(dir2, { quiet: true }));
      expect(err.code).to.equal('ERR_CHECKPOINT');
      expect(err.message).to.include('transformer.wpe.weight');
    });

    /** The tensors of a header ordered by where their data begins. */
    const byOffset = (h: Record<string, any>) => Object.keys(h).filter((k) => k !== '__metadata__').sort((x, y) => h[x].data_offsets[0] - h[y].data_offsets[0]);

    it('data offsets that overlap another tensor\'s', async () => {
      const dir = copyFixture('gpt2');
      let moved = '';
      editHeader(st(dir), (h) => {
        moved = byOffset(h)[1]!;
        h[moved].data_offsets = h[moved].data_offsets.map((o: number) => o - 4);
      });
      const err = (await rejects(AutoModel.fromPretrained(dir, { quiet: true }))) as Error & { code?: string; details?: { field?: string } };
      expect(err.code).to.equal('ERR_CHECKPOINT');
      expect(err.message).to.include(st(dir)).and.include(`tensor ${moved}: `).and.include('overlap');
      expect(err.details?.field).to.equal(moved);
    });

    it('data offsets all shifted by 2 bytes (a hole after the header), a hole between tensors, bytes after the last tensor', async () => {
      const dir = copyFixture('gpt2');
      let first = '';
      editHeader(st(dir), (h) => {
        first = byOffset(h)[0]!;
        for (const k of byOffset(h)) h[k].data_offsets = h[k].data_offsets.map((o: number) => o + 2);
      });
      fs.appendFileSync(st(dir), Buffer.alloc(2));
      let err = await rejects(AutoModel.fromPretrained(dir, { quiet: true }));
      expect(err.code).to.equal('ERR_CHECKPOINT');
      expect(err.message).to.include(st(dir)).and.include(`tensor ${first}: `).and.include('hole of 2 bytes after the header');
      const dir2 = copyFixture('gpt2');
      let last = '';
      editHeader(st(dir2), (h) => {
        last = byOffset(h).at(-1)!;
        h[last].data_offsets = h[last].data_offsets.map((o: number) => o + 8);
      });
      fs.appendFileSync(st(dir2), Buffer.alloc(8));
      err = await rejects(AutoModel.fromPretrained(dir2, { quiet: true }));
      expect(err.code).to.equal('ERR_CHECKPOINT');
      expect(err.message).to.include(`tensor ${last}: `).and.include('hole of 8 bytes');
      const dir3 = copyFixture('gpt2');
      fs.appendFileSync(st(dir3), Buffer.alloc(4));
      err = await rejects(AutoModel.fromPretrained(dir3, { quiet: true }));
      expect(err.code).to.equal('ERR_CHECKPOINT');
      expect(err.message).to.include(st(dir3)).and.include('cover it exactly');
    });

    it('config.json asks for more layers than the checkpoint holds: fails before building them', async () => {
      const dir = copyFixture('llama');
      const config = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
      fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ ...config, num_hidden_layers: 10_000 }));
      const err = (await rejects(AutoModel.fromPretrained(dir, { quiet: true }))) as Error & { code?: string; details?: { field?: string } };
      expect(err.code).to.equal('ERR_CHECKPOINT');
      expect(err.details?.field).to.equal('num_hidden_layers');
      expect(err.message).to.include(path.join(dir, 'config.json')).and.include(`num_hidden_layers is 10000, but model.safetensors holds ${config.num_hidden_layers} layers`);
    });

    it('malformed header JSON', async () => {
      const dir = copyFixture('llama');
      const buf = fs.readFileSync(st(dir));
      buf.write('#', 8);
      fs.writeFileSync(st(dir), buf);
      const err = await rejects(AutoModel.fromPretrained(dir, { quiet: true }));
      expect(err.code).to.equal('ERR_CHECKPOINT');
      expect(err.message).to.include('JSON');
    });

    it('dtype or shape not matching config.json', async () => {
      const dir = copyFixture('llama');
      editHeader(st(dir), (h) => (h['model.norm.weight'].dtype = 'I32'));
      let err = await rejects(AutoModel.fromPretrained(dir, { quiet: true }));
      expect(err.code).to.equal('ERR_CHECKPOINT');
      expect(err.message).to.include('model.norm.weight').and.include('I32');
      const dir2 = copyFixture('llama');
      const config = JSON.parse(fs.readFileSync(path.join(dir2, 'config.json'), 'utf8'));
      fs.writeFileSync(path.join(dir2, 'config.json'), JSON.stringify({ ...config, intermediate_size: 41 }));
      err = await rejects(AutoModel.fromPretrained(dir2, { quiet: true }));
      expect(err.code).to.equal('ERR_CHECKPOINT');
      expect(err.message).to.match(/model\.layers\.0\.mlp\.(gate|up|down)_proj\.weight has shape/);
    });

    it('missing tensors', async () => {
      const dir = copyFixture('llama');
      dropTensor(st(dir), 'model.layers.1.mlp.up_proj.weight');
      const err = await rejects(AutoModel.fromPretrained(dir, { quiet: true }));
      expect(err.code).to.equal('ERR_CHECKPOINT');
      expect(err.message).to.include('model.layers.1.mlp.up_proj.weight').and.include('missing');
    });

    it('a shard listed in the index is missing', async () => {
      const model = await AutoModel.fromPretrained(fixture('llama'), { quiet: true });
      const dir = tempDir('nodetune-save-');
      await model.savePretrained(dir, { maxShardSize: 8 * 1024 });
      fs.rmSync(path.join(dir, 'model-00002-of-' + fs.readdirSync(dir).find((f) => f.startsWith('model-00001-of-'))!.slice(15)));
      const err = await rejects(AutoModel.fromPretrained(dir, { quiet: true }));
      expect(err.code).to.equal('ERR_CHECKPOINT');
      expect(err.message).to.include('missing');
    });

    it('.bin-only (pickle) checkpoints ask for safetensors', async () => {
      const dir = copyFixture('gpt2');
      fs.renameSync(st(dir), path.join(dir, 'pytorch_model.bin'));
      const err = await rejects(AutoModel.fromPretrained(dir, { quiet: true }));
      expect(err.code).to.equal('ERR_CHECKPOINT');
      expect(err.message).to.include('pytorch_model.bin').and.include('safetensors');
    });
  });

  describe('config.json errors: ERR_CONFIG naming the field', () => {
    const cases: [string, string, Record<string, unknown>, string][] = [
      ['llama', 'unknown model_type', { model_type: 'mamba' }, 'model_type'],
      ['llama', 'unsupported activation', { hidden_act: 'gelu_tanh_fancy' }, 'hidden_act'],
      ['llama', 'unsupported rope scaling', { rope_scaling: { rope_type: 'yarn', factor: 4 } }, 'rope_scaling.rope_type'],
      ['llama', 'kv heads not dividing heads', { num_key_value_heads: 3 }, 'num_key_value_heads'],
      ['gpt2', 'wrong type', { n_layer: '2' }, 'n_layer'],
      ['bert-cls', 'relative positions', { position_embedding_type: 'relative_key' }, 'position_embedding_type'],
      ['bert-cls', 'dropout out of range', { hidden_dropout_prob: 1.5 }, 'hidden_dropout_prob'],
      ['roberta-tok', 'causal encoder', { is_decoder: true }, 'is_decoder'],
      ['qwen2', 'qwen2 sliding window', { use_sliding_window: true }, 'use_sliding_window'],
      ['distilbert-qa', 'distilbert sizes', { n_heads: 3 }, 'n_heads'],
      ['llama', 'rope_theta 0 (NaN logits otherwise)', { rope_theta: 0 }, 'rope_theta'],
      ['llama', 'negative rope_theta', { rope_theta: -10000 }, 'rope_theta'],
      ['llama', 'rms_norm_eps 0', { rms_norm_eps: 0 }, 'rms_norm_eps'],
      ['gpt2', 'negative layer_norm_epsilon', { layer_norm_epsilon: -1e-5 }, 'layer_norm_epsilon'],
      ['bert-cls', 'layer_norm_eps 0', { layer_norm_eps: 0 }, 'layer_norm_eps'],
      ['llama', 'a billion layers (fails at once, nothing built)', { num_hidden_layers: 1_000_000_000 }, 'num_hidden_layers'],
      ['gpt2', 'an absurd hidden size', { n_embd: 2 ** 40 }, 'n_embd'],
      ['gpt2', 'a non-positive size', { n_positions: 0 }, 'n_positions'],
    ];
    for (const [name, what, override, field] of cases) {
      it(what, async () => {
        const dir = copyFixture(name);
        const config = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
        fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ ...config, ...override }));
        const err = (await rejects(AutoModel.fromPretrained(dir, { quiet: true }))) as Error & { code?: string; details?: { field?: string } };
        expect(err.code).to.equal('ERR_CONFIG');
        expect(err.details?.field).to.equal(field);
        expect(err.message).to.include(field);
      });
    }

    it('an encoder cannot be loaded as causal-lm', async () => {
      const err = await rejects(AutoModel.fromPretrained(fixture('bert-cls'), { task: 'causal-lm', quiet: true }));
      expect(err.code).to.equal('ERR_CONFIG');
    });
  });
});
