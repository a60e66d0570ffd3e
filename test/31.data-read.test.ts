import { expect } from 'chai';
import * as fs from 'fs';
import * as path from 'path';
import { readAll, readExamples } from '../lib/data';
import { sharedAssets, tempDir } from './helpers';

function write(name: string, content: string | Buffer): string {
  const file = path.join(tempDir(), name);
  fs.writeFileSync(file, content);
  return file;
}

describe('31 data: read', function () {
  it('JSONL: one object per line, blank lines skipped, line numbers kept, column mapping', async function () {
    const file = write('a.jsonl', '{"sentence":"good film","sentiment":"pos"}\n\n{"sentence":"bad film","sentiment":"neg"}\r\n');
    const ex = await readAll(file, { task: 'classification', columns: { text: 'sentence', label: 'sentiment' } });
    expect(ex.map((e) => [e.text, e.label, e.source?.line])).to.deep.equal([['good film', 'pos', 1], ['bad film', 'neg', 3]]);
  });

  it('JSON arrays, with the line each element starts on', async function () {
    const file = write('a.json', '[\n  {"prompt": "2+2=", "completion": "4"},\n  {"prompt": "a \\"[x]\\" {", "completion": "b"}\n]\n');
    const ex = await readAll(file, { task: 'instruction' });
    expect(ex.map((e) => [e.prompt, e.completion, e.source?.line])).to.deep.equal([['2+2=', '4', 2], ['a "[x]" {', 'b', 3]]);
  });

  it('CSV with quotes, embedded commas and newlines (csv-parse), and TSV', async function () {
    const csv = write('a.csv', 'text,label\n"hello, world",1\n"two\nlines",0\nplain,1\n');
    const ex = await readAll(csv, { task: 'classification' });
    expect(ex.map((e) => [e.text, e.label, e.source?.line])).to.deep.equal([['hello, world', '1', 2], ['two\nlines', '0', 3], ['plain', '1', 5]]);
    const tsv = write('b.tsv', 'question\tcontext\tanswers\nWho?\tAnn met Bob.\t{"text":["Ann"],"answer_start":[0]}\n');
    const [qa] = await readAll(tsv, { task: 'qa' });
    expect(qa?.answers).to.deep.equal({ text: ['Ann'], answerStart: [0] });
  });

  it('plain text: a line per example, and a whole corpus in chunks that join back to the file', async function () {
    const file = write('a.txt', 'first line\n\nsecond line\n');
    expect((await readAll(file)).map((e) => e.text)).to.deep.equal(['first line', 'second line']);
    const body = Array.from({ length: 200 }, (_, i) => `line ${i}${i % 7 === 0 ? '\n' : ''}`).join('\n') + '\n';
    const corpus = write('corpus.txt', body);
    const chunks = await readAll(corpus, { format: 'corpus', chunkChars: 100 });
    expect(chunks.length).to.be.greaterThan(5);
    expect(chunks.map((c) => c.text).join('')).to.equal(body);
    expect(chunks[0]?.continuation).to.equal(false);
    expect(chunks.slice(1).every((c) => c.continuation === true && !(c.text ?? '').startsWith('\n'))).to.equal(true);
  });

  it('the `label text` line format (SST-2), including fastText __label__ prefixes', async function () {
    const file = write('sst.train', '1 a gorgeous film\n0 dull\n__label__2 fine\n');
    const ex = await readAll(file, { format: 'label-text' });
    expect(ex.map((e) => [e.label, e.text])).to.deep.equal([['1', 'a gorgeous film'], ['0', 'dull'], ['2', 'fine']]);
    const assets = sharedAssets();
    const sst = assets && path.join(assets, 'datasets/sst2/stsa.binary.dev');
    if (!sst || !fs.existsSync(sst)) return;
    const dev = await readAll(sst, { format: 'label-text' });
    expect(dev.length).to.equal(872);
    expect(new Set(dev.map((e) => e.label))).to.deep.equal(new Set(['0', '1']));
  });

  it('token classification and chat columns: lists from JSON, whitespace-separated lists from CSV', async function () {
    const jsonl = write('a.jsonl', JSON.stringify({ words: ['Ann', 'runs'], ner: ['B-PER', 'O'], messages: [{ role: 'user', content: 'hi' }] }) + '\n');
    const [tc] = await readAll(jsonl, { task: 'token-classification', columns: { tokens: 'words', tags: 'ner' } });
    expect(tc?.tokens).to.deep.equal(['Ann', 'runs']);
    expect(tc?.tags).to.deep.equal(['B-PER', 'O']);
    expect(tc?.messages).to.deep.equal([{ role: 'user', content: 'hi' }]);
    const csv = write('b.csv', 'tokens,tags\nAnn runs,B-PER O\n');
    const [row] = await readAll(csv, { task: 'token-classification' });
    expect(row?.tags).to.deep.equal(['B-PER', 'O']);
  });

  it('streams a large JSONL file in bounded memory', async function () {
    this.timeout(60000);
    const file = path.join(tempDir(), 'big.jsonl');
    const fd = fs.openSync(file, 'w');
    const line = JSON.stringify({ text: 'x'.repeat(400), label: 'a' }) + '\n';
    const block = line.repeat(1000);
    for (let i = 0; i < 120; i++) fs.writeSync(fd, block); // ~50 MB, 120k examples
    fs.closeSync(fd);
    global.gc?.();
    const before = process.memoryUsage().rss;
    let n = 0;
    let peak = 0;
    for await (const ex of readExamples(file, { task: 'classification' })) {
      n++;
      if ((ex.text ?? '').length !== 400) throw new Error('bad text');
      if (n % 10000 === 0) peak = Math.max(peak, process.memoryUsage().rss - before);
    }
    expect(n).to.equal(120000);
    expect(peak).to.be.lessThan(40 * 1024 * 1024); // the file is 50 MB; memory growth stays well under it
  });
});
