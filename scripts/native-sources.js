#!/usr/bin/env node
'use strict';
/**
 * The C++ sources binding.gyp compiles; CMakeLists.txt globs the same rule (every .cc under native/).
 * Every native/**\/*.cc is compiled, for CPU and CUDA LibTorch alike (device is data).
 *   node scripts/native-sources.js [--cmake]   paths relative to the repository root
 */
const fs = require('fs');
const path = require('path');

const root = path.resolve(__dirname, '..');

function walk(dir) {
  const out = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...walk(full));
    else if (entry.name.endsWith('.cc')) out.push(path.relative(root, full).split(path.sep).join('/'));
  }
  return out;
}

function nativeSources() {
  return walk(path.join(root, 'native')).sort();
}

module.exports = { nativeSources };

if (require.main === module) {
  const sep = process.argv.includes('--cmake') ? ';' : ' ';
  process.stdout.write(nativeSources().join(sep));
}
