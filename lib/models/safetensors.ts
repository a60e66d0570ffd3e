/**
 * Safetensors headers: parsed and validated here with exact errors (file + tensor); the tensor bytes
 * are read (memory-mapped) and written by the native side. Format: 8-byte little-endian header
 * length, a JSON header { name: { dtype, shape, data_offsets: [begin, end] }, __metadata__? }, bytes.
 */
import * as fs from 'fs';
import * as path from 'path';
import { NodetuneError } from '../errors';

export type SafetensorsDtype = 'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL';

const ELEMENT_SIZE: Record<string, number> = { F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1 };

export interface TensorInfo {
  name: string;
  file: string;
  dtype: SafetensorsDtype;
  shape: number[];
  /** Absolute byte offset of the data in the file. */
  offset: number;
  length: number;
}

const MAX_HEADER = 100 * 1024 * 1024;

function bad(file: string, message: string, tensor?: string): NodetuneError {
  return new NodetuneError('ERR_CHECKPOINT', `${file}: ${tensor === undefined ? '' : `tensor ${tensor}: `}${message}`,
    tensor === undefined ? { file } : { file, field: tensor });
}

/** The format's layout rule: the tensors' byte ranges, in order, are contiguous, do not overlap, and cover the data
 * section exactly (no hole, no shift, nothing after the last tensor). */
function checkLayout(file: string, tensors: TensorInfo[], dataStart: number, dataSize: number): void {
  const span = (t: TensorInfo) => `[${t.offset - dataStart}, ${t.offset - dataStart + t.length}]`;
  const sorted = [...tensors].sort((a, b) => a.offset - b.offset || a.length - b.length);
  let end = 0;
  let previous: TensorInfo | undefined;
  for (const t of sorted) {
    const begin = t.offset - dataStart;
    if (begin < end) throw bad(file, `data_offsets ${span(t)} overlap tensor ${previous!.name}'s ${span(previous!)}`, t.name);
    if (begin > end)
      throw bad(file, `data_offsets ${span(t)} leave a hole of ${begin - end} bytes after ${previous ? `tensor ${previous.name}'s ${span(previous)}` : 'the header'} (the ranges must be contiguous)`, t.name);
    end = begin + t.length;
    previous = t;
  }
  if (end !== dataSize)
    throw bad(file, `the tensors' data ends at byte ${end} of a ${dataSize}-byte data section (the ranges must cover it exactly)`, previous?.name);
}

/** Reads and validates one safetensors file's header. */
export function readSafetensorsHeader(file: string): { tensors: TensorInfo[]; metadata: Record<string, string> } {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (e) {
    throw new NodetuneError('ERR_IO', `${file}: cannot open (${(e as Error).message})`, { file });
  }
  try {
    const size = fs.fstatSync(fd).size;
    if (size < 8) throw bad(file, `file is ${size} bytes, too short for a safetensors header`);
    const lenBuf = Buffer.alloc(8);
    fs.readSync(fd, lenBuf, 0, 8, 0);
    const headerLength = lenBuf.readBigUInt64LE(0);
    if (headerLength > BigInt(size - 8))
      throw bad(file, `header length ${headerLength} runs past the end of the file (${size} bytes)`);
    if (headerLength > BigInt(MAX_HEADER)) throw bad(file, `header length ${headerLength} exceeds ${MAX_HEADER} bytes`);
    const n = Number(headerLength);
    const headerBuf = Buffer.alloc(n);
    fs.readSync(fd, headerBuf, 0, n, 8);
    let header: unknown;
    try {
      header = JSON.parse(headerBuf.toString('utf8'));
    } catch (e) {
      throw bad(file, `header is not valid JSON (${(e as Error).message})`);
    }
    if (typeof header !== 'object' || header === null || Array.isArray(header)) throw bad(file, 'header is not a JSON object');
    const dataStart = 8 + n;
    const dataSize = size - dataStart;
    const tensors: TensorInfo[] = [];
    let metadata: Record<string, string> = {};
    for (const [name, value] of Object.entries(header as Record<string, unknown>)) {
      if (name === '__metadata__') {
        metadata = (value ?? {}) as Record<string, string>;
        continue;
      }
      const v = value as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
      if (typeof v !== 'object' || v === null) throw bad(file, 'entry is not an object', name);
      if (typeof v.dtype !== 'string' || !(v.dtype in ELEMENT_SIZE)) throw bad(file, `unknown dtype ${JSON.stringify(v.dtype)}`, name);
      if (!Array.isArray(v.shape) || !v.shape.every((d) => Number.isSafeInteger(d) && d >= 0))
        throw bad(file, `shape ${JSON.stringify(v.shape)} is not a list of non-negative integers`, name);
      const offsets = v.data_offsets;
      if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((d) => Number.isSafeInteger(d) && d >= 0))
        throw bad(file, `data_offsets ${JSON.stringify(offsets)} is not [begin, end]`, name);
      const [begin, end] = offsets as [number, number];
      if (end < begin) throw bad(file, `data_offsets [${begin}, ${end}] end before they begin`, name);
      if (end > dataSize)
        throw bad(file, `data_offsets [${begin}, ${end}] lie past the end of the data (${dataSize} bytes)`, name);
      const shape = v.shape as number[];
      const expected = shape.reduce((a, b) => a * b, 1) * ELEMENT_SIZE[v.dtype]!;
      if (end - begin !== expected)
        throw bad(file, `data_offsets span ${end - begin} bytes but ${v.dtype} ${JSON.stringify(shape)} needs ${expected}`, name);
      tensors.push({ name, file, dtype: v.dtype as SafetensorsDtype, shape, offset: dataStart + begin, length: end - begin });
    }
    checkLayout(file, tensors, dataStart, dataSize);
    return { tensors, metadata };
  } finally {
    fs.closeSync(fd);
  }
}

/** All tensors of a checkpoint directory: model.safetensors, or the shards of model.safetensors.index.json. */
export function readCheckpointTensors(dir: string): TensorInfo[] {
  const single = path.join(dir, 'model.safetensors');
  const index = path.join(dir, 'model.safetensors.index.json');
  if (fs.existsSync(single)) return readSafetensorsHeader(single).tensors;
  if (fs.existsSync(index)) {
    let weightMap: Record<string, string>;
    try {
      const parsed = JSON.parse(fs.readFileSync(index, 'utf8')) as { weight_map?: Record<string, string> };
      if (typeof parsed.weight_map !== 'object' || parsed.weight_map === null) throw new Error('no weight_map object');
      weightMap = parsed.weight_map;
    } catch (e) {
      throw bad(index, `malformed index (${(e as Error).message})`);
    }
    const shards = [...new Set(Object.values(weightMap))];
    const all: TensorInfo[] = [];
    for (const shard of shards) {
      if (typeof shard !== 'string' || shard.includes('/') || shard.includes('\\')) throw bad(index, `bad shard name ${JSON.stringify(shard)}`);
      const file = path.join(dir, shard);
      if (!fs.existsSync(file)) throw bad(index, `shard ${shard} is missing`);
      const { tensors } = readSafetensorsHeader(file);
      const names = new Set(tensors.map((t) => t.name));
      for (const [name, s] of Object.entries(weightMap)) {
        if (s === shard && !names.has(name)) throw bad(file, 'listed in the index but absent from the shard', name);
      }
      all.push(...tensors.filter((t) => weightMap[t.name] === shard));
    }
    return all;
  }
  const bins = ['pytorch_model.bin', 'pytorch_model.bin.index.json', 'model.bin'].filter((f) => fs.existsSync(path.join(dir, f)));
  if (bins.length > 0)
    throw new NodetuneError('ERR_CHECKPOINT',
      `${dir} holds only PyTorch pickle weights (${bins.join(', ')}); nodetune reads safetensors. Convert them once ` +
        'with Python: `from transformers import AutoModel; AutoModel.from_pretrained(dir).save_pretrained(dir, safe_serialization=True)`',
      { file: path.join(dir, bins[0]!) });
  throw new NodetuneError('ERR_CHECKPOINT', `${dir}: no model.safetensors or model.safetensors.index.json`, { file: dir });
}

export interface HeaderTensor {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
}

/** A safetensors header (padded with spaces to a multiple of 8 bytes) for tensors laid out in order. */
export function buildHeader(tensors: HeaderTensor[], metadata: Record<string, string> = { format: 'pt' }): { header: string; dataBytes: number } {
  const obj: Record<string, unknown> = { __metadata__: metadata };
  let offset = 0;
  for (const t of tensors) {
    const bytes = t.shape.reduce((a, b) => a * b, 1) * ELEMENT_SIZE[t.dtype]!;
    obj[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let header = JSON.stringify(obj);
  const pad = (8 - (Buffer.byteLength(header) % 8)) % 8;
  header += ' '.repeat(pad);
  return { header, dataBytes: offset };
}

export function elementSize(dtype: SafetensorsDtype): number {
  return ELEMENT_SIZE[dtype]!;
}
