#!/usr/bin/env node
'use strict';
/**
 * The one list of C++ sources, shared by CMakeLists.txt and binding.gyp.
 * Every native/**\/*.cc is compiled except the CUDA-only file, which is swapped in when the
 * chosen LibTorch has CUDA (see native/core/cuda_info_*.cc).
 *   node scripts/native-sources.js [--cmake]   paths relative to the repository root
 */
const fs = require('fs');
const path = require('path');
const { findLibtorch } = require('./find-libtorch');

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

function nativeSources(cuda) {
  const skip = cuda ? 'native/core/cuda_info_none.cc' : 'native/core/cuda_info_cuda.cc';
  return walk(path.join(root, 'native')).filter((f) => f !== skip).sort();
}

module.exports = { nativeSources };

if (require.main === module) {
  let cuda = false;
  try {
    cuda = findLibtorch().cuda;
  } catch {
    /* the build itself reports the missing LibTorch */
  }
  const sep = process.argv.includes('--cmake') ? ';' : ' ';
  process.stdout.write(nativeSources(cuda).join(sep));
}
