import { expect } from 'chai';
import * as fs from 'fs';
import * as path from 'path';
import { AutoModel, Model } from '../lib/models';
import { buildHeader, readSafetensorsHeader } from '../lib/models/safetensors';
import { tempDir } from './helpers';
import { expected, fixture, maxAbsDiff } from './models-helpers';

const PEFT_FIXTURES = path.join(__dirname, '..', '..', 'test', 'fixtures', 'peft');

async function logits(model: Model, name: string): Promise<Float32Array> {
  const e = expected(name);
  return (await model.forward({ inputIds: e.inputIds, attentionMask: e.attentionMask, ...(e.tokenTypeIds ? { tokenTypeIds: e.tokenTypeIds } : {}) })).logits;
}

async function train(model: Model, name: string, steps: number): Promise<void> {
  const e = expected(name);
  model.configureOptimizer({ type: 'adamw', lr: 5e-2 });
  const batch = { inputIds: e.inputIds, attentionMask: e.attentionMask, ...(e.tokenTypeIds ? { tokenTypeIds: e.tokenTypeIds } : {}), labels: e.labels };
  for (let i = 0; i < steps; i++) await model.trainStep(batch);
}

async function rejection(p: Promise<unknown>): Promise<{ code: string; message: string }> {
  try {
    await p;
  } catch (e) {
    return e as { code: string; message: string };
  }
  throw new Error('expected a rejection');
}

const LORA_KEYS = ['peft_type', 'task_type', 'r', 'lora_alpha', 'lora_dropout', 'target_modules', 'use_rslora', 'bias', 'fan_in_fan_out', 'base_model_name_or_path', 'modules_to_save', 'inference_mode', 'init_lora_weights', 'revision'];

describe('52 peft: adapter files (PEFT layout)', () => {
  it('LoRA on GPT-2: save -> load gives the same logits; keys, shapes and config fields as PEFT writes them', async () => {
    const model = await AutoModel.fromPretrained(fixture('gpt2'), { quiet: true });
    model.addLora({ r: 4, alpha: 16, dropout: 0.1, targetModules: ['c_attn'], useRslora: true, seed: 5 });
    await train(model, 'gpt2', 3);
    const tuned = await logits(model, 'gpt2');
    const dir = tempDir('nodetune-adapter-');
    await model.saveAdapter(dir);
    expect(fs.readdirSync(dir).sort()).to.deep.equal(['adapter_config.json', 'adapter_model.safetensors']);
    const cfg = JSON.parse(fs.readFileSync(path.join(dir, 'adapter_config.json'), 'utf8')) as Record<string, unknown>;
    expect(Object.keys(cfg).sort()).to.deep.equal([...LORA_KEYS].sort());
    expect(cfg).to.deep.include({
      peft_type: 'LORA', task_type: 'CAUSAL_LM', r: 4, lora_alpha: 16, lora_dropout: 0.1, target_modules: ['c_attn'], use_rslora: true,
      bias: 'none', fan_in_fan_out: true, base_model_name_or_path: fixture('gpt2'), modules_to_save: null,
    });
    const { tensors } = readSafetensorsHeader(path.join(dir, 'adapter_model.safetensors'));
    expect(tensors.map((t) => [t.name, t.shape, t.dtype])).to.deep.equal([
      ['base_model.model.transformer.h.0.attn.c_attn.lora_A.weight', [4, 16], 'F32'],
      ['base_model.model.transformer.h.0.attn.c_attn.lora_B.weight', [48, 4], 'F32'],
      ['base_model.model.transformer.h.1.attn.c_attn.lora_A.weight', [4, 16], 'F32'],
      ['base_model.model.transformer.h.1.attn.c_attn.lora_B.weight', [48, 4], 'F32'],
    ]);
    const again = await AutoModel.fromPretrained(fixture('gpt2'), { quiet: true });
    await again.loadAdapter(dir, 'mine');
    expect(again.activeAdapter).to.equal('mine');
    expect(maxAbsDiff(await logits(again, 'gpt2'), tuned)).to.equal(0);
  });

  it('a classifier: the trained head is saved as modules_to_save (base_model.model.classifier.*) and loads back', async () => {
    const model = await AutoModel.fromPretrained(fixture('bert-cls'), { quiet: true });
    model.addLora({ r: 2, alpha: 4, targetModules: ['query', 'value'], seed: 1 });
    expect(model.parameters().filter((p) => p.trainable).map((p) => p.name)).to.deep.equal(['classifier.weight', 'classifier.bias']);
    await train(model, 'bert-cls', 3);
    const tuned = await logits(model, 'bert-cls');
    const dir = tempDir('nodetune-adapter-');
    await model.saveAdapter(dir);
    const cfg = JSON.parse(fs.readFileSync(path.join(dir, 'adapter_config.json'), 'utf8')) as Record<string, unknown>;
    expect(cfg.task_type).to.equal('SEQ_CLS');
    expect(cfg.modules_to_save).to.deep.equal(['classifier']);
    const names = readSafetensorsHeader(path.join(dir, 'adapter_model.safetensors')).tensors.map((t) => t.name);
    expect(names).to.include.members(['base_model.model.classifier.weight', 'base_model.model.classifier.bias',
      'base_model.model.bert.encoder.layer.0.attention.self.query.lora_A.weight', 'base_model.model.bert.encoder.layer.1.attention.self.value.lora_B.weight']);
    expect(names.length).to.equal(2 + 2 * 2 * 2);
    const again = await AutoModel.fromPretrained(fixture('bert-cls'), { quiet: true });
    expect(maxAbsDiff(await logits(again, 'bert-cls'), tuned)).to.be.above(1e-4);
    await again.loadAdapter(dir);
    expect(maxAbsDiff(await logits(again, 'bert-cls'), tuned)).to.equal(0);
  });

  for (const [folder, base] of [['llama-lora-rslora', 'llama'], ['gpt2-lora-conv1d', 'gpt2']] as const) {
    it(`loads ${folder} (written by an independent torch script, PEFT keys) and matches its hand-applied logits`, async () => {
      const dir = path.join(PEFT_FIXTURES, folder);
      const want = JSON.parse(fs.readFileSync(path.join(dir, 'expected.json'), 'utf8')) as { inputIds: number[][]; logits: number[]; shape: number[] };
      const model = await AutoModel.fromPretrained(fixture(base), { quiet: true });
      await model.loadAdapter(dir);
      const out = await model.forward({ inputIds: want.inputIds });
      expect(out.shape).to.deep.equal(want.shape);
      expect(maxAbsDiff(out.logits, want.logits)).to.be.below(1e-4);
      model.mergeAdapter();
      expect(maxAbsDiff((await model.forward({ inputIds: want.inputIds })).logits, want.logits)).to.be.below(1e-4);
    });
  }

  it('bad adapter folders give typed errors and leave no adapter behind', async () => {
    const model = await AutoModel.fromPretrained(fixture('llama'), { quiet: true });
    const good = path.join(PEFT_FIXTURES, 'llama-lora-rslora');
    const copy = (edit: (cfg: Record<string, unknown>) => void): string => {
      const dir = tempDir('nodetune-bad-adapter-');
      fs.copyFileSync(path.join(good, 'adapter_model.safetensors'), path.join(dir, 'adapter_model.safetensors'));
      const cfg = JSON.parse(fs.readFileSync(path.join(good, 'adapter_config.json'), 'utf8')) as Record<string, unknown>;
      edit(cfg);
      fs.writeFileSync(path.join(dir, 'adapter_config.json'), JSON.stringify(cfg));
      return dir;
    };
    let e = await rejection(model.loadAdapter(copy((c) => (c.peft_type = 'IA3'))));
    expect(e.code).to.equal('ERR_CHECKPOINT');
    expect(e.message).to.match(/peft_type "IA3"/);
    e = await rejection(model.loadAdapter(copy((c) => (c.r = 8))));
    expect(e.code).to.equal('ERR_CHECKPOINT');
    expect(e.message).to.match(/lora_A.weight has shape \[4,24\], expected \[r=8, 24\]/);
    e = await rejection(model.loadAdapter(copy((c) => (c.use_dora = true))));
    expect(e.code).to.equal('ERR_CHECKPOINT');
    e = await rejection(model.loadAdapter(tempDir('nodetune-empty-')));
    expect(e.code).to.equal('ERR_IO');
    const broken = copy(() => undefined);
    fs.writeFileSync(path.join(broken, 'adapter_config.json'), '{ not json');
    expect((await rejection(model.loadAdapter(broken))).code).to.equal('ERR_CHECKPOINT');
    const truncated = copy(() => undefined);
    const bytes = fs.readFileSync(path.join(truncated, 'adapter_model.safetensors'));
    fs.writeFileSync(path.join(truncated, 'adapter_model.safetensors'), bytes.subarray(0, bytes.length - 10));
    expect((await rejection(model.loadAdapter(truncated))).code).to.equal('ERR_CHECKPOINT');
    // another base model: GPT-2's adapter on Llama
    e = await rejection(model.loadAdapter(path.join(PEFT_FIXTURES, 'gpt2-lora-conv1d')));
    expect(e.code).to.equal('ERR_CHECKPOINT');
    expect(e.message).to.match(/no linear layer transformer\.h\.0\.attn\.c_attn/);
    // same architecture, other sizes: the Llama adapter on Qwen2 (hidden 24 vs ...)
    const qwen = await AutoModel.fromPretrained(fixture('qwen2'), { quiet: true });
    e = await rejection(qwen.loadAdapter(good));
    expect(e.code).to.equal('ERR_CHECKPOINT');
    expect(model.adapterNames()).to.deep.equal([]);
    expect(qwen.adapterNames()).to.deep.equal([]);
    await model.loadAdapter(good);
    expect(model.adapterNames()).to.deep.equal(['default']);
    e = await rejection(model.loadAdapter(good));
    expect(e.code).to.equal('ERR_STATE');
  });

  it('modules_to_save weights other than the head (e.g. embeddings) load into the base model', async () => {
    const good = path.join(PEFT_FIXTURES, 'llama-lora-rslora');
    const dir = tempDir('nodetune-mts-');
    fs.copyFileSync(path.join(good, 'adapter_config.json'), path.join(dir, 'adapter_config.json'));
    const src = fs.readFileSync(path.join(good, 'adapter_model.safetensors'));
    const { tensors } = readSafetensorsHeader(path.join(good, 'adapter_model.safetensors'));
    const embed = new Float32Array(48 * 24).map((_, i) => Math.sin(i));
    const list = [...tensors.map((t) => ({ name: t.name, dtype: t.dtype, shape: t.shape })), { name: 'base_model.model.model.embed_tokens.weight', dtype: 'F32' as const, shape: [48, 24] }];
    const { header } = buildHeader(list);
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(Buffer.byteLength(header)));
    const parts = [len, Buffer.from(header), ...tensors.map((t) => src.subarray(t.offset, t.offset + t.length)), Buffer.from(embed.buffer)];
    fs.writeFileSync(path.join(dir, 'adapter_model.safetensors'), Buffer.concat(parts));
    const model = await AutoModel.fromPretrained(fixture('llama'), { quiet: true });
    await model.loadAdapter(dir);
    expect(maxAbsDiff(model.getParameter('model.embed_tokens.weight').data() as Float32Array, embed)).to.equal(0);
    // and the other way: base weights that train beside an adapter are saved with it
    model.setTrainable({ include: ['model.norm.weight'] });
    const out = tempDir('nodetune-mts-out-');
    await model.saveAdapter(out);
    const cfg = JSON.parse(fs.readFileSync(path.join(out, 'adapter_config.json'), 'utf8')) as Record<string, unknown>;
    expect(cfg.modules_to_save).to.deep.equal(['model.norm']);
    expect(readSafetensorsHeader(path.join(out, 'adapter_model.safetensors')).tensors.map((t) => t.name)).to.include('base_model.model.model.norm.weight');
  });
});
