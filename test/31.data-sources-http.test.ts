import { expect } from 'chai';
import * as fs from 'fs';
import * as http from 'http';
import type { AddressInfo } from 'net';
import * as path from 'path';
import { describeSource, readSource } from '../lib/data';
import type { Example, HttpSource, ReadOptions } from '../lib/data';
import { NodetuneError } from '../lib/errors';
import { rejects, tempDir } from './helpers';
import { filesContaining, reviewRows, runCli, trainConfig } from './sources-helpers';
import { tinyModelDir } from './60.serve-helpers';

const TOKEN = 'tok-3f9a1c77-nodetune';
const SIGNATURE = 'sig-0b5e2d-secret';
const ROWS = reviewRows(96);
const JSONL = ROWS.map((r) => JSON.stringify(r) + '\n').join('');

/** Resolved by the test once it holds the first example of /gated.jsonl; only then does the server send the rest. */
let releaseGate: () => void = () => undefined;

function serve(req: http.IncomingMessage, res: http.ServerResponse): void {
  const url = new URL(req.url ?? '/', 'http://x');
  const send = (status: number, type: string, body: string): void => {
    res.writeHead(status, { 'content-type': type });
    res.end(body);
  };
  switch (url.pathname) {
    case '/train.jsonl': return send(200, 'application/x-ndjson', JSONL);
    case '/reviews': return send(200, 'text/csv; charset=utf-8', 'sentence,sentiment\n' + ROWS.map((r) => `${r.sentence},${r.sentiment}`).join('\n') + '\n');
    case '/lines.txt': return send(200, 'application/octet-stream', 'first line\n\nsecond line\n');
    case '/secure/train.jsonl':
      if (req.headers.authorization !== `Bearer ${TOKEN}` || url.searchParams.get('sig') !== SIGNATURE) return send(401, 'text/plain', 'no');
      return send(200, 'application/x-ndjson', JSONL);
    case '/missing.jsonl': return send(404, 'text/plain', 'not found');
    case '/broken.jsonl': return send(500, 'text/plain', 'boom');
    case '/echo.jsonl':
      // A server whose status text repeats the request's signature: the message must not.
      res.writeHead(403, `denied: ${url.searchParams.get('key') ?? ''}`, { 'content-type': 'text/plain' });
      return void res.end();
    case '/login.jsonl': return send(200, 'text/html; charset=utf-8', '<!doctype html><html><body><form>Sign in</form></body></html>');
    case '/malformed.jsonl': return send(200, 'application/x-ndjson', JSONL.split('\n').slice(0, 2).join('\n') + '\n{"sentence": "x", \n' + JSONL);
    case '/noformat': return send(200, 'application/octet-stream', JSONL);
    case '/cut.jsonl':
      // Chunked: a few complete lines, then the socket is destroyed before the body ends.
      res.writeHead(200, { 'content-type': 'application/x-ndjson' });
      res.write(JSONL.slice(0, 1000), () => setTimeout(() => res.socket?.destroy(), 50));
      return;
    case '/gated.jsonl': {
      res.writeHead(200, { 'content-type': 'application/x-ndjson' });
      const half = JSONL.indexOf('\n', JSONL.length >> 1) + 1;
      res.write(JSONL.slice(0, half));
      new Promise<void>((resolve) => { releaseGate = resolve; }).then(() => res.end(JSONL.slice(half)), () => undefined);
      return;
    }
    default: return send(404, 'text/plain', 'no route');
  }
}

async function readAllFrom(spec: HttpSource | string, opts: ReadOptions = { task: 'classification', columns: { text: 'sentence', label: 'sentiment' } }): Promise<Example[]> {
  const out: Example[] = [];
  for await (const ex of readSource(spec, opts)) out.push(ex);
  return out;
}

describe('31 data sources: HTTP(S) URLs (a loopback server)', function () {
  this.timeout(120_000);
  const server = http.createServer(serve);
  let base = '';
  const work = tempDir('nodetune-http-run-');

  before(async () => {
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    process.env.NODETUNE_TEST_DATA_TOKEN = TOKEN;
    process.env.NODETUNE_TEST_DATA_URL = `${base}/secure/train.jsonl?sig=${SIGNATURE}`;
  });

  after(async () => {
    delete process.env.NODETUNE_TEST_DATA_TOKEN;
    delete process.env.NODETUNE_TEST_DATA_URL;
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    fs.rmSync(work, { recursive: true, force: true });
  });

  it('reads JSONL and CSV by Content-Type, text by extension, sources named by URL and line', async () => {
    const jsonl = await readAllFrom(`${base}/train.jsonl`);
    expect(jsonl).to.have.length(96);
    expect(jsonl[0]).to.deep.equal({ text: ROWS[0]!.sentence, label: 'pos', source: { file: `${base}/train.jsonl`, line: 1 } });
    const csv = await readAllFrom({ url: `${base}/reviews` });
    expect(csv.map((e) => [e.text, e.label])).to.deep.equal(ROWS.map((r) => [r.sentence, r.sentiment]));
    expect(csv[0]!.source).to.deep.equal({ file: `${base}/reviews`, line: 2 });
    const text = await readAllFrom(`${base}/lines.txt`, {});
    expect(text).to.deep.equal([{ text: 'first line', source: { file: `${base}/lines.txt`, line: 1 } }, { text: 'second line', source: { file: `${base}/lines.txt`, line: 3 } }]);
    // No format from the Content-Type or the URL: given, it reads; not given, ERR_ARGUMENT naming the URL.
    expect(await readAllFrom({ url: `${base}/noformat`, format: 'jsonl' })).to.have.length(96);
    const unknown = await rejects(readAllFrom({ url: `${base}/noformat` }));
    expect(unknown.code).to.equal('ERR_ARGUMENT');
    expect(unknown.message).to.equal(`${base}/noformat: cannot tell the format from the Content-Type "application/octet-stream" or the URL; give format: jsonl | csv | tsv | text | corpus | label-text`);
  });

  it('sends the bearer token from the environment; messages and names leave out the token and the query string', async () => {
    const spec = { url: 'env:NODETUNE_TEST_DATA_URL', bearer: 'env:NODETUNE_TEST_DATA_TOKEN' };
    expect(await readAllFrom(spec)).to.have.length(96);
    expect(describeSource(spec)).to.equal(`${base}/secure/train.jsonl`);
    const denied = await rejects(readAllFrom({ url: `${base}/secure/train.jsonl?sig=${SIGNATURE}`, bearer: 'wrong-token' }));
    expect(denied.code).to.equal('ERR_DATA');
    expect(denied.message).to.equal(`${base}/secure/train.jsonl: HTTP 401 Unauthorized`);
    expect(denied.message).not.to.contain(SIGNATURE);
  });

  it('streams: the first example arrives before the server has sent the rest of the body', async () => {
    let n = 0;
    for await (const ex of readSource(`${base}/gated.jsonl`, { task: 'classification', columns: { text: 'sentence', label: 'sentiment' } })) {
      expect(ex.label).to.be.oneOf(['pos', 'neg']);
      if (++n === 1) releaseGate(); // a reader that waited for the whole body would never get here
    }
    expect(n).to.equal(96);
  });

  it('typed ERR_DATA naming the URL: 404, 500, an HTML page, a malformed line (its number), a connection cut mid-body', async () => {
    const cases: Array<[string, string | RegExp, Record<string, unknown>]> = [
      ['/missing.jsonl', `${base}/missing.jsonl: HTTP 404 Not Found`, { status: 404 }],
      ['/broken.jsonl', `${base}/broken.jsonl: HTTP 500 Internal Server Error`, { status: 500 }],
      ['/echo.jsonl', `${base}/echo.jsonl: HTTP 403 denied: <redacted>`, { status: 403 }],
      ['/login.jsonl', `${base}/login.jsonl: the server answered with an HTML page (Content-Type text/html), not data: a login or error page? Check the URL and the token`, { contentType: 'text/html' }],
      ['/malformed.jsonl', /^http:\/\/127\.0\.0\.1:\d+\/malformed\.jsonl:3: malformed JSON line: /, { line: 3 }],
      ['/cut.jsonl', /^http:\/\/127\.0\.0\.1:\d+\/cut\.jsonl: the connection was lost after 1000 bytes: terminated \(other side closed\)$/, {}],
    ];
    for (const [route, message, details] of cases) {
      const err = await rejects(readAllFrom(`${base}${route}?key=${SIGNATURE}`));
      expect(err, err.stack).to.be.instanceOf(NodetuneError);
      expect(err.code, route).to.equal('ERR_DATA');
      if (typeof message === 'string') expect(err.message).to.equal(message);
      else expect(err.message).to.match(message);
      expect((err as NodetuneError).details).to.include({ file: `${base}${route}`, ...details });
      expect(err.message).not.to.contain(SIGNATURE);
    }
    const closed = http.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const down = await rejects(readAllFrom(`http://127.0.0.1:${port}/train.jsonl`));
    expect(down.code).to.equal('ERR_DATA');
    expect(down.message).to.equal(`http://127.0.0.1:${port}/train.jsonl: cannot fetch: connect ECONNREFUSED 127.0.0.1:${port}`);
  });

  describe('nodetune train from a URL', () => {
    let model: string;
    before(() => {
      model = tinyModelDir('bert-cls', 'encoder');
    });

    it('trains end to end from a bearer-protected URL; neither the token nor the signed query is printed or written', async () => {
      const config = path.join(work, 'url.yaml');
      const data = "  train: { url: env:NODETUNE_TEST_DATA_URL, bearer: env:NODETUNE_TEST_DATA_TOKEN }\n  split: { validation: 0.25, seed: 2 }";
      fs.writeFileSync(config, trainConfig(model, data, 'run-url'));
      const r = await runCli(['train', config, '--quiet']);
      expect(r.code, r.err).to.equal(0);
      expect(r.out).to.contain(`${base}/secure/train.jsonl: 96 examples`);
      expect(r.out).to.match(/validation accuracy\s+[\d.]+\s+[\d.]+/);
      expect(fs.existsSync(path.join(work, 'run-url', 'adapter', 'adapter_model.safetensors'))).to.equal(true);
      expect(filesContaining(path.join(work, 'run-url'), [TOKEN, SIGNATURE])).to.deep.equal([]);
      expect(r.out + r.err).not.to.contain(TOKEN);
      expect(r.out + r.err).not.to.contain(SIGNATURE);
    });

    it('a URL that fails (404, HTML, cut mid-body) exits 1 naming it, and leaves no run folder', async () => {
      for (const route of ['missing.jsonl', 'login.jsonl', 'cut.jsonl']) {
        const config = path.join(work, 'bad-url.yaml');
        fs.writeFileSync(config, trainConfig(model, `  train: ${base}/${route}`, `run-${route}`));
        const r = await runCli(['train', config, '--quiet']);
        expect(r.code, r.err).to.equal(1);
        expect(r.err).to.contain(`nodetune train: ERR_DATA: ${base}/${route}: `);
        expect(fs.existsSync(path.join(work, `run-${route}`)), route).to.equal(false);
      }
    });
  });
});
