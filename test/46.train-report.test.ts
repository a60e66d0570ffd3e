import { expect } from 'chai';
import * as fs from 'fs';
import * as path from 'path';
import { AutoModel } from '../lib/models';
import { Trainer } from '../lib/train/trainer';
import { renderReport } from '../lib/train/report';
import { niceTicks, tickFormat } from '../lib/train/chart';
import { tempDir } from './helpers';
import { chromiumPath, probeInChromium } from './browser-helpers';
import { countColour, readPng } from './png-helpers';
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
    // The PNG is the report's own loss chart, rendered: the lines and legend in their colours, and the axis titles and
    // ticks (dark text) in the left margin, where the y-axis title stands rotated.
    const png = readPng(path.join(out, 'report.png'));
    expect([png.width, png.height]).to.deep.equal([640, 320]);
    expect(countColour(png, [31, 119, 180])).to.be.above(100); // the training-loss line and its legend swatch
    expect(countColour(png, [214, 39, 40])).to.be.above(20); // the validation-loss line and its legend swatch
    expect(countColour(png, [0, 0, 0], 100, 0, 30)).to.be.above(30); // the rotated y-axis title
  });

  const small = () => renderReport([{ step: 1, epoch: 0, loss: 1 }, { step: 2, epoch: 0, loss: 0.5 }], { title: '<x> & "y"', summary: { 'a<b': 'c&d' } });

  it('escapes titles and summary text', () => {
    const html = small();
    expect(html).to.include('&lt;x&gt; &amp; &quot;y&quot;');
    expect(html).to.include('<th>a&lt;b</th><td>c&amp;d</td>');
    wellFormed(html);
  });

  const classification = () => {
    const history: Record<string, number>[] = [1, 2, 3, 4, 5, 6].map((step) => ({ step, epoch: step / 3, loss: 0.7 - step * 0.05, lr: 2e-5 * (1 - step / 6) }));
    history.push({ step: 3, epoch: 1, eval_loss: 0.6, eval_accuracy: 0.7, eval_precision_neg: 0.65, eval_recall_neg: 0.8, eval_precision_pos: 0.75, eval_recall_pos: 0.6 });
    history.push({ step: 6, epoch: 2, eval_loss: 0.62, eval_accuracy: 0.68, eval_precision_neg: 0.6, eval_recall_neg: 0.9, eval_precision_pos: 0.85, eval_recall_pos: 0.46 });
    return renderReport(history as never, {
      title: 'run', summary: { steps: 6 }, config: { model: 'tiny-bert', method: 'lora', r: 4, 'batch size': 8, 'train examples': 48 },
      comparisons: [{ split: 'validation', before: { loss: 0.69, accuracy: 0.5, precision_neg: 0.5 }, after: { loss: 0.6, accuracy: 0.7, precision_neg: 0.65 } }],
      best: { metric: 'loss', step: 3 }, confusion: { split: 'validation', labels: ['neg', 'pos'], matrix: [[9, 1], [5, 5]] },
    });
  };

  it('axes: titles with units on both axes; ticks on a 1-2-5 grid, each axis in one number format', () => {
    expect(niceTicks(0.4312, 0.7021)).to.deep.equal([0.4, 0.5, 0.6, 0.7, 0.8]);
    expect(niceTicks(1, 12)).to.deep.equal([0, 5, 10, 15]);
    expect([0, 0.5, 1, 1.5].map(tickFormat([0, 0.5, 1, 1.5]))).to.deep.equal(['0.0', '0.5', '1.0', '1.5']);
    expect([0, 5e-6, 1e-5].map(tickFormat([0, 5e-6, 1e-5]))).to.deep.equal(['0.0e+0', '5.0e-6', '1.0e-5']);
    const html = classification();
    const loss = /<svg[^>]*aria-label="Loss"[\s\S]*?<\/svg>/.exec(html)![0];
    expect(loss).to.match(/<text class="axis-title x"[^>]*>step<\/text>/);
    expect(loss).to.match(/<text class="axis-title y"[^>]*>cross-entropy loss \(nats\)<\/text>/);
    const ticks = [...loss.matchAll(/<text class="tick"[^>]*text-anchor="end">([^<]*)</g)].map((m) => m[1]);
    expect(ticks).to.deep.equal(['0.4', '0.5', '0.6', '0.7']);
    expect(html).to.match(/aria-label="Learning rate"[\s\S]*?>learning rate<\/text>/);
  });

  it('tables: the run\'s configuration, metrics before/after, per-label metrics (no per-label charts), the confusion matrix; the best step marked', () => {
    const html = classification();
    const table = (cls: string) => new RegExp(`<table class="${cls}">([\\s\\S]*?)</table>`).exec(html)?.[1] ?? '';
    expect(table('config')).to.include('<th>model</th><td>tiny-bert</td>').and.include('<th>r</th><td>4</td>').and.include('<th>train examples</th><td>48</td>');
    expect(table('before-after')).to.include('<tr><th>validation accuracy</th><td>0.5</td><td>0.7</td><td>0.2</td></tr>');
    expect(table('before-after')).not.to.include('precision_neg');
    expect(table('per-label')).to.include('<tr><th>neg</th><td>validation @6</td><td>0.6</td><td>0.9</td></tr>');
    expect(table('per-label')).to.include('<tr><th>pos</th><td>validation @6</td><td>0.85</td><td>0.46</td></tr>');
    expect(html).not.to.match(/<title>(precision|recall)_/);
    expect(table('confusion')).to.include('<tr><th>neg</th><td>9</td><td>1</td></tr>').and.include('<tr><th>pos</th><td>5</td><td>5</td></tr>');
    const loss = /<svg[^>]*aria-label="Loss"[\s\S]*?<\/svg>/.exec(html)![0];
    expect(loss).to.match(/<g class="mark"><line [^>]*stroke-dasharray[^>]*\/><text[^>]*>best loss \(step 3\)<\/text><\/g>/);
  });

  it('renders in headless Chromium: legend entries in their lines\' colours, axis titles laid out and visible', function () {
    this.timeout(120_000);
    const browser = chromiumPath();
    if (!browser) {
      console.log('      (chromium is not installed — `npm run setup` installs it: skipping the headless render of the report)');
      this.skip();
    }
    const page = probeInChromium(browser!, classification(), `
      return [...document.querySelectorAll('svg')].map((svg) => ({
        chart: svg.getAttribute('aria-label'),
        lines: [...svg.querySelectorAll('path[fill="none"]')].map((p) => getComputedStyle(p).stroke),
        legend: [...svg.querySelectorAll('g.legend-entry')].map((g) => ({ name: g.querySelector('text').textContent,
          swatch: getComputedStyle(g.querySelector('line')).stroke, text: getComputedStyle(g.querySelector('text')).fill })),
        axes: [...svg.querySelectorAll('text.axis-title')].map((t) => ({ text: t.textContent, width: t.getBBox().width,
          visible: getComputedStyle(t).visibility === 'visible' && getComputedStyle(t).display !== 'none', fill: getComputedStyle(t).fill })),
      }));`) as { chart: string; lines: string[]; legend: { name: string; swatch: string; text: string }[]; axes: { text: string; width: number; visible: boolean; fill: string }[] }[];
    expect(page.map((c) => c.chart)).to.deep.equal(['Loss', 'Learning rate', 'accuracy']);
    const loss = page[0]!;
    expect(loss.legend.map((e) => e.name)).to.deep.equal(['train loss', 'validation loss']);
    expect(loss.lines).to.deep.equal(['rgb(31, 119, 180)', 'rgb(214, 39, 40)']);
    loss.legend.forEach((e, i) => expect([e.swatch, e.text], e.name).to.deep.equal([loss.lines[i], loss.lines[i]]));
    for (const c of page) {
      expect(c.axes.map((a) => a.text)[0], c.chart).to.equal('step');
      expect(c.axes).to.have.length(2);
      for (const a of c.axes) {
        expect(a.visible && a.width > 10, `${c.chart}: ${a.text}`).to.equal(true);
        expect(a.fill).to.not.equal('none');
      }
    }
    expect(loss.axes[1]!.text).to.equal('cross-entropy loss (nats)');
  });
});
