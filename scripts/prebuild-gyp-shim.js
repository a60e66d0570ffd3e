#!/usr/bin/env node
'use strict';
/**
 * Stands in for node-gyp when prebuildify builds (PREBUILD_NODE_GYP): `rebuild --target=... --release`
 * becomes an incremental cmake-js build into build/Release, the directory prebuildify collects from.
 */
const path = require('path');
const { spawnSync } = require('child_process');

const args = process.argv.slice(2);
if (args[0] !== 'rebuild') {
  console.error(`prebuild-gyp-shim: only 'rebuild' is supported, got ${args.join(' ')}`);
  process.exit(2);
}
const env = { ...process.env };
if (args.includes('--debug')) env.NODETUNE_BUILD_TYPE = 'Debug';
const result = spawnSync(process.execPath, [path.join(__dirname, 'build-native.js')], { stdio: 'inherit', env });
process.exit(result.status === null ? 1 : result.status);
