#!/usr/bin/env node
'use strict';
/**
 * Builds the addon with cmake-js into build/Release/nodetune.node (incremental; `--rebuild` starts over).
 * CMake options pass through from the environment: LIBTORCH, Torch_DIR, CMAKE_PREFIX_PATH (see find-libtorch.js),
 * NODETUNE_BUILD_TYPE (Release by default), NODETUNE_JOBS (parallel compile jobs, default: number of cores),
 * NODETUNE_PCH=0 (no precompiled header, like the node-gyp route: catches missing includes).
 */
const os = require('os');
const path = require('path');
const { spawnSync } = require('child_process');

const root = path.resolve(__dirname, '..');
const jobs = Number(process.env.NODETUNE_JOBS) || os.cpus().length;
const command = process.argv.includes('--rebuild') ? 'rebuild' : 'build';
const args = [require.resolve('cmake-js/bin/cmake-js'), command, '--directory', root, '--parallel', String(jobs),
  '--config', process.env.NODETUNE_BUILD_TYPE || 'Release',
  `--CDNODETUNE_PCH=${process.env.NODETUNE_PCH === '0' ? 'OFF' : 'ON'}`];
const result = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit' });
process.exit(result.status === null ? 1 : result.status);
