import { expect } from 'chai';
import * as fs from 'fs';
import * as path from 'path';
import { AutoModel, Model } from '../lib/models';
import { AutoTokenizer } from '../lib/tokenizers';
import { loadConfig } from '../lib/cli/config/load';
import { NodetuneError } from '../lib/errors';
import { rejects, sharedAssets, tempDir, throws } from './helpers';
import { TINY_LLAMA, expected, fixture, maxAbsDiff, stories260K } from './models-helpers';
import { checkpointFloats, exactInt8Kernels, int8Violation, nf4Violation, transpose, withInt8Kernel } from './quant-helpers';

function values(model: Model, name: string, adapter?: string): Float32Array {
  return Float32Array.from(model.getParameter(name, adapter).data() as Float32Array);
}

async function logits(model: Model, ids: number[][], adapter?: string | null): Promise<Float32Array> {
  return (await model.forward({ inputIds: ids }, adapter === undefined ? {} : { adapter })).logits;
}

/** Every quantized parameter's dequantized values against the checkpoint's, within the format's bound. */
function checkBounds(model: Model, dir: string, format: 'int8' | 'nf4'): number {
  const original = checkpointFloats(dir);
  const prefix = `${model.config.model_type === 'gpt2' ? 'transformer' : 'model'}.`;
  let checked = 0;
  for (const p of model.parameters().filter((q) => q.quantized)) {
    expect(p.quantized).to.equal(format);
    const src = original.get(p.name) ?? original.get(p.name.slice(prefix.length)) ?? original.get(p.name.replace(/^[a-z]+\./, ''));
    expect(src, p.name).to.not.equal(undefined);
    let w = src!.values, deq = values(model, p.name);
    let [rows, cols] = p.shape as [number, number];
    if (model.config.model_type === 'gpt2') {  // Conv1D [in, out]: the quantized rows are its columns
      w = transpose(w, rows, cols), deq = transpose(deq, rows, cols);
      [rows, cols] = [cols, rows];
    }
    const violation = format === 'int8' ? int8Violation(w, deq, rows, cols) : nf4Violation(w, deq);
    expect(violation, `${p.name}: error / bound`).to.be.at.most(1);
    expect(maxAbsDiff(w, deq), `${p.name} is quantized, not copied`).to.be.above(0);
    checked++;
  }
  return checked;
}

describe('55 quantized base: int8 / NF4 frozen weights under adapters', () => {
  const dir = stories260K();

  for (const format of ['int8', 'nf4'] as const) {
    it(`${format}: stories260K's linear weights dequantize within the format's bound; embeddings and norms stay as loaded; logits stay close`, async function () {
      if (!dir) return this.skip();
      const model = await AutoModel.fromPretrained(dir, { quantize: format, dtype: 'float32' });
      expect(model.quantized).to.equal(format);
      expect(checkBounds(model, dir, format)).to.equal(5 * 7);
      const original = checkpointFloats(dir);
      expect(maxAbsDiff(values(model, 'model.embed_tokens.weight'), original.get('model.embed_tokens.weight')!.values)).to.equal(0);
      expect(model.parameters().find((p) => p.name === 'model.norm.weight')!.quantized).to.equal(undefined);
      // On the model's own story (greedy from BOS): relative RMS error of the logits (measured 0.008 int8, 0.11 NF4 on
      // this 64-wide model) and agreement of the top token (41 / 41, 38 / 41).
      const full = await AutoModel.fromPretrained(dir, { dtype: 'float32' });
      const [story] = await full.generate([[1]], { maxNewTokens: 40 });
      const a = await logits(model, [story!]), b = await logits(full, [story!]);
      let num = 0, den = 0, agree = 0;
      for (let i = 0; i < a.length; i++) num += (a[i]! - b[i]!) ** 2, den += b[i]! ** 2;
      const argmax = (x: Float32Array, t: number) => { const row = x.slice(t * 512, (t + 1) * 512); return row.indexOf(Math.max(...row)); };
      for (let t = 0; t < story!.length; t++) if (argmax(a, t) === argmax(b, t)) agree++;
      expect(Math.sqrt(num / den)).to.be.below(format === 'int8' ? 0.02 : 0.2);
      expect(agree / story!.length).to.be.at.least(format === 'int8' ? 0.95 : 0.8);
      // Bytes per linear weight: int8 1 (+ a float scale per row), NF4 0.5 (+ 1 byte per block of 64, and fixed tables
      // of 1 KB per weight that matter only on a model this small).
      const linear = model.parameters().filter((p) => p.quantized).reduce((s, p) => s + p.shape[0]! * p.shape[1]!, 0);
      expect(model.quantizedBytes() / linear).to.be.within(format === 'int8' ? 1 : 0.5, format === 'int8' ? 1.1 : 0.75);
    });
  }

  for (const [name, format] of [['gpt2', 'nf4'], ['llama', 'int8'], ['bert-cls', 'nf4'], ['distilbert-qa', 'int8'], ['qwen2', 'nf4']] as const) {
    it(`${name} fixture, ${format}: the bound holds for every quantized weight (GPT-2's Conv1D transposed); the head is not quantized`, async () => {
      const model = await AutoModel.fromPretrained(fixture(name), { quantize: format, dtype: 'float32', quiet: true });
      expect(checkBounds(model, fixture(name), format)).to.be.above(3);
      const heads = model.parameters().filter((p) => /^(lm_head|score|classifier|qa_outputs)\b/.test(p.name));
      for (const h of heads) expect(h.quantized, h.name).to.equal(undefined);
      const e = expected(name);
      const out = await model.forward({ inputIds: e.inputIds, attentionMask: e.attentionMask, ...(e.tokenTypeIds ? { tokenTypeIds: e.tokenTypeIds } : {}) });
      expect(out.logits.every(Number.isFinite)).to.equal(true);
    });
  }

  it('the default compute dtype is bfloat16; computeDtype names it; decoding (one row) and prefill (many rows) agree', async function () {
    if (!dir) return this.skip();
    const model = await AutoModel.fromPretrained(dir, { quantize: 'int8' });
    expect(model.dtype).to.equal('bfloat16');
    expect(model.parameters().find((p) => p.name === 'model.embed_tokens.weight')!.dtype).to.equal('bfloat16');
    const f32 = await AutoModel.fromPretrained(dir, { quantize: 'nf4', computeDtype: 'float32' });
    expect(f32.dtype).to.equal('float32');
    // generate() decodes token by token (the direct int8/NF4 kernels); its greedy tokens match argmax over a full forward.
    // int8 with an exact kernel: q8 (the default where the CPU has it) rounds each decoding step's input (test 58).
    for (const m of [f32, await AutoModel.fromPretrained(dir, { quantize: 'int8', computeDtype: 'float32' })]) {
      const [row] = await withInt8Kernel(exactInt8Kernels()[0]!, () => m.generate([[1]], { maxNewTokens: 12 }));
      const out = await m.forward({ inputIds: [row!.slice(0, -1)] });
      const v = out.shape[2]!;
      for (let t = 0; t + 1 < row!.length; t++) {
        const slice = out.logits.slice(t * v, (t + 1) * v);
        const sorted = [...slice].sort((x, y) => y - x);
        if (sorted[0]! - sorted[1]! < 1e-3) continue;  // a near tie may go either way
        expect(row![t + 1], `token ${t + 1}`).to.equal(slice.indexOf(sorted[0]!));
      }
    }
  });

  it('int8 exact decoding kernels: 1 to 4 rows, widths off multiples of 8 and 32, equal the dequantize-then-matmul product', async () => {
    // hidden 42 (32 + 8 + 2) and intermediate 101 (3 x 32 + 5): every loop of the kernel, and its scalar tail.
    const config = { ...TINY_LLAMA, hidden_size: 42, num_attention_heads: 3, num_key_value_heads: 3, intermediate_size: 101, vocab_size: 67 };
    const model = await AutoModel.fromConfig(config, { quantize: 'int8', computeDtype: 'float32', seed: 5 });
    const ids = [3, 14, 15, 9, 26, 5, 35, 8];
    // 8 rows: each quantized weight dequantized, then a matrix product. Up to 4 rows: the int8 bytes read directly.
    const full = await logits(model, [ids]);
    const scale = Math.max(...full.map(Math.abs));
    expect(scale).to.be.above(0);
    for (const kernel of exactInt8Kernels())
      for (let t = 1; t <= 4; t++) {
        const part = await withInt8Kernel(kernel, () => logits(model, [ids.slice(0, t)]));
        expect(maxAbsDiff(part, full.slice(0, t * 67)) / scale, `${kernel}, ${t} rows`).to.be.below(1e-5);
      }
  });

  it('LoRA trains on an NF4 base (loss falls, the quantized weights do not move); the adapter saves and loads onto a fresh quantized model with the same logits', async function () {
    if (!dir) return this.skip();
    const model = await AutoModel.fromPretrained(dir, { quantize: 'nf4', dtype: 'float32' });
    model.addLora({ r: 4, alpha: 8, targetModules: ['q_proj', 'v_proj', 'down_proj'], seed: 3 });
    const before = values(model, 'model.layers.0.self_attn.q_proj.weight');
    model.configureOptimizer({ type: 'adamw', lr: 2e-2 });
    const ids = [[1, 403, 407, 261, 378, 291, 260, 263, 266, 352, 400, 12, 50, 99, 403, 407]];
    const losses: number[] = [];
    for (let i = 0; i < 12; i++) losses.push((await model.trainStep({ inputIds: ids, labels: ids })).loss);
    expect(losses[11]!).to.be.below(losses[0]! * 0.9);
    expect(maxAbsDiff(values(model, 'model.layers.0.self_attn.q_proj.weight'), before)).to.equal(0);
    const out = tempDir();
    await model.saveAdapter(path.join(out, 'adapter'));
    const fresh = await AutoModel.fromPretrained(dir, { quantize: 'nf4', dtype: 'float32' });
    await fresh.loadAdapter(path.join(out, 'adapter'));
    expect(maxAbsDiff(await logits(fresh, ids), await logits(model, ids))).to.be.below(1e-5);
    // Gradient checkpointing recomputes the quantized products: the same step.
    const again = await AutoModel.fromPretrained(dir, { quantize: 'nf4', dtype: 'float32' });
    again.addLora({ r: 4, alpha: 8, targetModules: ['q_proj', 'v_proj', 'down_proj'], seed: 3 });
    again.setGradientCheckpointing(true);
    again.configureOptimizer({ type: 'adamw', lr: 2e-2 });
    expect((await again.trainStep({ inputIds: ids, labels: ids })).loss).to.be.closeTo(losses[0]!, 1e-5);
  });

  it('LoRA continued training on Tiny Shakespeare: the NF4 base reaches a validation loss within 2% of the bfloat16 base after the same steps', async function () {
    const text = sharedAssets() && path.join(sharedAssets()!, 'datasets', 'tinyshakespeare', 'input.txt');
    if (!dir || !text || !fs.existsSync(text)) return this.skip();
    const tok = await AutoTokenizer.fromPretrained(dir);
    const ids = (await tok.encode(fs.readFileSync(text, 'utf8').slice(0, 60000), { addSpecialTokens: false })).ids;
    const cut = Math.floor(ids.length * 0.9), T = 64, B = 8;
    const window = (from: number, to: number, k: number) => { const o = from + ((k * 7919) % (to - from - T)); return ids.slice(o, o + T); };
    const validation = Array.from({ length: 16 }, (_, k) => window(cut, ids.length, k));
    const run = async (quantize?: 'nf4') => {
      const model = await AutoModel.fromPretrained(dir, { dtype: 'bfloat16', ...(quantize ? { quantize } : {}) });
      model.addLora({ r: 16, alpha: 32, targetModules: 'all-linear', seed: 7 });
      model.configureOptimizer({ type: 'adamw', lr: 3e-3 });
      for (let s = 0; s < 60; s++) {
        const batch = Array.from({ length: B }, (_, b) => window(0, cut, s * B + b));
        await model.trainStep({ inputIds: batch, labels: batch });
      }
      let sum = 0;
      for (const v of validation) sum += (await model.lossAndGradients({ inputIds: [v], labels: [v] }, [])).loss;
      return sum / validation.length;
    };
    // Measured: bf16 2.908, NF4 2.906 (the untrained model: 4.61 / 4.62).
    const [bf16, nf4] = [await run(), await run('nf4')];
    expect(bf16).to.be.below(3.5);
    expect(Math.abs(nf4 - bf16) / bf16, `NF4 ${nf4} vs bf16 ${bf16}`).to.be.at.most(0.02);
  });

  it('merge on a quantized base dequantizes, merges and writes a bfloat16 checkpoint that loads with the merged logits', async function () {
    if (!dir) return this.skip();
    const model = await AutoModel.fromPretrained(dir, { quantize: 'int8' });
    model.addLora({ r: 4, alpha: 8, targetModules: ['q_proj', 'o_proj', 'up_proj'], seed: 5 });
    model.configureOptimizer({ type: 'adamw', lr: 2e-2 });
    const ids = [[1, 403, 407, 261, 378, 291, 260, 263]];
    for (let i = 0; i < 3; i++) await model.trainStep({ inputIds: ids, labels: ids });
    const tuned = await logits(model, ids);
    const warnings: string[] = [];
    const onWarning = (w: Error & { code?: string }) => { if (w.code === 'NODETUNE_DEQUANTIZED') warnings.push(w.message); };
    process.on('warning', onWarning);
    model.mergeAdapter();
    await new Promise((r) => setImmediate(r));
    process.off('warning', onWarning);
    expect(warnings.join()).to.match(/dequantized to bfloat16/);
    expect(model.parameters().find((p) => p.name === 'model.layers.0.self_attn.q_proj.weight')!.quantized).to.equal(undefined);
    expect(model.parameters().find((p) => p.name === 'model.layers.0.self_attn.k_proj.weight')!.quantized).to.equal('int8');
    const out = path.join(tempDir(), 'merged');
    await model.savePretrained(out);
    const saved = JSON.parse(fs.readFileSync(path.join(out, 'config.json'), 'utf8')) as { torch_dtype: string };
    expect(saved.torch_dtype).to.equal('bfloat16');
    const merged = await AutoModel.fromPretrained(out, { dtype: 'bfloat16' });
    expect(merged.quantized).to.equal(null);
    const scale = Math.max(...tuned.map(Math.abs));
    expect(maxAbsDiff(await logits(merged, ids), tuned) / scale).to.be.below(0.02);
  });

  it('bad input: an unknown quantize value, computeDtype against dtype, full fine-tuning of a quantized weight, T5', async function () {
    const llama = fixture('llama');
    for (const q of ['int4', 'fp4', 8, true]) {
      const e = await rejects(AutoModel.fromPretrained(llama, { quantize: q as unknown as 'nf4' }));
      expect(e).to.be.instanceOf(NodetuneError);
      expect(e.code).to.equal('ERR_ARGUMENT');
      expect(e.message).to.match(/quantize must be 'int8' or 'nf4'/);
    }
    const d = await rejects(AutoModel.fromPretrained(llama, { quantize: 'nf4', dtype: 'float32', computeDtype: 'bfloat16' }));
    expect(d.code).to.equal('ERR_ARGUMENT');
    expect(d.message).to.match(/computeDtype/);
    const model = await AutoModel.fromPretrained(llama, { quantize: 'nf4', quiet: true });
    const full = throws(() => model.setTrainable('full'));
    expect(full.code).to.equal('ERR_STATE');
    expect(full.message).to.match(/model\.layers\.\d+\.\S+_proj\.weight is quantized \(nf4\)/);
    const t5 = await rejects(AutoModel.fromPretrained(fixture('t5-tiny'), { quantize: 'int8', quiet: true }));
    expect(t5.code).to.equal('ERR_CONFIG');
    expect(t5.message).to.match(/quantize supports .* not t5/);
  });

  it('CLI config: model: { path, quantize } sets the base\'s quantization; an unknown value names model.quantize', () => {
    const write = (model: string) => {
      const file = path.join(tempDir(), 'run.yaml');
      fs.writeFileSync(file, `model: ${model}\ntask: causal-lm\ndata:\n  train: train.txt\n  blockSize: 64\nmethod:\n  kind: lora\n  r: 4\ntraining:\n  epochs: 1\noutput: out\n`);
      return file;
    };
    const c = loadConfig(write('{ path: ./base, quantize: nf4 }'));
    expect(c.quantize).to.equal('nf4');
    expect(path.basename(c.model)).to.equal('base');
    expect(loadConfig(write('./base')).quantize).to.equal(undefined);
    const e = throws(() => loadConfig(write('{ path: ./base, quantize: int4 }')));
    expect(e.code).to.equal('ERR_CONFIG');
    expect(e.message).to.match(/model\.quantize/);
  });

  it('quantizeLmHead: a tied head multiplies by a quantized copy (the embedding stays), an untied one is quantized itself; both train and decode', async function () {
    if (!dir) return this.skip();
    const plain = await AutoModel.fromPretrained(dir, { quantize: 'int8', computeDtype: 'float32' });
    const head = await AutoModel.fromPretrained(dir, { quantize: 'int8', computeDtype: 'float32', quantizeLmHead: true });
    expect(head.quantizedBytes() - plain.quantizedBytes()).to.be.within(512 * 64, 512 * 64 + 512 * 4 + 1024);
    expect(maxAbsDiff(values(head, 'model.embed_tokens.weight'), values(plain, 'model.embed_tokens.weight'))).to.equal(0);
    const [story] = await plain.generate([[1]], { maxNewTokens: 20 });
    const a = await logits(head, [story!]), b = await logits(plain, [story!]);
    expect(maxAbsDiff(a, b)).to.be.above(0);
    expect(maxAbsDiff(a, b) / Math.max(...b.map(Math.abs))).to.be.below(0.03);
    const untied = await AutoModel.fromPretrained(fixture('llama'), { quantize: 'nf4', quantizeLmHead: true, computeDtype: 'float32', quiet: true });
    expect(untied.parameters().find((p) => p.name === 'lm_head.weight')!.quantized).to.equal('nf4');
    untied.addLora({ r: 2, alpha: 4, targetModules: ['q_proj'], seed: 1 });
    untied.configureOptimizer({ type: 'adamw', lr: 1e-2 });
    const ids = [[1, 5, 9, 3, 7, 11]];
    expect(Number.isFinite((await untied.trainStep({ inputIds: ids, labels: ids })).loss)).to.equal(true);
    expect((await untied.generate(ids, { maxNewTokens: 3 }))[0]!.length).to.equal(9);
    const e = await rejects(AutoModel.fromPretrained(dir, { quantizeLmHead: true }));
    expect(e.code).to.equal('ERR_ARGUMENT');
    expect(e.message).to.match(/quantizeLmHead needs quantize/);
  });
});
