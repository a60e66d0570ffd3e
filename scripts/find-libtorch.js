#!/usr/bin/env node
'use strict';
/**
 * Finds the LibTorch that both build routes (cmake-js and node-gyp) compile against.
 * Order: LIBTORCH (an unpacked pytorch.org LibTorch) > Torch_DIR / CMAKE_PREFIX_PATH >
 * the CMake prefix of a Python `torch` > the system (Debian's libtorch-dev).
 *
 *   node scripts/find-libtorch.js              explain the choice (human readable)
 *   node scripts/find-libtorch.js --json       the choice as JSON
 *   node scripts/find-libtorch.js --cmake-dir  the directory holding TorchConfig.cmake
 *   node scripts/find-libtorch.js --gyp include|libs|cflags|ldflags   values for binding.gyp
 *
 * Exits 1 with a message when no LibTorch is found.
 */
const fs = require('fs');
const path = require('path');
const { execFileSync } = require('child_process');

const CONFIG_NAME = 'TorchConfig.cmake';

/** The directory with TorchConfig.cmake under a LibTorch/CMake prefix, or null. */
function cmakeDirUnder(prefix) {
  const candidates = [
    path.join(prefix, 'share', 'cmake', 'Torch'),
    path.join(prefix, 'lib', 'cmake', 'Torch'),
    path.join(prefix, 'lib', 'x86_64-linux-gnu', 'cmake', 'Torch'),
    path.join(prefix, 'lib', 'aarch64-linux-gnu', 'cmake', 'Torch'),
    path.join(prefix, 'cmake', 'Torch'),
    prefix,
  ];
  return candidates.find((d) => fs.existsSync(path.join(d, CONFIG_NAME))) || null;
}

function pythonTorchPrefixes() {
  const found = [];
  for (const py of ['python3', '/usr/bin/python3']) {
    try {
      const out = execFileSync(py, ['-c', 'import torch.utils; print(torch.utils.cmake_prefix_path)'], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'ignore'],
        timeout: 60000,
      }).trim();
      if (out && !found.some((f) => f.prefix === out)) found.push({ python: py, prefix: out });
    } catch {
      /* this python has no torch */
    }
  }
  return found;
}

/** Install prefix (the directory with include/ and lib/) for a TorchConfig.cmake directory. */
function installPrefixOf(cmakeDir) {
  // TorchConfig.cmake computes TORCH_INSTALL_PREFIX as ../../../ from its own directory.
  const up3 = path.resolve(cmakeDir, '..', '..', '..');
  if (fs.existsSync(path.join(up3, 'include', 'torch'))) return up3;
  const up4 = path.resolve(cmakeDir, '..', '..', '..', '..');
  if (fs.existsSync(path.join(up4, 'include', 'torch'))) return up4;
  return up3;
}

function libDirOf(prefix, cmakeDir) {
  const candidates = [path.join(prefix, 'lib'), path.resolve(cmakeDir, '..', '..')];
  return candidates.find((d) => fs.existsSync(path.join(d, 'libtorch.so')) || fs.existsSync(path.join(d, 'libtorch_cpu.so'))) || candidates[0];
}

function describe(cmakeDir, source, why) {
  const prefix = installPrefixOf(cmakeDir);
  const libDir = libDirOf(prefix, cmakeDir);
  const config = fs.readFileSync(path.join(cmakeDir, CONFIG_NAME), 'utf8');
  const abi = /_GLIBCXX_USE_CXX11_ABI=([01])/.exec(config);
  const cuda = fs.existsSync(path.join(libDir, 'libtorch_cuda.so')) || fs.existsSync(path.join(libDir, 'libc10_cuda.so'));
  let version = null;
  const versionHeader = path.join(prefix, 'include', 'torch', 'csrc', 'api', 'include', 'torch', 'version.h');
  if (fs.existsSync(versionHeader)) {
    const text = fs.readFileSync(versionHeader, 'utf8');
    const m = /TORCH_VERSION_MAJOR (\d+)[\s\S]*TORCH_VERSION_MINOR (\d+)[\s\S]*TORCH_VERSION_PATCH (\d+)/.exec(text);
    if (m) version = `${m[1]}.${m[2]}.${m[3]}`;
  }
  // The torch targets' interface definitions (USE_DISTRIBUTED, USE_C10D_GLOO, ...) that CMake consumers get
  // from find_package(Torch); binding.gyp needs them spelled out.
  const defines = new Set();
  const targets = path.resolve(cmakeDir, '..', 'Caffe2', 'Caffe2Targets.cmake');
  if (fs.existsSync(targets)) {
    for (const m of fs.readFileSync(targets, 'utf8').matchAll(/INTERFACE_COMPILE_DEFINITIONS "([^"]*)"/g)) {
      for (const d of m[1].split(';')) if (/^[A-Z0-9_]+(=\w+)?$/.test(d)) defines.add(d);
    }
  }
  return {
    source,
    why,
    defines: [...defines],
    cmakeDir,
    prefix,
    includeDirs: [path.join(prefix, 'include'), path.join(prefix, 'include', 'torch', 'csrc', 'api', 'include')],
    libDir,
    cxx11Abi: abi ? abi[1] : '1',
    cuda,
    version,
  };
}

function findLibtorch(env = process.env) {
  const tried = [];
  if (env.LIBTORCH) {
    const dir = cmakeDirUnder(path.resolve(env.LIBTORCH));
    if (dir) return describe(dir, 'LIBTORCH', `LIBTORCH is set to ${env.LIBTORCH}`);
    throw new Error(`LIBTORCH is set to ${env.LIBTORCH} but no ${CONFIG_NAME} was found under it ` +
      '(expected share/cmake/Torch/TorchConfig.cmake, as in an unpacked pytorch.org LibTorch zip)');
  }
  if (env.Torch_DIR) {
    const dir = cmakeDirUnder(path.resolve(env.Torch_DIR));
    if (dir) return describe(dir, 'Torch_DIR', `Torch_DIR is set to ${env.Torch_DIR}`);
    tried.push(`Torch_DIR=${env.Torch_DIR} (no ${CONFIG_NAME})`);
  }
  if (env.CMAKE_PREFIX_PATH) {
    for (const p of env.CMAKE_PREFIX_PATH.split(path.delimiter).filter(Boolean)) {
      const dir = cmakeDirUnder(path.resolve(p));
      if (dir) return describe(dir, 'CMAKE_PREFIX_PATH', `CMAKE_PREFIX_PATH contains ${p}`);
      tried.push(`CMAKE_PREFIX_PATH entry ${p} (no ${CONFIG_NAME})`);
    }
  }
  if (env.NODETUNE_SKIP_PYTHON_TORCH !== '1') {
    for (const { python, prefix } of pythonTorchPrefixes()) {
      const dir = cmakeDirUnder(prefix);
      if (dir) return describe(dir, 'python-torch', `${python} has torch; torch.utils.cmake_prefix_path is ${prefix}`);
      tried.push(`${python}'s torch at ${prefix} (no ${CONFIG_NAME})`);
    }
  } else {
    tried.push('Python torch (skipped: NODETUNE_SKIP_PYTHON_TORCH=1)');
  }
  for (const prefix of ['/usr', '/usr/local']) {
    const dir = cmakeDirUnder(prefix);
    if (dir) return describe(dir, 'system', `found the system LibTorch under ${prefix}`);
    tried.push(`system prefix ${prefix}`);
  }
  const err = new Error('No LibTorch found. Tried: ' + (tried.length ? tried.join('; ') : 'nothing') +
    '. Run `npm run setup` (installs Debian\'s libtorch-dev), or unpack a LibTorch from pytorch.org and set LIBTORCH=/path/to/libtorch.');
  err.code = 'ERR_NATIVE_LOAD';
  throw err;
}

function gypValue(found, what) {
  switch (what) {
    case 'include':
      return found.includeDirs;
    case 'libs': {
      const libs = ['-ltorch', '-ltorch_cpu', '-lc10'];
      if (found.cuda) libs.push('-ltorch_cuda', '-lc10_cuda');
      return libs;
    }
    case 'ldflags':
      return [`-L${found.libDir}`, `-Wl,-rpath,${found.libDir}`, '-Wl,--no-as-needed'];
    case 'cflags':
      return [`-D_GLIBCXX_USE_CXX11_ABI=${found.cxx11Abi}`, ...found.defines.map((d) => `-D${d}`)];
    default:
      throw new Error(`unknown --gyp value ${what}; use include, libs, ldflags or cflags`);
  }
}

module.exports = { findLibtorch, cmakeDirUnder };

if (require.main === module) {
  const args = process.argv.slice(2);
  let found;
  try {
    found = findLibtorch();
  } catch (e) {
    process.stderr.write(`nodetune: ${e.message}\n`);
    process.exit(1);
  }
  if (args[0] === '--json') process.stdout.write(JSON.stringify(found, null, 2) + '\n');
  else if (args[0] === '--cmake-dir') process.stdout.write(found.cmakeDir);
  else if (args[0] === '--gyp') process.stdout.write(gypValue(found, args[1]).join(' '));
  else {
    process.stdout.write(`LibTorch ${found.version || '(version unknown)'} from ${found.source}: ${found.why}\n` +
      `  TorchConfig.cmake: ${found.cmakeDir}\n  libraries: ${found.libDir}\n  CUDA: ${found.cuda ? 'yes' : 'no'}\n`);
  }
}
