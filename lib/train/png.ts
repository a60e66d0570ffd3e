/** A minimal PNG writer (RGB, zlib via node:zlib) and a raster line chart, so a report has a picture without a browser. */
import * as zlib from 'zlib';
import type { Series } from './report';

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

function crc32(buf: Buffer): number {
  let c = 0xffffffff;
  for (let i = 0; i < buf.length; i++) c = CRC_TABLE[(c ^ buf[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type: string, data: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([len, body, crc]);
}

/** Encodes an RGB image (3 bytes per pixel, row-major) as PNG. */
export function encodePng(width: number, height: number, rgb: Uint8Array): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // colour type RGB
  const raw = Buffer.alloc((width * 3 + 1) * height);
  for (let y = 0; y < height; y++) {
    raw[y * (width * 3 + 1)] = 0; // filter: none
    Buffer.from(rgb.buffer, rgb.byteOffset + y * width * 3, width * 3).copy(raw, y * (width * 3 + 1) + 1);
  }
  const signature = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  return Buffer.concat([signature, chunk('IHDR', ihdr), chunk('IDAT', zlib.deflateSync(raw)), chunk('IEND', Buffer.alloc(0))]);
}

const COLORS: [number, number, number][] = [[31, 119, 180], [214, 39, 40], [44, 160, 44], [255, 127, 14]];

/** A line chart of `series` (axes, grid and one coloured line per series) as PNG bytes. */
export function chartPng(series: Series[], width = 640, height = 320): Buffer {
  const img = new Uint8Array(width * height * 3).fill(255);
  const set = (x: number, y: number, c: [number, number, number]) => {
    if (x < 0 || y < 0 || x >= width || y >= height) return;
    const o = (y * width + x) * 3;
    img[o] = c[0], img[o + 1] = c[1], img[o + 2] = c[2];
  };
  const line = (x0: number, y0: number, x1: number, y1: number, c: [number, number, number]) => {
    x0 = Math.round(x0), y0 = Math.round(y0), x1 = Math.round(x1), y1 = Math.round(y1);
    const dx = Math.abs(x1 - x0), dy = -Math.abs(y1 - y0), sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1;
    let err = dx + dy;
    for (;;) {
      set(x0, y0, c), set(x0, y0 + 1, c);
      if (x0 === x1 && y0 === y1) break;
      const e2 = 2 * err;
      if (e2 >= dy) (err += dy), (x0 += sx);
      if (e2 <= dx) (err += dx), (y0 += sy);
    }
  };
  const pad = 30, w = width - 2 * pad, h = height - 2 * pad;
  for (let k = 0; k <= 4; k++) line(pad, pad + (k * h) / 4, pad + w, pad + (k * h) / 4, [230, 230, 230]);
  line(pad, pad, pad, pad + h, [120, 120, 120]);
  line(pad, pad + h, pad + w, pad + h, [120, 120, 120]);
  const pts = series.flatMap((s) => s.points).filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
  if (pts.length > 0) {
    let [x0, x1] = [Math.min(...pts.map((p) => p[0])), Math.max(...pts.map((p) => p[0]))];
    let [y0, y1] = [Math.min(...pts.map((p) => p[1])), Math.max(...pts.map((p) => p[1]))];
    if (x0 === x1) (x0 -= 1), (x1 += 1);
    if (y0 === y1) (y0 -= 1), (y1 += 1);
    const px = (x: number) => pad + ((x - x0) / (x1 - x0)) * w;
    const py = (y: number) => pad + h - ((y - y0) / (y1 - y0)) * h;
    series.forEach((s, i) => {
      const c = COLORS[i % COLORS.length]!;
      const p = s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
      for (let k = 1; k < p.length; k++) line(px(p[k - 1]![0]), py(p[k - 1]![1]), px(p[k]![0]), py(p[k]![1]), c);
      if (p.length === 1) line(px(p[0]![0]) - 2, py(p[0]![1]), px(p[0]![0]) + 2, py(p[0]![1]), c);
    });
  }
  return encodePng(width, height, img);
}
