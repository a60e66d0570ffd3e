import { expect } from 'chai';
import { spawnSync } from 'child_process';
import * as path from 'path';
import { defaultThreadSettings, measureReadBandwidth, runtimeInfo, setNumThreads } from '../lib';
import { main } from '../lib/cli/main';
import { defaultThreadSettings as rule, startupThreadSettings } from '../lib/threads';
import { repoRoot, throws } from './helpers';

describe('13 runtime info, threads and `nodetune doctor`', () => {
  it('measureReadBandwidth: a positive read rate in GB/s; bad arguments are refused', async () => {
    const gbps = await measureReadBandwidth(1 << 22, 2);
    expect(gbps).to.be.a('number').and.to.be.above(0);
    expect(Number.isFinite(gbps)).to.equal(true);
    expect(() => measureReadBandwidth(2, 1)).to.throw(/bytes/);
    expect(() => measureReadBandwidth(1 << 20, 0)).to.throw(/iterations/);
  });

  it('reports BLAS, CUDA and threads', () => {
    const info = runtimeInfo();
    expect(['openblas', 'mkl', 'reference', 'blis', 'unknown']).to.include(info.blas.name);
    expect(info.blas.slow).to.equal(info.blas.name === 'reference');
    if (info.blas.slow) expect(info.warnings.join(' ')).to.include('35x slower');
    expect(info.cudaAvailable).to.equal(info.cudaDevices.length > 0);
    expect(info.threads.intraOp).to.be.greaterThan(0);
  });

  it('applies the measured thread default at load, and setNumThreads changes it', () => {
    const d = defaultThreadSettings();
    expect(runtimeInfo().threads.intraOp).to.equal(d.torch);
    setNumThreads({ torch: 2 });
    expect(runtimeInfo().threads.intraOp).to.equal(2);
    if (runtimeInfo().blas.threads > 0) {
      setNumThreads({ blas: 1 });
      expect(runtimeInfo().blas.threads).to.equal(1);
    }
    setNumThreads(d);
    expect(runtimeInfo().threads.intraOp).to.equal(d.torch);
    expect(throws(() => setNumThreads({ torch: 0 })).code).to.equal('ERR_ARGUMENT');
    expect(throws(() => setNumThreads(1.5)).code).to.equal('ERR_ARGUMENT');
  });

  it('the thread rule: one LibTorch thread beside a threaded BLAS; env overrides', () => {
    expect(rule({ blas: { name: 'openblas' }, hardwareThreads: 2 })).to.deep.equal({ torch: 1, blas: 2 });
    expect(rule({ blas: { name: 'reference' }, hardwareThreads: 4 })).to.deep.equal({ torch: 4, blas: 4 });
    expect(startupThreadSettings({ blas: { name: 'openblas' }, hardwareThreads: 2 }, { NODETUNE_NUM_THREADS: '2' })).to.deep.equal({ torch: 2, blas: 2 });
    const out = spawnSync(process.execPath, ['-e', `console.log(require(${JSON.stringify(path.join(repoRoot, 'dist', 'lib'))}).runtimeInfo().threads.intraOp)`], {
      encoding: 'utf8',
      env: { ...process.env, NODETUNE_NUM_THREADS: '2' },
    });
    expect(out.stdout.trim()).to.equal('2');
  });

  it('`nodetune doctor` prints the report; --json parses; bad usage exits 2', async () => {
    const lines: string[] = [];
    expect(await main(['doctor'], (s) => lines.push(s))).to.equal(0);
    const text = lines.join('\n');
    expect(text).to.include(`LibTorch:     ${runtimeInfo().torchVersion}`);
    expect(text).to.include('BLAS:');
    expect(text).to.include('CUDA:');
    expect(text).to.match(runtimeInfo().heap.blockCache ? /block cache: +tensors' blocks of 256 KiB or more kept for reuse/ : /block cache: +off/);
    lines.length = 0;
    expect(await main(['doctor', '--json', '--matmul'], (s) => lines.push(s))).to.equal(0);
    const json = JSON.parse(lines.join('\n')) as { matmulGflops: number; addon: { path: string } };
    expect(json.matmulGflops).to.be.greaterThan(0);
    expect(json.addon.path).to.match(/\.node$/);
    const errors: string[] = [];
    expect(await main(['doctor', '--bogus'], () => undefined, (s) => errors.push(s))).to.equal(2);
    expect(errors.join('')).to.include('unknown option --bogus');
    expect(await main(['frobnicate'], () => undefined, () => undefined)).to.equal(2);
    expect(await main(['doctor', '--help'], (s) => lines.push(s))).to.equal(0);
  });

  it('the installed bin runs: node dist/lib/cli/main.js doctor', () => {
    const out = spawnSync(process.execPath, [path.join(repoRoot, 'dist', 'lib', 'cli', 'main.js'), 'doctor'], { encoding: 'utf8' });
    expect(out.status).to.equal(0);
    expect(out.stdout).to.include('nodetune ');
  });
});
