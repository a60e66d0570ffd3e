import { expect } from 'chai';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { NodetuneError, runtimeInfo } from '../lib';
import { repoRoot, tempDir } from './helpers';

describe('10 loading the addon', () => {
  it('loads the built addon and reports the LibTorch it runs on', () => {
    const info = runtimeInfo();
    expect(info.torchVersion).to.match(/^\d+\.\d+\.\d+/);
    expect(fs.existsSync(info.addon.path)).to.equal(true);
    expect(info.addon.napiVersion).to.equal(8);
    expect(info.threads.hardware).to.be.greaterThan(0);
  });

  it('finds LibTorch with an explanation (scripts/find-libtorch.js)', () => {
    const out = spawnSync(process.execPath, [path.join(repoRoot, 'scripts', 'find-libtorch.js'), '--json'], { encoding: 'utf8' });
    expect(out.status).to.equal(0);
    const found = JSON.parse(out.stdout) as { source: string; why: string; cmakeDir: string };
    expect(['LIBTORCH', 'Torch_DIR', 'CMAKE_PREFIX_PATH', 'python-torch', 'system']).to.include(found.source);
    expect(found.why.length).to.be.greaterThan(10);
    expect(fs.existsSync(path.join(found.cmakeDir, 'TorchConfig.cmake'))).to.equal(true);
  });

  it('honours LIBTORCH first, and says clearly when it points nowhere', () => {
    const bogus = tempDir();
    const out = spawnSync(process.execPath, [path.join(repoRoot, 'scripts', 'find-libtorch.js')], {
      encoding: 'utf8',
      env: { ...process.env, LIBTORCH: bogus },
    });
    expect(out.status).to.equal(1);
    expect(out.stderr).to.include(`LIBTORCH is set to ${bogus}`);
    expect(out.stderr).to.include('TorchConfig.cmake');
  });

  it('a LIBTORCH layout (share/cmake/Torch) is chosen over the system one', () => {
    const found = spawnSync(process.execPath, [path.join(repoRoot, 'scripts', 'find-libtorch.js'), '--json'], { encoding: 'utf8' });
    const real = JSON.parse(found.stdout) as { cmakeDir: string };
    // Build a pytorch.org-shaped tree whose TorchConfig.cmake is the real one.
    const fake = tempDir('nodetune-libtorch-');
    fs.mkdirSync(path.join(fake, 'share', 'cmake', 'Torch'), { recursive: true });
    fs.copyFileSync(path.join(real.cmakeDir, 'TorchConfig.cmake'), path.join(fake, 'share', 'cmake', 'Torch', 'TorchConfig.cmake'));
    fs.mkdirSync(path.join(fake, 'include', 'torch'), { recursive: true });
    fs.mkdirSync(path.join(fake, 'lib'));
    const out = spawnSync(process.execPath, [path.join(repoRoot, 'scripts', 'find-libtorch.js'), '--json'], {
      encoding: 'utf8',
      env: { ...process.env, LIBTORCH: fake },
    });
    expect(out.status).to.equal(0);
    const chosen = JSON.parse(out.stdout) as { source: string; prefix: string; libDir: string };
    expect(chosen.source).to.equal('LIBTORCH');
    expect(chosen.prefix).to.equal(fake);
    expect(chosen.libDir).to.equal(path.join(fake, 'lib'));
  });

  it('binding.gyp compiles the same sources as CMake: every .cc under native/', () => {
    const out = spawnSync(process.execPath, [path.join(repoRoot, 'scripts', 'native-sources.js')], { encoding: 'utf8', cwd: repoRoot });
    expect(out.status, out.stderr).to.equal(0);
    const listed = out.stdout.trim().split(' ').sort();
    const walk = (dir: string): string[] =>
      fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
        e.isDirectory() ? walk(path.join(dir, e.name)) : e.name.endsWith('.cc') ? [path.relative(repoRoot, path.join(dir, e.name))] : []);
    expect(listed).to.deep.equal(walk(path.join(repoRoot, 'native')).sort());
    const gyp = fs.readFileSync(path.join(repoRoot, 'binding.gyp'), 'utf8');
    expect(gyp).to.include('node scripts/native-sources.js');
    for (const flag of ['include', 'libs', 'ldflags', 'cflags']) {
      const r = spawnSync(process.execPath, [path.join(repoRoot, 'scripts', 'find-libtorch.js'), '--gyp', flag], { encoding: 'utf8' });
      expect(r.status, `--gyp ${flag}: ${r.stderr}`).to.equal(0);
      expect(r.stdout.trim().length, flag).to.be.greaterThan(0);
    }
  });

  it('a missing addon is a NodetuneError listing what was tried and what to do', () => {
    const script = `
      process.env.NODETUNE_ADDON = '/nonexistent/nodetune.node';
      try { require(${JSON.stringify(path.join(repoRoot, 'dist', 'lib'))}).runtimeInfo(); }
      catch (e) { console.log(JSON.stringify({ name: e.name, code: e.code, message: e.message })); }`;
    const out = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8' });
    const err = JSON.parse(out.stdout) as { name: string; code: string; message: string };
    expect(err.name).to.equal('NodetuneError');
    expect(err.code).to.equal('ERR_NATIVE_LOAD');
    expect(err.message).to.include('NODETUNE_ADDON=/nonexistent/nodetune.node');
    expect(err.message).to.include('npm run setup');
    expect(err.message).to.include('LIBTORCH');
  });

  it('NodetuneError is exported with a stable code', () => {
    const e = new NodetuneError('ERR_DATA', 'bad line', { file: 'x.jsonl', line: 3 });
    expect(e).to.be.instanceOf(Error);
    expect(e.code).to.equal('ERR_DATA');
    expect(e.details.line).to.equal(3);
  });
});
