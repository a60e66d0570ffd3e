import { expect } from 'chai';
import { spawn } from 'child_process';
import * as path from 'path';
import { main } from '../lib/cli/main';
import { repoRoot } from './helpers';
import { tinyModelDir, trainedLora } from './60.serve-helpers';

async function run(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(argv, (s) => (out += s + '\n'), (s) => (err += s + '\n'));
  return { code, out, err };
}

describe('62 nodetune serve (CLI)', () => {
  it('help, and usage errors exit 2', async () => {
    const help = await run(['serve', '--help']);
    expect(help.code).to.equal(0);
    expect(help.out).to.match(/--model DIR/).and.match(/--adapter NAME=DIR/).and.match(/127\.0\.0\.1/);
    expect((await run(['--help'])).out).to.match(/serve\s+an HTTP server/);
    const missing = await run(['serve']);
    expect(missing.code).to.equal(2);
    expect(missing.err).to.match(/--model DIR is required/);
    expect((await run(['serve', '--model', 'x', '--port', 'http'])).err).to.match(/--port must be an integer >= 0, got 'http'/);
    expect((await run(['serve', '--model', 'x', '--adapter', 'fr'])).err).to.match(/--adapter takes NAME=DIR/);
    expect((await run(['serve', '--model', 'x', '--bogus'])).code).to.equal(2);
  });

  it('a missing model directory or a folder that is no adapter exits 1 with the reason', async () => {
    const nodir = await run(['serve', '--model', path.join(repoRoot, 'no-such-model'), '--port', '0']);
    expect(nodir.code).to.equal(1);
    expect(nodir.err).to.match(/no-such-model/);
    const dir = tinyModelDir('bert-cls', 'encoder');
    const ad = await run(['serve', '--model', dir, '--port', '0', '--adapter', `fr=${dir}`]);
    expect(ad.code).to.equal(1);
    expect(ad.err).to.match(/ERR_IO: .*adapter_config\.json/);
  });

  it('serves on loopback (token from $NODETUNE_API_KEY, an adapter) until SIGTERM, then drains and exits 0', async function () {
    const dir = tinyModelDir('bert-cls', 'encoder');
    const lora = await trainedLora(dir, ['query', 'value']);
    const child = spawn(process.execPath, [path.join(repoRoot, 'dist', 'lib', 'cli', 'main.js'), 'serve', '--model', dir, '--port', '0', '--name', 'clf', '--adapter', `fr=${lora}`],
      { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NODETUNE_API_KEY: 'k1' } });
    let out = '';
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      const url = await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no listening line within 30 s: ${out}`)), 30_000);
        child.stdout.on('data', (d: Buffer) => {
          out += d.toString();
          const m = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(out);
          if (m) clearTimeout(timer), resolve(m[1]!);
        });
      });
      expect(out).to.match(/clf \(sequence-classification\) listening on .* \(bearer token required\)/);
      const body = JSON.stringify({ input: 'the cat', model: 'clf:fr' });
      const anon = await fetch(`${url}/v1/classify`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
      expect(anon.status).to.equal(401);
      const r = await fetch(`${url}/v1/classify`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: 'Bearer k1' }, body });
      expect(r.status).to.equal(200);
      child.kill('SIGTERM');
      expect(await exited).to.equal(0);
      expect(out).to.match(/SIGTERM: draining/).and.match(/stopped/);
      // The request log, on by default in the CLI (--quiet turns it off): one line per request.
      expect(out.match(/^POST \/v1\/classify 401 \d+\.\d ms$/gm)).to.have.length(1);
      expect(out.match(/^POST \/v1\/classify 200 \d+\.\d ms$/gm)).to.have.length(1);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });
});
