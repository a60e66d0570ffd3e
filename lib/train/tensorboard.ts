/**
 * TensorBoard event files (`events.out.tfevents.<time>.<host>`) with scalar summaries, written without TensorFlow:
 * TFRecord framing (length, masked CRC-32C, data, masked CRC-32C) around hand-encoded `Event` protobufs.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { NodetuneError } from '../errors';

const CRC32C = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

export function crc32c(buf: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < buf.length; i++) c = CRC32C[(c ^ buf[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** TFRecord's masked CRC. */
export function maskedCrc(buf: Uint8Array): number {
  const c = crc32c(buf);
  return ((((c >>> 15) | (c << 17)) >>> 0) + 0xa282ead8) >>> 0;
}

function varint(n: number): Buffer {
  const out: number[] = [];
  let v = BigInt(n);
  do {
    let b = Number(v & 0x7fn);
    v >>= 7n;
    if (v > 0n) b |= 0x80;
    out.push(b);
  } while (v > 0n);
  return Buffer.from(out);
}

function lenField(field: number, data: Buffer): Buffer {
  return Buffer.concat([varint((field << 3) | 2), varint(data.length), data]);
}

function doubleField(field: number, v: number): Buffer {
  const b = Buffer.alloc(9);
  b[0] = (field << 3) | 1;
  b.writeDoubleLE(v, 1);
  return b;
}

function floatField(field: number, v: number): Buffer {
  const b = Buffer.alloc(5);
  b[0] = (field << 3) | 5;
  b.writeFloatLE(v, 1);
  return b;
}

/** An Event with wall_time, step and a Summary of scalar values (or the file_version header). */
export function encodeEvent(wallTime: number, step: number, scalars: Record<string, number> | null): Buffer {
  const parts = [doubleField(1, wallTime)];
  if (scalars === null) parts.push(lenField(3, Buffer.from('brain.Event:2')));
  else {
    parts.push(Buffer.concat([varint(2 << 3), varint(step)]));
    const values = Object.entries(scalars).map(([tag, v]) => lenField(1, Buffer.concat([lenField(1, Buffer.from(tag, 'utf8')), floatField(2, v)])));
    parts.push(lenField(5, Buffer.concat(values)));
  }
  return Buffer.concat(parts);
}

export function tfRecord(data: Buffer): Buffer {
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(data.length));
  const lenCrc = Buffer.alloc(4), dataCrc = Buffer.alloc(4);
  lenCrc.writeUInt32LE(maskedCrc(len));
  dataCrc.writeUInt32LE(maskedCrc(data));
  return Buffer.concat([len, lenCrc, data, dataCrc]);
}

/** Appends scalar events to one event file in `dir`. */
export class TensorBoardWriter {
  readonly file: string;

  constructor(dir: string, now = Date.now()) {
    try {
      fs.mkdirSync(dir, { recursive: true });
      this.file = path.join(dir, `events.out.tfevents.${Math.floor(now / 1000)}.${os.hostname()}`);
      fs.writeFileSync(this.file, tfRecord(encodeEvent(now / 1000, 0, null)));
    } catch (e) {
      throw new NodetuneError('ERR_IO', `${dir}: cannot create a TensorBoard event file (${(e as Error).message})`, { file: dir });
    }
  }

  /** Writes finite values as scalars `tag` at `step`. */
  scalars(step: number, values: Record<string, number | null | undefined>, now = Date.now()): void {
    const finite: Record<string, number> = {};
    for (const [k, v] of Object.entries(values)) if (typeof v === 'number' && Number.isFinite(v)) finite[k] = v;
    if (Object.keys(finite).length === 0) return;
    try {
      fs.appendFileSync(this.file, tfRecord(encodeEvent(now / 1000, step, finite)));
    } catch (e) {
      throw new NodetuneError('ERR_IO', `${this.file}: cannot append TensorBoard events (${(e as Error).message})`, { file: this.file });
    }
  }
}
