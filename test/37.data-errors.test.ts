import { expect } from 'chai';
import * as fs from 'fs';
import * as path from 'path';
import { LabelMap, cleanExamples, labelExamples, readAll, readExamples } from '../lib/data';
import { rejects, tempDir } from './helpers';

function write(name: string, content: string | Buffer): string {
  const file = path.join(tempDir(), name);
  fs.writeFileSync(file, content);
  return file;
}

type Err = Error & { code?: string; details?: { file?: string; line?: number; field?: string } };

async function drain(it: AsyncIterable<unknown>): Promise<void> {
  for await (const _ of it) { /* consume */ }
}

describe('37 data: bad input is a clear error with file and line', function () {
  it('a malformed JSONL line', async function () {
    const file = write('bad.jsonl', '{"text":"ok","label":"a"}\n{"text": "oops",\n');
    const err = (await rejects(readAll(file))) as Err;
    expect(err.code).to.equal('ERR_DATA');
    expect(err.message).to.match(new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}:2: malformed JSON line`));
    expect(err.details).to.include({ file, line: 2 });
  });

  it('a JSONL line that is not an object', async function () {
    const err = (await rejects(readAll(write('arr.jsonl', '[1,2]\n')))) as Err;
    expect(err.message).to.match(/:1: expected a JSON object per example, got an array/);
  });

  it('a missing column lists the available ones (JSONL and CSV, with column mapping)', async function () {
    const jsonl = write('m.jsonl', '{"text":"a","label":"x"}\n{"txt":"b","label":"y"}\n');
    const err = (await rejects(readAll(jsonl, { task: 'classification' }))) as Err;
    expect(err.code).to.equal('ERR_DATA');
    expect(err.message).to.equal(`${jsonl}:2: missing column "text"; available columns: txt, label`);
    expect(err.details).to.include({ file: jsonl, line: 2, field: 'text' });
    const csv = write('m.csv', 'review,stars\ngreat,5\n');
    const err2 = (await rejects(readAll(csv, { task: 'classification', columns: { text: 'review', label: 'sentiment' } }))) as Err;
    expect(err2.message).to.equal(`${csv}:2: missing column "sentiment" (mapped to "label"); available columns: review, stars`);
  });

  it('an error early in a large CSV stops reading at once (no hang on back-pressure)', async function () {
    this.timeout(20000);
    const file = write('big.csv', 'text,label\n' + 'some text here,1\n'.repeat(300000) + 'x\n');
    const err = (await rejects(readAll(file, { task: 'classification', columns: { label: 'stars' } }))) as Err;
    expect(err.message).to.match(/big\.csv:2: missing column "stars"/);
  });

  it('non-UTF-8 bytes in JSONL, CSV, text and JSON files', async function () {
    const latin1 = Buffer.concat([Buffer.from('{"text":"fine"}\n{"text":"caf'), Buffer.from([0xe9]), Buffer.from('"}\n')]);
    const e1 = (await rejects(readAll(write('l1.jsonl', latin1)))) as Err;
    expect(e1.code).to.equal('ERR_DATA');
    expect(e1.message).to.match(/l1\.jsonl:2: the line is not valid UTF-8 \(first bad byte at character 13\)/);
    expect(e1.details).to.include({ line: 2 });
    const csv = Buffer.concat([Buffer.from('text,label\nok,1\nok,1\nbad '), Buffer.from([0xff, 0xfe]), Buffer.from(',0\n')]);
    const e2 = (await rejects(readAll(write('l1.csv', csv)))) as Err;
    expect(e2.message).to.match(/l1\.csv:4: the line is not valid UTF-8/);
    const txt = Buffer.concat([Buffer.from('a\nb\n'), Buffer.from([0xc3, 0x28])]);
    expect(((await rejects(readAll(write('l1.txt', txt)))) as Err).message).to.match(/l1\.txt:3: the line is not valid UTF-8/);
    const json = Buffer.concat([Buffer.from('[\n{"text":"a"},\n{"text":"'), Buffer.from([0x80]), Buffer.from('"}]')]);
    expect(((await rejects(readAll(write('l1.json', json)))) as Err).message).to.match(/l1\.json:3: not valid UTF-8/);
  });

  it('malformed CSV (an unclosed quote, a row with too many fields) and malformed JSON arrays', async function () {
    const quote = (await rejects(readAll(write('q.csv', 'text,label\n"open,1\n')))) as Err;
    expect(quote.code).to.equal('ERR_DATA');
    expect(quote.message).to.match(/q\.csv:\d+: malformed CSV \(CSV_QUOTE_NOT_CLOSED\)/);
    const wide = (await rejects(readAll(write('w.csv', 'text,label\na,1\nb,2,3\n')))) as Err;
    expect(wide.message).to.match(/w\.csv:3: malformed CSV \(CSV_RECORD_INCONSISTENT_COLUMNS\)/);
    const json = (await rejects(readAll(write('j.json', '[\n{"text": "a"},\n{"text": }\n]')))) as Err;
    expect(json.message).to.match(/j\.json:3: malformed JSON/);
    const obj = (await rejects(readAll(write('o.json', '{"text": "a"}')))) as Err;
    expect(obj.message).to.match(/o\.json:1: a \.json data file must hold an array/);
  });

  it('an unknown label names file, line and value', async function () {
    const file = write('l.jsonl', '{"text":"a","label":"pos"}\n{"text":"b","label":"neutral"}\n');
    const err = (await rejects(drain(labelExamples(readExamples(file, { task: 'classification' }), new LabelMap(['neg', 'pos']))))) as Err;
    expect(err.code).to.equal('ERR_DATA');
    expect(err.message).to.equal(`${file}:2: unknown label "neutral" (known: neg, pos)`);
  });

  it('an empty dataset after cleaning names the file and what each step dropped', async function () {
    const file = write('e.jsonl', '{"text":"  "}\n{"text":"<p></p>"}\n{"text":"x"}\n');
    const err = (await rejects(drain(cleanExamples(readExamples(file), { stripHtml: true, minChars: 2 })))) as Err;
    expect(err.code).to.equal('ERR_DATA');
    expect(err.message).to.equal(`no examples left after cleaning ${file}: read 3, kept 0; dropped: empty 2, minChars 1`);
    expect(err.details?.file).to.equal(file);
  });

  it('missing files, directories and unknown extensions', async function () {
    const dir = tempDir();
    expect(((await rejects(readAll(path.join(dir, 'none.jsonl')))) as Err).code).to.equal('ERR_IO');
    expect(((await rejects(readAll(dir, { format: 'jsonl' }))) as Err).message).to.match(/is a directory/);
    const unk = (await rejects(readAll(write('data.parquet', 'x')))) as Err;
    expect(unk.code).to.equal('ERR_ARGUMENT');
    expect(unk.message).to.match(/pass \{ format:/);
  });
});
