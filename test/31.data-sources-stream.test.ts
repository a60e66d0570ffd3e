import { expect } from 'chai';
import { spawn } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { PassThrough, Readable } from 'stream';
import { readSource } from '../lib/data';
import type { Example, ReadOptions, StreamSource } from '../lib/data';
import { NodetuneError } from '../lib/errors';
import { rejects, repoRoot, tempDir } from './helpers';
import { reviewRows, trainConfig } from './sources-helpers';
import { tinyModelDir } from './60.serve-helpers';

const CLS: ReadOptions = { task: 'classification', columns: { text: 'sentence', label: 'sentiment' } };

async function readAllFrom(spec: StreamSource | string, opts: ReadOptions = CLS): Promise<Example[]> {
  const out: Example[] = [];
  for await (const ex of readSource(spec, opts)) out.push(ex);
  return out;
}

/** `node dist/lib/cli/main.js ARGV` with `input` on its standard input. */
function cli(argv: string[], input: string): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(repoRoot, 'dist', 'lib', 'cli', 'main.js'), ...argv], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, out, err }));
    child.stdin.end(input);
  });
}

describe('31 data sources: standard input and caller streams', function () {
  this.timeout(120_000);
  const rows = reviewRows(12);
  const jsonl = rows.map((r) => JSON.stringify(r) + '\n').join('');

  it('a byte stream is cut into lines whatever its chunks (a character split between two chunks included)', async () => {
    const stream = new PassThrough();
    const bytes = Buffer.from(`{"sentence":"café au lait","sentiment":"pos"}\n${jsonl}`);
    const cut = bytes.indexOf(Buffer.from('é')) + 1; // inside the two bytes of é
    setImmediate(() => {
      stream.write(bytes.subarray(0, cut));
      stream.write(bytes.subarray(cut, cut + 7));
      stream.end(bytes.subarray(cut + 7));
    });
    const got = await readAllFrom({ stream, name: 'feed' });
    expect(got).to.have.length(13);
    expect(got[0]).to.deep.equal({ text: 'café au lait', label: 'pos', source: { file: 'feed', line: 1 } });
    expect(got[12]!.source).to.deep.equal({ file: 'feed', line: 13 });
  });

  it('records from an object stream, an async generator or an array; lines from an async iterable of strings (CSV here)', async () => {
    const fromObjects = await readAllFrom({ stream: Readable.from(rows) });
    expect(fromObjects.map((e) => [e.text, e.label, e.source?.line])).to.deep.equal(rows.map((r, i) => [r.sentence, r.sentiment, i + 1]));
    expect(fromObjects[0]!.source!.file).to.equal('stream');
    const fromArray = await readAllFrom({ stream: rows, name: 'rows' });
    expect(fromArray.map((e) => e.text)).to.deep.equal(rows.map((r) => r.sentence));
    async function* csvLines(): AsyncGenerator<string> {
      yield 'sentence,sentiment\r\n';
      for (const r of rows) yield `${r.sentence},${r.sentiment}`;
    }
    const fromLines = await readAllFrom({ stream: csvLines(), format: 'csv', name: 'service' });
    expect(fromLines.map((e) => [e.text, e.label])).to.deep.equal(rows.map((r) => [r.sentence, r.sentiment]));
    expect(fromLines[0]!.source).to.deep.equal({ file: 'service', line: 2 });
  });

  it('typed errors naming the stream: a failing stream, items of mixed kinds, a record missing a column, items that are neither', async () => {
    const failing = new PassThrough();
    setImmediate(() => {
      failing.write(jsonl.slice(0, 100));
      setImmediate(() => failing.destroy(new Error('upstream reset')));
    });
    const cases: Array<[StreamSource, string]> = [
      [{ stream: failing, name: 'feed' }, 'feed: the stream failed after 100 bytes: upstream reset'],
      [{ stream: [rows[0]!, 'a line'], name: 'mixed' }, 'mixed:2: expected a record (an object) like the first item, got string'],
      [{ stream: [{ sentence: 'no label here' }], name: 'rows' }, 'rows:1: missing column "sentiment" (mapped to "label"); available columns: sentence'],
      [{ stream: [42] as unknown as string[], name: 'numbers' }, 'numbers:1: a stream yields records (objects), lines (strings) or bytes, got number'],
    ];
    for (const [spec, message] of cases) {
      const err = await rejects(readAllFrom(spec));
      expect(err).to.be.instanceOf(NodetuneError);
      expect(err.code).to.equal('ERR_DATA');
      expect(err.message).to.equal(message);
      expect((err as NodetuneError).details.file).to.equal(spec.name);
    }
  });

  it('`-` reads standard input: nodetune tokenize --data - and a config whose data.train is "-"', async () => {
    const model = tinyModelDir('bert-cls', 'encoder');
    const stats = await cli(['tokenize', '--tokenizer', model, '--data', '-', '--column', 'text=sentence', '--column', 'label=sentiment', '--json'], jsonl);
    expect(stats.code, stats.err).to.equal(0);
    expect(JSON.parse(stats.out)).to.include({ file: '-', examples: 12 });
    const work = tempDir('nodetune-stdin-run-');
    const config = path.join(work, 'stdin.yaml');
    fs.writeFileSync(config, trainConfig(model, "  train: '-'\n  split: { validation: 0.25, seed: 2 }", 'run'));
    const trained = await cli(['train', config, '--quiet', '--training.maxSteps', '3'], reviewRows(48).map((r) => JSON.stringify(r)).join('\n'));
    expect(trained.code, trained.err).to.equal(0);
    expect(trained.out).to.contain('stdin: 48 examples');
    expect(fs.existsSync(path.join(work, 'run', 'adapter', 'adapter_model.safetensors'))).to.equal(true);
    fs.rmSync(work, { recursive: true, force: true });
  });

  it('standard input can feed one split only', async () => {
    const work = tempDir('nodetune-stdin-twice-');
    const config = path.join(work, 'twice.yaml');
    fs.writeFileSync(config, trainConfig('unused-model', "  train: '-'\n  validation: '-'", 'run'));
    const r = await cli(['train', config], '');
    expect(r.code).to.equal(2);
    expect(r.err).to.contain('data.validation: standard input ("-") can be read once only, and data.train reads it already');
    fs.rmSync(work, { recursive: true, force: true });
  });
});
