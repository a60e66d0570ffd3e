/**
 * Checkpoints saved quantized by bitsandbytes (transformers' save_pretrained of a load_in_4bit / load_in_8bit model).
 * No such file exists here, so each test writes one in that exact layout from a float checkpoint, with an independent
 * TypeScript quantizer (test/quant-helpers.ts). The layout, as bitsandbytes' Linear4bit / Linear8bitLt
 * _save_to_state_dict and QuantState.as_dict(packed=True) write it (bitsandbytes/nn/modules.py, functional.py):
 *   4-bit: <m>.weight U8 [ceil(n/2), 1] (element 2i in the high nibble, as its kQuantizeBlockwise packs), <m>.weight.absmax
 *          (U8 when double-quantized), <m>.weight.quant_map F32 [16], <m>.weight.nested_absmax F32,
 *          <m>.weight.nested_quant_map F32 [256], <m>.weight.quant_state.bitsandbytes__nf4 U8 (JSON: quant_type,
 *          blocksize, dtype, shape, nested_blocksize, nested_dtype, nested_offset).
 *   8-bit: <m>.weight I8 [out, in], <m>.SCB F32 [out] (row absmax), <m>.weight_format U8 scalar (0 = row-major).
 * config.json carries transformers' quantization_config.
 */
import { expect } from 'chai';
import * as fs from 'fs';
import * as path from 'path';
import { AutoModel } from '../lib/models';
import { main } from '../lib/cli/main';
import { readCheckpointTensors } from '../lib/models/safetensors';
import { rejects, tempDir } from './helpers';
import { fixture, maxAbsDiff, stories260K } from './models-helpers';
import { NF4, RawTensor, bnbInt8, bnbNf4, f32, readFloats, u8, writeSafetensors } from './quant-helpers';

const LINEAR = /\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)\.weight$/;
// Any 256-value table serves as the nested code: the loader must use the file's, not its own.
const NESTED_CODE = Array.from({ length: 256 }, (_, i) => -1 + (2 * i) / 255);

type Mutate = (tensors: RawTensor[]) => void;

/** `src` rewritten in bitsandbytes' layout; `expected` maps each quantized weight to what its stored parts decode to. */
function buildBnb(src: string, out: string, format: 'nf4' | 'int8', mutate?: Mutate): Map<string, Float32Array> {
  const tensors: RawTensor[] = [];
  const expected = new Map<string, Float32Array>();
  for (const t of readCheckpointTensors(src)) {
    const w = readFloats(t);
    if (!LINEAR.test(t.name)) {
      tensors.push(f32(t.name, t.shape, w));
      continue;
    }
    const [rows, cols] = t.shape as [number, number];
    if (format === 'int8') {
      const q = bnbInt8(w, rows, cols);
      tensors.push({ name: t.name, dtype: 'I8', shape: t.shape, data: new Uint8Array(q.weight.buffer) });
      tensors.push(f32(t.name.replace(/\.weight$/, '.SCB'), [rows], q.scb));
      tensors.push(u8(t.name.replace(/\.weight$/, '.weight_format'), [], Uint8Array.of(0)));
      expected.set(t.name, q.dequantized);
      continue;
    }
    const q = bnbNf4(w, NESTED_CODE);
    tensors.push(u8(t.name, [q.packed.length, 1], q.packed));
    tensors.push(u8(`${t.name}.absmax`, [q.qabsmax.length], q.qabsmax));
    tensors.push(f32(`${t.name}.quant_map`, [16], NF4));
    tensors.push(f32(`${t.name}.nested_absmax`, [q.nestedAbsmax.length], q.nestedAbsmax));
    tensors.push(f32(`${t.name}.nested_quant_map`, [256], NESTED_CODE));
    const state = { quant_type: 'nf4', blocksize: 64, dtype: 'float32', shape: [rows, cols], nested_blocksize: 256, nested_dtype: 'float32', nested_offset: q.offset };
    tensors.push(u8(`${t.name}.quant_state.bitsandbytes__nf4`, [Buffer.byteLength(JSON.stringify(state))], Buffer.from(JSON.stringify(state))));
    expected.set(t.name, q.dequantized);
  }
  mutate?.(tensors);
  writeSafetensors(path.join(out, 'model.safetensors'), tensors);
  const config = JSON.parse(fs.readFileSync(path.join(src, 'config.json'), 'utf8')) as Record<string, unknown>;
  config.quantization_config = format === 'nf4'
    ? { quant_method: 'bitsandbytes', load_in_4bit: true, bnb_4bit_quant_type: 'nf4', bnb_4bit_use_double_quant: true, bnb_4bit_compute_dtype: 'bfloat16' }
    : { quant_method: 'bitsandbytes', load_in_8bit: true };
  fs.writeFileSync(path.join(out, 'config.json'), JSON.stringify(config));
  return expected;
}

function replace(tensors: RawTensor[], name: string, next: RawTensor): void {
  const i = tensors.findIndex((t) => t.name === name);
  if (i < 0) throw new Error(`no tensor ${name}`);
  tensors[i] = next;
}

describe('56 quantized base: bitsandbytes 4-bit / 8-bit checkpoints', () => {
  const sources = (): [string, string][] => [['llama fixture', fixture('llama')], ...(stories260K() ? [['stories260K', stories260K()!] as [string, string]] : [])];

  for (const format of ['nf4', 'int8'] as const) {
    it(`${format}: loads quantized as stored (the weights decode to what bitsandbytes' parts mean), logits close to the float model; savePretrained writes plain weights without quantization_config`, async () => {
      for (const [label, src] of sources()) {
        const dir = tempDir();
        const expected = buildBnb(src, dir, format);
        const model = await AutoModel.fromPretrained(dir, { computeDtype: 'float32', quiet: true });
        expect(model.quantized, label).to.equal(format);
        expect(model.parameters().filter((p) => p.quantized).length, label).to.equal(expected.size);
        for (const [name, values] of expected) {
          const got = Float32Array.from(model.getParameter(name).data() as Float32Array);
          expect(maxAbsDiff(got, values), `${label} ${name}`).to.be.below(1e-6 * Math.max(1, ...values.map(Math.abs)));
        }
        const full = await AutoModel.fromPretrained(src, { quiet: true });
        const ids = [[1, 5, 9, 3, 7, 11, 2, 4]];
        const a = (await model.forward({ inputIds: ids })).logits, b = (await full.forward({ inputIds: ids })).logits;
        expect(maxAbsDiff(a, b) / Math.max(...b.map(Math.abs)), label).to.be.below(format === 'int8' ? 0.03 : 0.25);
        const out = path.join(dir, 'plain');
        await model.savePretrained(out);
        const saved = JSON.parse(fs.readFileSync(path.join(out, 'config.json'), 'utf8')) as Record<string, unknown>;
        expect(saved.quantization_config, label).to.equal(undefined);
        const back = await AutoModel.fromPretrained(out, { quiet: true });
        expect(maxAbsDiff((await back.forward({ inputIds: ids })).logits, a), label).to.be.below(1e-4);
      }
    });
  }

  it('the statistics must match the weights: a typed ERR_CHECKPOINT naming the tensor', async () => {
    const src = fixture('llama');
    const name = 'model.layers.1.mlp.down_proj.weight';
    const cases: [string, 'nf4' | 'int8', Mutate, RegExp][] = [
      ['absmax count', 'nf4', (t) => replace(t, `${name}.absmax`, u8(`${name}.absmax`, [3], Uint8Array.of(1, 2, 3))), /absmax has 3 values/],
      ['packed bytes', 'nf4', (t) => replace(t, name, u8(name, [7, 1], new Uint8Array(7))), /packed weight has 7 bytes/],
      ['nested map', 'nf4', (t) => replace(t, `${name}.nested_quant_map`, f32(`${name}.nested_quant_map`, [255], NESTED_CODE.slice(1))), /nested_quant_map has 255 values/],
      ['negative nested absmax', 'nf4', (t) => replace(t, `${name}.nested_absmax`, f32(`${name}.nested_absmax`, [1], [-1])), /nested_absmax holds negative/],
      ['fp4', 'nf4', (t) => { const i = t.findIndex((x) => x.name === `${name}.quant_state.bitsandbytes__nf4`); t[i] = { ...t[i]!, name: `${name}.quant_state.bitsandbytes__fp4` }; }, /4-bit type fp4 is not supported/],
      ['quant_state JSON', 'nf4', (t) => replace(t, `${name}.quant_state.bitsandbytes__nf4`, u8(`${name}.quant_state.bitsandbytes__nf4`, [3], Uint8Array.of(123, 34, 0))), /quant_state is not the JSON/],
      ['quant_state shape', 'nf4', (t) => {
        const state = { quant_type: 'nf4', blocksize: 64, dtype: 'float32', shape: [40, 24], nested_blocksize: 256, nested_dtype: 'float32', nested_offset: 0.1 };
        replace(t, `${name}.quant_state.bitsandbytes__nf4`, u8(`${name}.quant_state.bitsandbytes__nf4`, [Buffer.byteLength(JSON.stringify(state))], Buffer.from(JSON.stringify(state))));
      }, /quantized from shape \[40,24\], config.json implies \[24,40\]/],
      ['SCB count', 'int8', (t) => replace(t, name.replace(/weight$/, 'SCB'), f32(name.replace(/weight$/, 'SCB'), [5], [1, 1, 1, 1, 1])), /SCB\) number 5, the weight has 24 rows/],
      ['SCB NaN', 'int8', (t) => replace(t, name.replace(/weight$/, 'SCB'), f32(name.replace(/weight$/, 'SCB'), [24], new Array(24).fill(NaN))), /SCB holds non-finite/],
      ['weight_format', 'int8', (t) => replace(t, name.replace(/weight$/, 'weight_format'), u8(name.replace(/weight$/, 'weight_format'), [], Uint8Array.of(2))), /weight_format 2 is a GPU tile layout/],
    ];
    for (const [label, format, mutate, message] of cases) {
      const dir = tempDir();
      buildBnb(src, dir, format, mutate);
      const e = await rejects(AutoModel.fromPretrained(dir, { quiet: true }));
      expect(e.code, label).to.equal('ERR_CHECKPOINT');
      expect(e.message, label).to.match(message);
      expect(e.message, label).to.contain('model.layers.1.mlp.down_proj');
    }
    const dir = tempDir();
    buildBnb(src, dir, 'nf4');
    const e = await rejects(AutoModel.fromPretrained(dir, { quantize: 'int8', quiet: true }));
    expect(e.code).to.equal('ERR_ARGUMENT');
    expect(e.message).to.match(/saved quantized as nf4/);
  });

  it('nodetune merge on a bitsandbytes base: dequantizes, merges, writes a bfloat16 checkpoint and says so', async () => {
    const dir = tempDir();
    buildBnb(fixture('llama'), dir, 'nf4');
    const model = await AutoModel.fromPretrained(dir, { quiet: true });
    model.addLora({ r: 2, alpha: 4, targetModules: ['q_proj', 'v_proj'], seed: 1 });
    model.configureOptimizer({ type: 'adamw', lr: 5e-2 });
    const ids = [[1, 5, 9, 3, 7, 11]];
    for (let i = 0; i < 3; i++) await model.trainStep({ inputIds: ids, labels: ids });
    const tuned = (await model.forward({ inputIds: ids })).logits;
    const adapter = path.join(dir, 'adapter'), merged = path.join(dir, 'merged');
    await model.saveAdapter(adapter);
    const out: string[] = [];
    const warning = (w: Error) => out.push(w.message);
    process.on('warning', warning);
    const code = await main(['merge', '--model', dir, '--adapter', adapter, '--output', merged], (s) => out.push(s), (s) => out.push(s));
    await new Promise((r) => setImmediate(r));
    process.off('warning', warning);
    expect(code).to.equal(0);
    expect(out.join('\n')).to.match(/the nf4 base was dequantized: the checkpoint is bfloat16/);
    const config = JSON.parse(fs.readFileSync(path.join(merged, 'config.json'), 'utf8')) as Record<string, unknown>;
    expect(config.torch_dtype).to.equal('bfloat16');
    expect(config.quantization_config).to.equal(undefined);
    const back = await AutoModel.fromPretrained(merged, { quiet: true, dtype: 'bfloat16' });
    expect(back.quantized).to.equal(null);
    const logits = (await back.forward({ inputIds: ids })).logits;
    expect(maxAbsDiff(logits, tuned) / Math.max(...tuned.map(Math.abs))).to.be.below(0.03);
  });
});
