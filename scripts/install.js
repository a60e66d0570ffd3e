#!/usr/bin/env node
'use strict';
/**
 * npm's install hook.
 * - Installed as a dependency: node-gyp-build loads a matching prebuild from prebuilds/, or else compiles the
 *   addon with node-gyp from binding.gyp (the fallback route; LibTorch found by scripts/find-libtorch.js).
 * - In a development checkout (a .git directory beside package.json, or NODETUNE_DEV_CHECKOUT=1 for a copy of one
 *   without it): nothing; `npm run setup` builds with cmake-js. Set NODETUNE_INSTALL_BUILD=1 to force the
 *   dependency behaviour.
 */
const fs = require('fs');
const path = require('path');
const { spawnSync } = require('child_process');

const root = path.resolve(__dirname, '..');
const devCheckout = fs.existsSync(path.join(root, '.git')) || process.env.NODETUNE_DEV_CHECKOUT === '1';
if (devCheckout && process.env.NODETUNE_INSTALL_BUILD !== '1') {
  console.log('nodetune: development checkout; `npm run setup` (or `npm run build:native`) builds the addon.');
  process.exit(0);
}
const env = { ...process.env };
// node-gyp needs Node's headers; use the ones installed beside this node when npm was not told where they are.
const localHeaders = path.resolve(path.dirname(process.execPath), '..', 'include', 'node');
if (!env.npm_config_nodedir && fs.existsSync(path.join(localHeaders, 'node_api.h'))) {
  env.npm_config_nodedir = path.resolve(localHeaders, '..', '..');
}
const bin = require.resolve('node-gyp-build/bin.js');
const result = spawnSync(process.execPath, [bin], { cwd: root, stdio: 'inherit', env });
if (result.status !== 0) {
  console.error('nodetune: building the native addon failed. Possible solutions: install LibTorch ' +
    "(Debian: `apt-get install libtorch-dev libopenblas0-pthread`), or unpack a LibTorch from pytorch.org and set " +
    'LIBTORCH=/path/to/libtorch, then reinstall. `node scripts/find-libtorch.js` shows which LibTorch is found.');
}
process.exit(result.status === null ? 1 : result.status);
