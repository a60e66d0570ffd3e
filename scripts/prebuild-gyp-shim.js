#!/usr/bin/env node
'use strict';
/**
 * Stands in for node-gyp when prebuildify builds (PREBUILD_NODE_GYP): `rebuild --target=... --release`
 * becomes an incremental cmake-js build of build/Release/nodetune.node, copied into the staging directory
 * (NODETUNE_PREBUILD_STAGING) that prebuildify collects from, strips and moves.
 */
const fs = require('fs');
const path = require('path');
const { spawnSync } = require('child_process');

const args = process.argv.slice(2);
if (args[0] !== 'rebuild') {
  console.error(`prebuild-gyp-shim: only 'rebuild' is supported, got ${args.join(' ')}`);
  process.exit(2);
}
const staging = process.env.NODETUNE_PREBUILD_STAGING;
if (!staging) {
  console.error('prebuild-gyp-shim: NODETUNE_PREBUILD_STAGING is not set (run `npm run prebuild`)');
  process.exit(2);
}
const env = { ...process.env };
const config = args.includes('--debug') ? 'Debug' : 'Release';
if (config === 'Debug') env.NODETUNE_BUILD_TYPE = 'Debug';
const result = spawnSync(process.execPath, [path.join(__dirname, 'build-native.js')], { stdio: 'inherit', env });
if (result.status !== 0) process.exit(result.status === null ? 1 : result.status);
const root = path.resolve(__dirname, '..');
const target = path.join(staging, 'build', config);
fs.mkdirSync(target, { recursive: true });
fs.copyFileSync(path.join(root, 'build', 'Release', 'nodetune.node'), path.join(target, 'nodetune.node'));
