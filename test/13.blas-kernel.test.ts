import { expect } from 'chai';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { cpuFeatures, measureMatmul, resolvePrecision, runtimeInfo } from '../lib';
import { blasKernelWarnings, chooseBlasKernel, decideBlasKernel, isOpenblasKernel, recommendedKernel } from '../lib/blas-kernel';
import { parseCpuinfo } from '../lib/cpu';
import { resolveArgs } from '../lib/train/args';
import { repoRoot, throws } from './helpers';

const lib = path.join(repoRoot, 'dist', 'lib');

/** runtimeInfo() of a fresh process with this environment (OPENBLAS_CORETYPE / NODETUNE_BLAS_KERNEL varied). */
function childInfo(env: Record<string, string | undefined>): { info: ReturnType<typeof runtimeInfo>; env: string | null } {
  const base: NodeJS.ProcessEnv = { ...process.env };
  delete base.OPENBLAS_CORETYPE;
  delete base.NODETUNE_BLAS_KERNEL;
  for (const [k, v] of Object.entries(env)) if (v !== undefined) base[k] = v;
  const script = `const i = require(${JSON.stringify(lib)}).runtimeInfo();` +
    'console.log(JSON.stringify({ info: i, env: process.env.OPENBLAS_CORETYPE ?? null }))';
  const out = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', env: base });
  expect(out.status, out.stderr).to.equal(0);
  return JSON.parse(out.stdout.trim().split('\n').pop()!) as { info: ReturnType<typeof runtimeInfo>; env: string | null };
}

const ZEN4 = 'vendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC\nflags\t\t: fpu sse avx avx2 fma avx512f avx512dq avx512cd avx512bw avx512vl avx512_bf16\n';
const SPR = 'vendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R) Platinum 8481C\nflags\t\t: avx2 fma avx512f avx512dq avx512cd avx512bw avx512vl avx512_bf16 amx_bf16 amx_tile amx_int8\n';
const SKX = 'vendor_id\t: GenuineIntel\nflags\t\t: avx2 fma avx512f avx512dq avx512cd avx512bw avx512vl\n';
const HSW = 'vendor_id\t: GenuineIntel\nflags\t\t: avx avx2 fma\n';
const ZEN2 = 'vendor_id\t: AuthenticAMD\nflags\t\t: avx avx2 fma\n';
const OLD = 'vendor_id\t: GenuineIntel\nflags\t\t: sse sse2 avx\n';

describe('13 BLAS kernel, CPU features, bf16 and precision auto', () => {
  it('reads CPU features and picks the fastest OpenBLAS kernel they can run', () => {
    const zen4 = parseCpuinfo(ZEN4);
    expect(zen4).to.include({ vendor: 'AuthenticAMD', model: 'AMD EPYC', avx512: true, avx512Bf16: true, amxBf16: false, fastBf16: true });
    expect(parseCpuinfo(SPR)).to.include({ avx512Bf16: true, amxBf16: true, fastBf16: true });
    expect(parseCpuinfo(SKX)).to.include({ avx512: true, avx512Bf16: false, fastBf16: false });
    expect(parseCpuinfo(HSW)).to.include({ avx2: true, avx512: false, fastBf16: false });
    expect(recommendedKernel(zen4, 'x64')).to.equal('Cooperlake');
    expect(recommendedKernel(parseCpuinfo(SPR), 'x64')).to.equal('Cooperlake');
    expect(recommendedKernel(parseCpuinfo(SKX), 'x64')).to.equal('SkylakeX');
    expect(recommendedKernel(parseCpuinfo(HSW), 'x64')).to.equal('Haswell');
    expect(recommendedKernel(parseCpuinfo(ZEN2), 'x64')).to.equal('Zen');
    expect(recommendedKernel(parseCpuinfo(OLD), 'x64')).to.equal(undefined);
    expect(recommendedKernel(zen4, 'arm64')).to.equal(undefined);
    expect(parseCpuinfo('')).to.include({ avx2: false, fastBf16: false, model: '' });
    for (const k of ['haswell', 'SKYLAKEX', 'Cooperlake', 'Zen']) expect(isOpenblasKernel(k), k).to.equal(true);
    expect(isOpenblasKernel('bogus')).to.equal(false);
  });

  it('sets OPENBLAS_CORETYPE only when the user has not, and never over their value', () => {
    const cpu = parseCpuinfo(SKX);
    const fresh = () => (c: typeof cpu, env: NodeJS.ProcessEnv) => decideBlasKernel(c, env, 'x64');
    const unset: NodeJS.ProcessEnv = {};
    expect(fresh()(cpu, unset)).to.deep.include({ setBy: 'nodetune', setValue: 'SkylakeX' });
    expect(unset.OPENBLAS_CORETYPE).to.equal('SkylakeX');
    const user: NodeJS.ProcessEnv = { OPENBLAS_CORETYPE: 'Haswell' };
    expect(fresh()(cpu, user)).to.deep.include({ setBy: 'user', userValue: 'Haswell', setValue: undefined });
    expect(user.OPENBLAS_CORETYPE).to.equal('Haswell');
    const empty: NodeJS.ProcessEnv = { OPENBLAS_CORETYPE: '' };
    expect(fresh()(cpu, empty)).to.deep.include({ setBy: 'user', userValue: '' });
    const off: NodeJS.ProcessEnv = { NODETUNE_BLAS_KERNEL: 'off' };
    expect(fresh()(cpu, off)).to.deep.include({ setBy: 'openblas' });
    expect(off.OPENBLAS_CORETYPE).to.equal(undefined);
    // The process's own decision, made once when the addon loaded, stays.
    runtimeInfo();
    const env: NodeJS.ProcessEnv = {};
    expect(chooseBlasKernel(cpu, env)).to.equal(chooseBlasKernel(parseCpuinfo(HSW), env));
    expect(env).to.deep.equal({});
  });

  it('warns when OpenBLAS did not take the kernel: a user value that names none, or a library loaded too early', () => {
    const bogus = blasKernelWarnings({ userValue: 'bogus', setValue: undefined, recommended: 'SkylakeX', setBy: 'user' }, 'Prescott');
    expect(bogus).to.have.length(1);
    expect(bogus[0]).to.include('OPENBLAS_CORETYPE="bogus" was not taken').and.include('known names:').and.include('SkylakeX');
    expect(blasKernelWarnings({ userValue: 'haswell', setValue: undefined, recommended: 'SkylakeX', setBy: 'user' }, 'Haswell')).to.deep.equal([]);
    const early = blasKernelWarnings({ userValue: undefined, setValue: 'Cooperlake', recommended: 'Cooperlake', setBy: 'nodetune' }, 'Prescott');
    expect(early[0]).to.include('OPENBLAS_CORETYPE=Cooperlake in its environment');
    expect(blasKernelWarnings({ userValue: undefined, setValue: 'SkylakeX', recommended: 'SkylakeX', setBy: 'nodetune' }, '')).to.deep.equal([]);
  });

  it('runtimeInfo() says which kernel runs and who chose it, in a fresh process', function () {
    this.timeout(60000);
    const info = runtimeInfo();
    expect(info.cpu).to.deep.equal(cpuFeatures());
    if (info.blas.name !== 'openblas' || !info.blas.kernel) this.skip();
    const auto = childInfo({});
    if (auto.info.blas.recommendedKernel) {
      expect(auto.info.blas.kernelSetBy).to.equal('nodetune');
      expect(auto.env).to.equal(auto.info.blas.recommendedKernel);
      expect(auto.info.blas.kernel.toLowerCase()).to.equal(auto.info.blas.recommendedKernel.toLowerCase());
    }
    const user = childInfo({ OPENBLAS_CORETYPE: 'Haswell' });
    expect(user.info.blas).to.include({ kernelSetBy: 'user', kernel: 'Haswell' });
    expect(user.info.warnings.join(' ')).not.to.include('OPENBLAS_CORETYPE');
    const off = childInfo({ NODETUNE_BLAS_KERNEL: 'off' });
    expect(off.env).to.equal(null);
    expect(off.info.blas.kernelSetBy).to.equal('openblas');
  });

  it('a user OPENBLAS_CORETYPE that names no kernel: doctor warns, nothing crashes', function () {
    this.timeout(60000);
    if (runtimeInfo().blas.name !== 'openblas') this.skip();
    const out = spawnSync(process.execPath, [path.join(lib, 'cli', 'main.js'), 'doctor'], {
      encoding: 'utf8', env: { ...process.env, OPENBLAS_CORETYPE: 'NoSuchCore' },
    });
    expect(out.status, out.stderr).to.equal(0);
    expect(out.stdout).to.include('WARNING: OPENBLAS_CORETYPE="NoSuchCore" was not taken');
    expect(out.stdout).to.include('set by you');
  });

  it('OpenBLAS loaded before nodetune (a host program): the kernel differs from the choice and runtimeInfo() warns with the cure (doctor prints it)', function () {
    this.timeout(60000);
    const info = runtimeInfo();
    const blas = '/usr/lib/x86_64-linux-gnu/libblas.so.3';
    if (info.blas.name !== 'openblas' || !info.blas.recommendedKernel || !fs.existsSync(blas)) this.skip();
    const other = info.blas.recommendedKernel === 'Sandybridge' ? 'Haswell' : 'Sandybridge';
    // The preloaded OpenBLAS initialises with `other`; the variable is gone by the time nodetune looks.
    const script = `delete process.env.OPENBLAS_CORETYPE; const i = require(${JSON.stringify(lib)}).runtimeInfo(); console.log(JSON.stringify(i))`;
    const out = spawnSync(process.execPath, ['-e', script], {
      encoding: 'utf8', env: { ...process.env, LD_PRELOAD: blas, OPENBLAS_CORETYPE: other, NODETUNE_BLAS_KERNEL: '' },
    });
    expect(out.status, out.stderr).to.equal(0);
    const child = JSON.parse(out.stdout.trim().split('\n').pop()!) as ReturnType<typeof runtimeInfo>;
    expect(child.blas.kernel).to.equal(other);
    expect(child.blas.kernelSetBy).to.equal('nodetune');
    expect(child.warnings.join(' ')).to.include(`not ${info.blas.recommendedKernel} which nodetune chose`)
      .and.include(`OPENBLAS_CORETYPE=${info.blas.recommendedKernel} in its environment`);
  });

  it('measures bf16 products and validates the options', async function () {
    this.timeout(60000);
    const bf16 = await measureMatmul(256, 4, { dtype: 'bfloat16', threads: 1 });
    expect(bf16).to.be.greaterThan(0);
    expect(runtimeInfo().threads.intraOp).to.equal(runtimeInfo().threads.intraOp); // restored (no throw above)
    expect(throws(() => measureMatmul(256, 1, { dtype: 'float16' as 'bfloat16' })).code).to.equal('ERR_ARGUMENT');
    expect(throws(() => measureMatmul(256, 1, { threads: -1 })).code).to.equal('ERR_ARGUMENT');
  });

  it("precision 'auto': bf16 on a CPU with fast bf16, fp32 elsewhere; accepted by the training arguments", () => {
    expect(resolvePrecision('auto', 'cpu')).to.equal(cpuFeatures().fastBf16 ? 'bf16' : 'fp32');
    expect(resolvePrecision('fp32', 'cpu')).to.equal('fp32');
    expect(resolvePrecision('bf16', 'cpu')).to.equal('bf16');
    expect(throws(() => resolvePrecision('auto', 'tpu')).code).to.equal('ERR_ARGUMENT');
    if (!runtimeInfo().cudaAvailable) expect(resolvePrecision('auto', 'cuda:0')).to.equal('fp32');
    expect(resolveArgs({ outputDir: '/tmp/x', precision: 'auto' }, false).precision).to.equal('auto');
  });
});
