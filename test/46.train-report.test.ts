import { expect } from 'chai';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import * as zlib from 'zlib';
import { AutoModel } from '../lib/models';
import { Trainer } from '../lib/train/trainer';
import { renderReport } from '../lib/train/report';
import { tempDir } from './helpers';
import { fixture } from './models-helpers';
import { lmBatches } from './train-helpers';

const VOID = new Set(['meta', 'br', 'img', 'input', 'link', 'hr', 'col']);

/** Checks that every element is closed in order (self-closing and void elements aside); returns the tag counts. */
function wellFormed(html: string): Record<string, number> {
  const stack: string[] = [];
  const counts: Record<string, number> = {};
  for (const m of html.replace(/<!DOCTYPE[^>]*>/i, '').matchAll(/<(\/?)([a-zA-Z][\w-]*)([^>]*?)(\/?)>/g)) {
    const [, close, name, , self] = m;
    const tag = name!.toLowerCase();
    if (close) {
      const open = stack.pop();
      if (open !== tag) throw new Error(`</${tag}> closes <${open}>`);
    } else {
      counts[tag] = (counts[tag] ?? 0) + 1;
      if (!self && !VOID.has(tag)) stack.push(tag);
    }
  }
  if (stack.length) throw new Error(`unclosed: ${stack.join(', ')}`);
  return counts;
}

function readPng(file: string): { width: number; height: number; pixels: Buffer } {
  const b = fs.readFileSync(file);
  expect(b.subarray(0, 8)).to.deep.equal(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
  let off = 8, width = 0, height = 0;
  const idat: Buffer[] = [];
  while (off < b.length) {
    const len = b.readUInt32BE(off), type = b.toString('ascii', off + 4, off + 8);
    const data = b.subarray(off + 8, off + 8 + len);
    if (type === 'IHDR') (width = data.readUInt32BE(0)), (height = data.readUInt32BE(4));
    if (type === 'IDAT') idat.push(data);
    off += 12 + len;
  }
  return { width, height, pixels: zlib.inflateSync(Buffer.concat(idat)) };
}

describe('46 train: HTML report and PNG', function () {
  this.timeout(60000);

  it('the loss chart\'s legend shows each entry in its line\'s colour (a swatch, and a fill the page\'s `svg text` rule cannot override)', () => {
    const history = [1, 2, 3, 4].map((step) => ({ step, loss: 2 / step, ...(step % 2 === 0 ? { eval_loss: 2.5 / step } : {}) }));
    const html = renderReport(history as never, { title: 'run', summary: {} });
    const loss = /<svg[^>]*aria-label="Loss"[\s\S]*?<\/svg>/.exec(html)![0];
    const lines = [...loss.matchAll(/<path d="[^"]*" fill="none" stroke="(#[0-9a-f]{6})"/g)].map((m) => m[1]);
    const entries = [...loss.matchAll(/<g class="legend-entry"><line [^>]*stroke="(#[0-9a-f]{6})"[^>]*\/><text [^>]*style="fill:(#[0-9a-f]{6})">([^<]*)<\/text><\/g>/g)]
      .map((m) => ({ swatch: m[1], text: m[2], name: m[3] }));
    expect(entries.map((e) => e.name)).to.deep.equal(['train loss', 'validation loss']);
    expect(lines).to.have.length(2);
    expect(new Set(lines).size).to.equal(2);
    entries.forEach((e, i) => expect([e.swatch, e.text]).to.deep.equal([lines[i], lines[i]]));
  });

  it('training writes a self-contained, well-formed report.html with loss, lr and metric curves, and a report.png', async () => {
    const model = await AutoModel.fromPretrained(fixture('llama'), { quiet: true });
    const out = tempDir();
    const res = await new Trainer({ model, train: lmBatches(1, 4), validation: lmBatches(2, 1), args: { outputDir: out, optimizer: 'sgd',
      learningRate: 0.2, epochs: 3, loggingSteps: 1, evalStrategy: 'steps', evalSteps: 3 } }).train();
    expect(res.report).to.equal(path.join(out, 'report.html'));
    const html = fs.readFileSync(res.report!, 'utf8');
    expect(html.startsWith('<!DOCTYPE html>')).to.equal(true);
    expect(html).not.to.match(/<script|<link|src=|href=/i);
    const counts = wellFormed(html);
    expect(counts.svg).to.be.at.least(4); // loss, lr, perplexity, tokenAccuracy (+ grad norm when reported)
    for (const title of ['Loss', 'Learning rate', 'perplexity', 'tokenAccuracy']) expect(html).to.include(`<title>${title}</title>`);
    // the loss chart's training line has one vertex per logged step (12)
    const lossSvg = html.slice(html.indexOf('<title>Loss</title>'));
    const firstPath = /<path d="([^"]+)"/.exec(lossSvg)![1]!;
    expect(firstPath.split(/[ML]/).filter(Boolean)).to.have.length(12);
    expect(html).to.include('validation loss');
    const png = readPng(path.join(out, 'report.png'));
    expect([png.width, png.height]).to.deep.equal([640, 320]);
    expect(png.pixels.length).to.equal((640 * 3 + 1) * 320);
    let blue = 0;
    for (let i = 0; i + 2 < png.pixels.length; i++) if (png.pixels[i] === 31 && png.pixels[i + 1] === 119 && png.pixels[i + 2] === 180) blue++;
    expect(blue).to.be.above(100); // the training-loss line was drawn
  });

  const small = () => renderReport([{ step: 1, epoch: 0, loss: 1 }, { step: 2, epoch: 0, loss: 0.5 }], { title: '<x> & "y"', summary: { 'a<b': 'c&d' } });

  it('escapes titles and summary text', () => {
    const html = small();
    expect(html).to.include('&lt;x&gt; &amp; &quot;y&quot;');
    expect(html).to.include('<th>a&lt;b</th><td>c&amp;d</td>');
    wellFormed(html);
  });

  it('renders in a headless browser when Debian\'s chromium is installed', function () {
    const html = small();
    const browser = ['chromium', 'chromium-browser'].find((b) => spawnSync('which', [b]).status === 0);
    if (!browser) {
      console.log('      (chromium is not installed: skipping the headless render of the report)');
      this.skip();
    }
    const dir = tempDir();
    const file = path.join(dir, 'report.html');
    fs.writeFileSync(file, html);
    const shot = path.join(dir, 'shot.png');
    const r = spawnSync(browser!, ['--headless', '--no-sandbox', '--disable-gpu', `--screenshot=${shot}`, '--window-size=800,600', `file://${file}`], { timeout: 60000 });
    expect(r.status, String(r.stderr)).to.equal(0);
    expect(fs.statSync(shot).size).to.be.above(1000);
  });
});
