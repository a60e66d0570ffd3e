#!/usr/bin/env node
'use strict';
/**
 * `npm run test:install`: proves the node-gyp route. Packs nodetune as npm would publish it (no prebuilds/,
 * no build/), installs the tarball into a fresh project, where the install hook must compile the addon with
 * node-gyp from binding.gyp, then loads it there and runs `nodetune doctor`.
 */
const fs = require('fs');
const os = require('os');
const path = require('path');
const { execFileSync } = require('child_process');

const root = path.resolve(__dirname, '..');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'nodetune-install-'));
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

function run(cmd, args, cwd) {
  console.log(`$ (${cwd}) ${cmd} ${args.join(' ')}`);
  return execFileSync(cmd, args, { cwd, stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8', env: { ...process.env, CI: 'true', JOBS: 'max' } });
}

try {
  if (!fs.existsSync(path.join(root, 'dist', 'lib', 'index.js'))) throw new Error('dist/ is missing: run `npm run build:ts` first');
  const packDir = path.join(work, 'pack');
  fs.mkdirSync(packDir);
  const packed = JSON.parse(run(npm, ['pack', '--json', '--ignore-scripts', '--pack-destination', packDir], root));
  const files = packed[0].files.map((f) => f.path);
  const stray = files.filter((f) => f.startsWith('prebuilds/') || f.startsWith('build/'));
  if (stray.length) throw new Error(`the package would ship build outputs: ${stray.join(', ')}`);
  const tarball = path.join(packDir, packed[0].filename);

  const app = path.join(work, 'app');
  fs.mkdirSync(app);
  fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'nodetune-install-check', version: '1.0.0', private: true }));
  const started = Date.now();
  run(npm, ['install', '--no-audit', '--no-fund', '--foreground-scripts', tarball], app);
  console.log(`installed (with the node-gyp build) in ${((Date.now() - started) / 1000).toFixed(0)} s`);

  const installed = path.join(app, 'node_modules', 'nodetune');
  const built = path.join(installed, 'build', 'Release', 'nodetune.node');
  if (!fs.existsSync(built)) throw new Error(`node-gyp did not produce ${built}`);
  const info = JSON.parse(run(process.execPath, ['-e', "console.log(JSON.stringify(require('nodetune').runtimeInfo()))"], app));
  if (path.resolve(info.addon.path) !== path.resolve(built)) throw new Error(`loaded ${info.addon.path}, expected ${built}`);
  const doctor = run(path.join(app, 'node_modules', '.bin', 'nodetune'), ['doctor'], app);
  if (!doctor.includes(`LibTorch:     ${info.torchVersion}`)) throw new Error(`unexpected doctor output:\n${doctor}`);
  console.log(doctor);
  console.log('install route: 1 passed, 0 failed');
} catch (e) {
  console.error(`install route: ${e.message}`);
  console.log('install route: 0 passed, 1 failed');
  process.exitCode = 1;
} finally {
  if (!process.env.NODETUNE_KEEP_INSTALL_CHECK) fs.rmSync(work, { recursive: true, force: true });
}
