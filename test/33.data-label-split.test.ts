import { expect } from 'chai';
import * as fs from 'fs';
import * as path from 'path';
import { LabelMap, labelExamples, readSplits, splitExamples } from '../lib/data';
import type { Example, Labelled } from '../lib/data';
import { rejects, tempDir, throws } from './helpers';

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

describe('33 data: label and split', function () {
  it('builds label maps from the data (names sorted, numbers numerically) and from id2label', function () {
    expect(LabelMap.fromExamples([{ label: 'pos' }, { label: 'neg' }, { label: 'pos' }]).labels).to.deep.equal(['neg', 'pos']);
    expect(LabelMap.fromExamples([{ label: 10 }, { label: 2 }, { label: '1' }]).labels).to.deep.equal(['1', '2', '10']);
    expect(LabelMap.fromExamples([{ tags: ['O', 'B-PER'] }, { tags: ['I-PER'] }], 'tags').labels).to.deep.equal(['B-PER', 'I-PER', 'O']);
    const m = LabelMap.fromConfig({ 1: 'positive', 0: 'negative' });
    expect(m.labels).to.deep.equal(['negative', 'positive']);
    expect(m.encode('positive')).to.equal(1);
    expect(m.encode(0)).to.equal(0); // integer labels stand for ids when the names are not numbers
    expect(m.toConfig()).to.deep.equal({ id2label: { 0: 'negative', 1: 'positive' }, label2id: { negative: 0, positive: 1 } });
    expect(m.decode(1)).to.equal('positive');
  });

  it('an unknown label is ERR_DATA with file, line and value; onInvalid skip counts instead', async function () {
    const m = new LabelMap(['neg', 'pos']);
    const data: Example[] = [
      { text: 'a', label: 'pos', source: { file: 'x.csv', line: 2 } },
      { text: 'b', label: 'meh', source: { file: 'x.csv', line: 3 } },
    ];
    const err = await rejects(collect(labelExamples(data, m)));
    expect(err.code).to.equal('ERR_DATA');
    expect(err.message).to.equal('x.csv:3: unknown label "meh" (known: neg, pos)');
    expect((err as unknown as { details: object }).details).to.include({ file: 'x.csv', line: 3, value: 'meh' });
    const counts = { skipped: 0 };
    const kept: Labelled[] = await collect(labelExamples(data, m, { onInvalid: 'skip' }, counts));
    expect(kept.map((e) => e.labelId)).to.deep.equal([1]);
    expect(counts.skipped).to.equal(1);
    const tags = await collect(labelExamples([{ tags: ['O', 'B'] }], new LabelMap(['B', 'O']), { field: 'tags' }));
    expect(tags[0]?.tagIds).to.deep.equal([1, 0]);
  });

  it('splits by ratios, repeatably for a seed, and differently for another seed', function () {
    const data: Example[] = Array.from({ length: 100 }, (_, i) => ({ text: `t${i}` }));
    const a = splitExamples(data, { ratios: { train: 0.8, validation: 0.1, test: 0.1 }, seed: 1 });
    expect([a.train.length, a.validation.length, a.test.length]).to.deep.equal([80, 10, 10]);
    const all = new Set([...a.train, ...a.validation, ...a.test].map((e) => e.text));
    expect(all.size).to.equal(100);
    const b = splitExamples(data, { ratios: { train: 0.8, validation: 0.1, test: 0.1 }, seed: 1 });
    expect(b.test.map((e) => e.text)).to.deep.equal(a.test.map((e) => e.text));
    const c = splitExamples(data, { ratios: { train: 0.8, validation: 0.1, test: 0.1 }, seed: 2 });
    expect(c.test.map((e) => e.text)).to.not.deep.equal(a.test.map((e) => e.text));
    expect(throws(() => splitExamples(data, { ratios: { train: 0.8, validation: 0.3 } })).code).to.equal('ERR_ARGUMENT');
  });

  it('stratifies by label: every split keeps the label proportions', function () {
    const data: Example[] = Array.from({ length: 200 }, (_, i) => ({ text: `t${i}`, label: i < 160 ? 'a' : 'b' }));
    const s = splitExamples(data, { ratios: { train: 0.5, validation: 0.25, test: 0.25 }, seed: 3, stratify: true });
    const count = (xs: Example[], l: string): number => xs.filter((e) => e.label === l).length;
    expect([count(s.train, 'a'), count(s.train, 'b')]).to.deep.equal([80, 20]);
    expect([count(s.validation, 'a'), count(s.validation, 'b')]).to.deep.equal([40, 10]);
    expect([count(s.test, 'a'), count(s.test, 'b')]).to.deep.equal([40, 10]);
  });

  it('reads splits from separate files', async function () {
    const dir = tempDir();
    fs.writeFileSync(path.join(dir, 'train.jsonl'), '{"text":"a","label":"x"}\n{"text":"b","label":"y"}\n');
    fs.writeFileSync(path.join(dir, 'dev.jsonl'), '{"text":"c","label":"x"}\n');
    const s = await readSplits({ train: path.join(dir, 'train.jsonl'), validation: path.join(dir, 'dev.jsonl') }, { task: 'classification' });
    expect([s.train.length, s.validation.length, s.test.length]).to.deep.equal([2, 1, 0]);
    expect(s.validation[0]?.source?.file).to.equal(path.join(dir, 'dev.jsonl'));
  });
});
