/**
 * Test oracles for the quantized base (test 55, 56, 57, 58): float32 tensors out of a safetensors checkpoint, the
 * error bounds of int8 / NF4, and an independent NF4 quantizer in TypeScript that writes bitsandbytes' layout.
 */
import * as fs from 'fs';
import * as path from 'path';
import { native } from '../lib/native';
import { TensorInfo, buildHeader, readCheckpointTensors, HeaderTensor, SafetensorsDtype } from '../lib/models/safetensors';

/** The NF4 code (QLoRA paper appendix E; bitsandbytes get_4bit_type('nf4')). */
export const NF4 = [-1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635,
  -0.18477343022823334, -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725, 0.24611230194568634,
  0.33791524171829224, 0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0];

/** Half the largest gap between neighbouring NF4 values (the rounding error bound, relative to the block absmax). */
export const NF4_HALF_GAP = Math.max(...NF4.slice(1).map((v, i) => v - NF4[i]!)) / 2;
/** The same for the 8-bit dynamic code of the nested absmax: its widest step is 0.9 / 64 (the 10^0 decade). */
export const DYNAMIC_HALF_GAP = 0.9 / 64 / 2;

function bf16ToFloat(bits: number): number {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(bits << 16 >>> 0, 0);
  return b.readFloatLE(0);
}

/** A checkpoint tensor as float32 values (F32 or BF16). */
export function readFloats(t: TensorInfo): Float32Array {
  const fd = fs.openSync(t.file, 'r');
  const buf = Buffer.alloc(t.length);
  fs.readSync(fd, buf, 0, t.length, t.offset);
  fs.closeSync(fd);
  const n = t.shape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(n);
  if (t.dtype === 'F32') for (let i = 0; i < n; i++) out[i] = buf.readFloatLE(4 * i);
  else if (t.dtype === 'BF16') for (let i = 0; i < n; i++) out[i] = bf16ToFloat(buf.readUInt16LE(2 * i));
  else throw new Error(`readFloats: ${t.dtype}`);
  return out;
}

export function checkpointFloats(dir: string): Map<string, { shape: number[]; values: Float32Array }> {
  return new Map(readCheckpointTensors(dir).map((t) => [t.name, { shape: t.shape, values: readFloats(t) }]));
}

/** [rows, cols] row-major as [cols, rows]. */
export function transpose(v: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(v.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = v[r * cols + c]!;
  return out;
}

/** Largest violation of the int8 bound |w - w'| <= scale / 2 (scale = row absmax / 127), as a fraction: <= 1 passes. */
export function int8Violation(w: Float32Array, deq: Float32Array, rows: number, cols: number): number {
  let worst = 0;
  for (let r = 0; r < rows; r++) {
    let amax = 0;
    for (let c = 0; c < cols; c++) amax = Math.max(amax, Math.abs(w[r * cols + c]!));
    const bound = (amax / 127) / 2 * (1 + 1e-5) + 1e-12;
    for (let c = 0; c < cols; c++) worst = Math.max(worst, Math.abs(w[r * cols + c]! - deq[r * cols + c]!) / bound);
  }
  return worst;
}

/** Largest violation of the NF4 bound |w - w'| <= NF4_HALF_GAP * absmax_b + DYNAMIC_HALF_GAP * nested_absmax_g
 * (blocks of 64 over the flat [out, in] weight; groups of 256 blocks around the mean absmax): <= 1 passes. */
export function nf4Violation(w: Float32Array, deq: Float32Array, blocksize = 64, nested = 256): number {
  const blocks = Math.ceil(w.length / blocksize);
  const absmax = new Float64Array(blocks);
  for (let i = 0; i < w.length; i++) absmax[Math.floor(i / blocksize)] = Math.max(absmax[Math.floor(i / blocksize)]!, Math.abs(w[i]!));
  const mean = absmax.reduce((a, b) => a + b, 0) / blocks;
  const groupMax = new Float64Array(Math.ceil(blocks / nested));
  for (let b = 0; b < blocks; b++) groupMax[Math.floor(b / nested)] = Math.max(groupMax[Math.floor(b / nested)]!, Math.abs(absmax[b]! - mean));
  let worst = 0;
  for (let i = 0; i < w.length; i++) {
    const b = Math.floor(i / blocksize);
    const bound = (NF4_HALF_GAP * absmax[b]! + DYNAMIC_HALF_GAP * groupMax[Math.floor(b / nested)]!) * (1 + 1e-5) + 1e-9;
    worst = Math.max(worst, Math.abs(w[i]! - deq[i]!) / bound);
  }
  return worst;
}

function nearest(table: number[], x: number): number {
  let best = 0;
  for (let i = 1; i < table.length; i++) if (Math.abs(table[i]! - x) < Math.abs(table[best]! - x)) best = i;
  return best;
}

/** A weight quantized the way bitsandbytes' Linear4bit stores it, by an independent TypeScript implementation:
 * packed U8 (element 2i in the high nibble), absmax of blocks of 64, double-quantized with `nestedCode` (256 values)
 * in blocks of 256 around the mean. `dequantized` is what the stored parts decode to. */
export function bnbNf4(w: Float32Array, nestedCode: number[]): { packed: Uint8Array; qabsmax: Uint8Array; nestedAbsmax: Float32Array; offset: number; dequantized: Float32Array } {
  const bs = 64, nb = 256;
  const blocks = Math.ceil(w.length / bs);
  const absmax = new Float32Array(blocks);
  for (let i = 0; i < w.length; i++) absmax[Math.floor(i / bs)] = Math.max(absmax[Math.floor(i / bs)]!, Math.abs(w[i]!));
  const packed = new Uint8Array(Math.ceil(w.length / 2));
  const idx = new Uint8Array(w.length);
  for (let i = 0; i < w.length; i++) {
    const a = absmax[Math.floor(i / bs)]!;
    idx[i] = nearest(NF4, a > 0 ? w[i]! / a : 0);
    packed[i >> 1] = packed[i >> 1]! | ((i & 1) ? idx[i]! : idx[i]! << 4);
  }
  const offset = Math.fround(absmax.reduce((s, v) => s + v, 0) / blocks);
  const nestedAbsmax = new Float32Array(Math.ceil(blocks / nb));
  for (let b = 0; b < blocks; b++) nestedAbsmax[Math.floor(b / nb)] = Math.max(nestedAbsmax[Math.floor(b / nb)]!, Math.abs(absmax[b]! - offset));
  const qabsmax = new Uint8Array(blocks);
  for (let b = 0; b < blocks; b++) {
    const g = nestedAbsmax[Math.floor(b / nb)]!;
    qabsmax[b] = nearest(nestedCode, g > 0 ? (absmax[b]! - offset) / g : 0);
  }
  const dequantized = new Float32Array(w.length);
  for (let i = 0; i < w.length; i++) {
    const b = Math.floor(i / bs);
    const a = Math.fround(Math.fround(nestedCode[qabsmax[b]!]! * nestedAbsmax[Math.floor(b / nb)]!) + offset);
    dequantized[i] = Math.fround(NF4[idx[i]!]! * a);
  }
  return { packed, qabsmax, nestedAbsmax, offset, dequantized };
}

/** bitsandbytes' int8 rows: weight = round(w * 127 / SCB), SCB = the row's absmax. */
export function bnbInt8(w: Float32Array, rows: number, cols: number): { weight: Int8Array; scb: Float32Array; dequantized: Float32Array } {
  const weight = new Int8Array(w.length), scb = new Float32Array(rows), dequantized = new Float32Array(w.length);
  for (let r = 0; r < rows; r++) {
    let amax = 0;
    for (let c = 0; c < cols; c++) amax = Math.max(amax, Math.abs(w[r * cols + c]!));
    scb[r] = amax;
    for (let c = 0; c < cols; c++) {
      const q = amax > 0 ? Math.max(-127, Math.min(127, Math.round(w[r * cols + c]! * 127 / amax))) : 0;
      weight[r * cols + c] = q;
      dequantized[r * cols + c] = Math.fround(q * Math.fround(scb[r]! / 127));
    }
  }
  return { weight, scb, dequantized };
}

export interface RawTensor {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  data: Uint8Array;
}

export function f32(name: string, shape: number[], values: ArrayLike<number>): RawTensor {
  const buf = Buffer.alloc(values.length * 4);
  for (let i = 0; i < values.length; i++) buf.writeFloatLE(values[i]!, 4 * i);
  return { name, dtype: 'F32', shape, data: buf };
}

export function u8(name: string, shape: number[], values: Uint8Array): RawTensor {
  return { name, dtype: 'U8', shape, data: values };
}

/** Writes tensors as one safetensors file. */
export function writeSafetensors(file: string, tensors: RawTensor[]): void {
  const { header } = buildHeader(tensors.map((t): HeaderTensor => ({ name: t.name, dtype: t.dtype, shape: t.shape })));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(Buffer.byteLength(header)), 0);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, Buffer.concat([len, Buffer.from(header), ...tensors.map((t) => Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength))]));
}

/** Runs `fn` with the int8 decoding kernel `name` (nn/int8_decode.h), then restores the kernel that was set. */
export async function withInt8Kernel<T>(name: string, fn: () => Promise<T>): Promise<T> {
  const before = native().setInt8DecodeKernel(name);
  try {
    return await fn();
  } finally {
    native().setInt8DecodeKernel(before);
  }
}

/** The int8 decoding kernels this CPU runs that keep the input in float32 ('exact', 'exact-avx2'). */
export function exactInt8Kernels(): string[] {
  return native().int8DecodeKernels().filter((k) => k.startsWith('exact'));
}
