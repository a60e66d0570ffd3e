#!/usr/bin/env node
'use strict';
/**
 * `npm run prebuild [-- --out DIR]`: a prebuild in prebuilds/<platform>-<arch>/nodetune.node that
 * node-gyp-build loads before compiling anything. prebuildify drives it; the build itself is the cmake-js
 * one (scripts/prebuild-gyp-shim.js stands in for node-gyp), reusing build/ incrementally. prebuildify
 * strips and moves what it collects, so it works in a staging directory on a copy: the development build
 * (possibly loaded by a running process) is never modified.
 */
const fs = require('fs');
const os = require('os');
const path = require('path');
const { spawnSync } = require('child_process');

const root = path.resolve(__dirname, '..');
const args = process.argv.slice(2);
const outIndex = args.indexOf('--out');
const out = outIndex >= 0 ? path.resolve(args[outIndex + 1]) : root;

const staging = fs.mkdtempSync(path.join(os.tmpdir(), 'nodetune-prebuild-stage-'));
try {
  fs.copyFileSync(path.join(root, 'package.json'), path.join(staging, 'package.json'));
  const result = spawnSync(
    process.execPath,
    [require.resolve('prebuildify/bin.js'), '--napi', '--strip', '--out', out, '--cwd', staging],
    {
      cwd: root,
      stdio: 'inherit',
      env: {
        ...process.env,
        PREBUILD_NODE_GYP: path.join(__dirname, 'prebuild-gyp-shim.js'),
        NODETUNE_PREBUILD_STAGING: staging,
      },
    },
  );
  if (result.status !== 0) process.exit(result.status === null ? 1 : result.status);
} finally {
  fs.rmSync(staging, { recursive: true, force: true });
}

const made = path.join(out, 'prebuilds', `${process.platform}-${process.arch}`, 'nodetune.node');
if (!fs.existsSync(made)) {
  console.error(`nodetune: prebuildify finished but ${made} is missing`);
  process.exit(1);
}
console.log(`nodetune: prebuild written to ${made}`);
