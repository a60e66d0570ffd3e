/** Validation of model inputs: number[][] or typed arrays with a shape → Int32Array/BigInt64Array + [batch, length]. */
import { NodetuneError } from '../errors';
import type { NativeIds } from '../native';

/** A [batch, length] integer matrix: nested arrays, a typed array with its shape, or one flat sequence (number[], a batch of one). */
export type IdsInput = number[][] | number[] | { data: Int32Array | BigInt64Array; shape: [number, number] | number[] };

export interface Matrix {
  data: NativeIds;
  shape: [number, number];
}

function shapeError(message: string, field: string): NodetuneError {
  return new NodetuneError('ERR_SHAPE', message, { field });
}

/** Validates `value` as a [batch, length] integer matrix named `field`. */
export function toMatrix(value: unknown, field: string, opts: { min?: number; max?: number; allowEmptyRows?: boolean } = {}): Matrix {
  let data: NativeIds;
  let shape: [number, number];
  // One flat sequence (what tokenizer.encode() gives) is a batch of one.
  if (Array.isArray(value) && value.length > 0 && value.every((v) => typeof v === 'number')) value = [value];
  if (Array.isArray(value)) {
    if (value.length === 0) throw shapeError(`${field}: expected [batch, length] with batch >= 1, got an empty array`, field);
    const length = Array.isArray(value[0]) ? (value[0] as unknown[]).length : -1;
    const out = new Int32Array(value.length * Math.max(length, 0));
    value.forEach((row, b) => {
      if (!Array.isArray(row)) throw shapeError(`${field}[${b}]: expected an array of integers (shape [batch, length])`, field);
      if (row.length !== length) throw shapeError(`${field}[${b}] has length ${row.length}, ${field}[0] has ${length}: rows must have equal length (pad them)`, field);
      row.forEach((v, t) => {
        if (typeof v !== 'number' || !Number.isInteger(v) || v < -2147483648 || v > 2147483647)
          throw new NodetuneError('ERR_ARGUMENT', `${field}[${b}][${t}] must be an integer, got ${JSON.stringify(v)}`, { field });
        out[b * length + t] = v;
      });
    });
    data = out;
    shape = [value.length, length];
  } else if (value && typeof value === 'object' && 'data' in value && 'shape' in value) {
    const v = value as { data: unknown; shape: unknown };
    if (!(v.data instanceof Int32Array) && !(v.data instanceof BigInt64Array))
      throw new NodetuneError('ERR_ARGUMENT', `${field}.data must be an Int32Array or BigInt64Array`, { field });
    if (!Array.isArray(v.shape) || v.shape.length !== 2 || !v.shape.every((d) => Number.isSafeInteger(d) && d >= 0))
      throw shapeError(`${field}.shape must be [batch, length], got ${JSON.stringify(v.shape)}`, field);
    shape = [v.shape[0] as number, v.shape[1] as number];
    if (shape[0] * shape[1] !== v.data.length)
      throw shapeError(`${field}: shape ${JSON.stringify(shape)} needs ${shape[0] * shape[1]} elements, data has ${v.data.length}`, field);
    data = v.data;
  } else {
    throw new NodetuneError('ERR_ARGUMENT', `${field} must be number[][] or { data: Int32Array | BigInt64Array, shape: [batch, length] }`, { field });
  }
  if (shape[0] < 1 || (shape[1] < 1 && !opts.allowEmptyRows)) throw shapeError(`${field}: shape ${JSON.stringify(shape)} is empty`, field);
  if (opts.min !== undefined || opts.max !== undefined) {
    for (let i = 0; i < data.length; i++) {
      const x = Number(data[i]!);
      if ((opts.min !== undefined && x < opts.min) || (opts.max !== undefined && x > opts.max))
        throw new NodetuneError('ERR_ARGUMENT',
          `${field}[${Math.floor(i / shape[1])}][${i % shape[1]}] = ${x} is out of range [${opts.min ?? '-inf'}, ${opts.max ?? 'inf'}]`, { field });
    }
  }
  return { data, shape };
}

/** Checks that every label of `m` is -100 (ignored) or an id in [0, limit): `what` names the ids (token, class). */
export function expectLabelIds(m: Matrix, limit: number, what: string): void {
  for (let i = 0; i < m.data.length; i++) {
    const x = Number(m.data[i]!);
    if (x !== -100 && (x < 0 || x >= limit))
      throw new NodetuneError('ERR_ARGUMENT', `labels[${Math.floor(i / m.shape[1])}][${i % m.shape[1]}] = ${x} is neither a ${what} id in [0, ${limit}) nor -100`, { field: 'labels' });
  }
}

/** Checks that `m` has exactly `shape`. */
export function expectShape(m: Matrix, shape: [number, number], field: string, of: string): void {
  if (m.shape[0] !== shape[0] || m.shape[1] !== shape[1])
    throw shapeError(`${field} has shape ${JSON.stringify(m.shape)}, ${of} has ${JSON.stringify(shape)}; they must match`, field);
}
