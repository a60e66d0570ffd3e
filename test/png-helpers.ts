import { expect } from 'chai';
import * as fs from 'fs';
import * as zlib from 'zlib';

export interface Image {
  width: number;
  height: number;
  /** RGB(A) bytes per pixel. */
  channels: number;
  /** Unfiltered rows, width * channels bytes each. */
  pixels: Buffer;
}

/** Decodes an 8-bit RGB or RGBA PNG (all five row filters), enough to check what a chart drew. */
export function readPng(file: string): Image {
  const b = fs.readFileSync(file);
  expect(b.subarray(0, 8)).to.deep.equal(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
  let off = 8, width = 0, height = 0, channels = 0;
  const idat: Buffer[] = [];
  while (off < b.length) {
    const len = b.readUInt32BE(off), type = b.toString('ascii', off + 4, off + 8);
    const data = b.subarray(off + 8, off + 8 + len);
    if (type === 'IHDR') {
      (width = data.readUInt32BE(0)), (height = data.readUInt32BE(4));
      expect(data[8], 'bit depth').to.equal(8);
      channels = ({ 2: 3, 6: 4 } as Record<number, number>)[data[9]!] ?? 0;
      expect(channels, `colour type ${data[9]}`).to.be.above(0);
    }
    if (type === 'IDAT') idat.push(data);
    off += 12 + len;
  }
  const raw = zlib.inflateSync(Buffer.concat(idat));
  const stride = width * channels;
  const out = Buffer.alloc(stride * height);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)]!;
    for (let i = 0; i < stride; i++) {
      const x = raw[y * (stride + 1) + 1 + i]!;
      const a = i >= channels ? out[y * stride + i - channels]! : 0;
      const up = y > 0 ? out[(y - 1) * stride + i]! : 0;
      const c = y > 0 && i >= channels ? out[(y - 1) * stride + i - channels]! : 0;
      const p = a + up - c, pa = Math.abs(p - a), pb = Math.abs(p - up), pc = Math.abs(p - c);
      const pred = [0, a, up, (a + up) >> 1, pa <= pb && pa <= pc ? a : pb <= pc ? up : c][filter]!;
      out[y * stride + i] = (x + pred) & 0xff;
    }
  }
  return { width, height, channels, pixels: out };
}

/** Pixels within `tol` of an RGB colour, in the column range [x0, x1) (default: the whole width). */
export function countColour(img: Image, rgb: [number, number, number], tol = 24, x0 = 0, x1 = img.width): number {
  let n = 0;
  for (let y = 0; y < img.height; y++) {
    for (let x = x0; x < x1; x++) {
      const o = (y * img.width + x) * img.channels;
      if (rgb.every((v, k) => Math.abs(img.pixels[o + k]! - v) <= tol)) n++;
    }
  }
  return n;
}
