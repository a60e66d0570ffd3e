#!/usr/bin/env node
'use strict';
/**
 * `npm run prebuild [-- --out DIR]`: a prebuild in prebuilds/<platform>-<arch>/nodetune.node that
 * node-gyp-build loads before compiling anything. prebuildify drives the build; the build itself is the
 * cmake-js one (scripts/prebuild-gyp-shim.js stands in for node-gyp), so it reuses build/ incrementally.
 * prebuildify moves the built file away; it is copied back so the development build stays in place.
 */
const fs = require('fs');
const path = require('path');
const { spawnSync } = require('child_process');

const root = path.resolve(__dirname, '..');
const args = process.argv.slice(2);
const outIndex = args.indexOf('--out');
const out = outIndex >= 0 ? path.resolve(args[outIndex + 1]) : root;

const result = spawnSync(
  process.execPath,
  [require.resolve('prebuildify/bin.js'), '--napi', '--strip', '--out', out],
  { cwd: root, stdio: 'inherit', env: { ...process.env, PREBUILD_NODE_GYP: path.join(__dirname, 'prebuild-gyp-shim.js') } },
);
if (result.status !== 0) process.exit(result.status === null ? 1 : result.status);

const made = path.join(out, 'prebuilds', `${process.platform}-${process.arch}`, 'nodetune.node');
if (!fs.existsSync(made)) {
  console.error(`nodetune: prebuildify finished but ${made} is missing`);
  process.exit(1);
}
fs.mkdirSync(path.join(root, 'build', 'Release'), { recursive: true });
fs.copyFileSync(made, path.join(root, 'build', 'Release', 'nodetune.node'));
console.log(`nodetune: prebuild written to ${made}`);
