import { expect } from 'chai';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { repoRoot, tempDir } from './helpers';

describe('14 prebuilds', () => {
  it('`npm run prebuild` makes a prebuild that node-gyp-build loads', function () {
    this.timeout(600000);
    const out = tempDir('nodetune-prebuild-');
    const result = spawnSync(process.execPath, [path.join(repoRoot, 'scripts', 'prebuild.js'), '--out', out], {
      cwd: repoRoot,
      encoding: 'utf8',
    });
    expect(result.status, result.stderr + result.stdout).to.equal(0);
    const file = path.join(out, 'prebuilds', `${process.platform}-${process.arch}`, 'nodetune.node');
    expect(fs.existsSync(file)).to.equal(true);
    // The development build is still in place.
    expect(fs.existsSync(path.join(repoRoot, 'build', 'Release', 'nodetune.node'))).to.equal(true);
    // A package with only the prebuild (no build/): node-gyp-build must pick the prebuild.
    fs.writeFileSync(path.join(out, 'package.json'), JSON.stringify({ name: 'nodetune', version: '0.0.0' }));
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    const nodeGypBuild = require('node-gyp-build') as { path(dir: string): string };
    expect(nodeGypBuild.path(out)).to.equal(file);
    const check = spawnSync(process.execPath, ['-e', `const b = require('node-gyp-build')(${JSON.stringify(out)}); console.log(b.runtimeInfo().torchVersion)`], {
      cwd: repoRoot,
      encoding: 'utf8',
    });
    expect(check.status, check.stderr).to.equal(0);
    expect(check.stdout.trim()).to.match(/^\d+\.\d+/);
    // And nodetune itself loads it when pointed at it.
    const viaLib = spawnSync(process.execPath, ['-e', `console.log(require(${JSON.stringify(path.join(repoRoot, 'dist', 'lib'))}).runtimeInfo().addon.path)`], {
      encoding: 'utf8',
      env: { ...process.env, NODETUNE_ADDON: file },
    });
    expect(viaLib.stdout.trim()).to.equal(file);
  });
});
