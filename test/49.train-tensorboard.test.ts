import { expect } from 'chai';
import * as fs from 'fs';
import * as path from 'path';
import { AutoModel } from '../lib/models';
import { crc32c, maskedCrc } from '../lib/train/tensorboard';
import { Trainer } from '../lib/train/trainer';
import { tempDir } from './helpers';
import { fixture } from './models-helpers';
import { lmBatches } from './train-helpers';

/** Minimal protobuf reader: field number → list of raw values (numbers for varint/fixed, Buffers for length-delimited). */
function fields(buf: Buffer): Map<number, (number | bigint | Buffer)[]> {
  const out = new Map<number, (number | bigint | Buffer)[]>();
  let i = 0;
  const varint = (): bigint => {
    let v = 0n, shift = 0n;
    for (;;) {
      const b = buf[i++]!;
      v |= BigInt(b & 0x7f) << shift;
      if (!(b & 0x80)) return v;
      shift += 7n;
    }
  };
  while (i < buf.length) {
    const key = Number(varint());
    const [field, wire] = [key >> 3, key & 7];
    let v: number | bigint | Buffer;
    if (wire === 0) v = varint();
    else if (wire === 1) (v = buf.readDoubleLE(i)), (i += 8);
    else if (wire === 5) (v = buf.readFloatLE(i)), (i += 4);
    else if (wire === 2) {
      const n = Number(varint());
      v = buf.subarray(i, i + n);
      i += n;
    } else throw new Error(`wire type ${wire}`);
    out.set(field, [...(out.get(field) ?? []), v]);
  }
  return out;
}

describe('49 train: TensorBoard event files', function () {
  this.timeout(60000);

  it('CRC-32C matches the standard check value', () => {
    expect(crc32c(Buffer.from('123456789'))).to.equal(0xe3069283);
    expect(maskedCrc(Buffer.alloc(0))).to.equal(0xa282ead8); // crc32c('') = 0
  });

  it('training writes TFRecord-framed Event protobufs with the logged scalars', async () => {
    const out = tempDir();
    const model = await AutoModel.fromPretrained(fixture('llama'), { quiet: true });
    const res = await new Trainer({ model, train: lmBatches(1, 4), validation: lmBatches(2, 1), args: { outputDir: out, optimizer: 'sgd',
      learningRate: 0.1, epochs: 1, loggingSteps: 2, tensorboard: true, report: false } }).train();
    const dir = path.join(out, 'tensorboard');
    const files = fs.readdirSync(dir);
    expect(files).to.have.length(1);
    expect(files[0]).to.match(/^events\.out\.tfevents\.\d+\./);
    const b = fs.readFileSync(path.join(dir, files[0]!));
    const events: Map<number, (number | bigint | Buffer)[]>[] = [];
    for (let off = 0; off < b.length;) {
      const len = Number(b.readBigUInt64LE(off));
      expect(b.readUInt32LE(off + 8)).to.equal(maskedCrc(b.subarray(off, off + 8)));
      const data = b.subarray(off + 12, off + 12 + len);
      expect(b.readUInt32LE(off + 12 + len)).to.equal(maskedCrc(data));
      events.push(fields(data));
      off += 16 + len;
    }
    expect(events[0]!.get(3)![0]!.toString()).to.equal('brain.Event:2');
    const scalars: { step: number; tag: string; value: number }[] = [];
    for (const e of events.slice(1)) {
      const step = Number(e.get(2)![0]);
      for (const v of fields(e.get(5)![0] as Buffer).get(1)!) {
        const f = fields(v as Buffer);
        scalars.push({ step, tag: (f.get(1)![0] as Buffer).toString(), value: f.get(2)![0] as number });
      }
    }
    const losses = scalars.filter((s) => s.tag === 'train/loss');
    expect(losses.map((s) => s.step)).to.deep.equal([2, 4]);
    expect(losses[0]!.value).to.be.closeTo((res.losses[0]! + res.losses[1]!) / 2, 1e-6);
    expect(scalars.filter((s) => s.tag === 'eval/loss').map((s) => s.step)).to.deep.equal([4]);
    expect(scalars.some((s) => s.tag === 'train/lr')).to.equal(true);
  });
});
