#!/usr/bin/env node
'use strict';
/**
 * npm run test:numerics: the numerics-heavy tests (model outputs, training, pipelines, generation, distributed)
 * once more with OpenBLAS forced to another kernel than the one nodetune chooses for this CPU, so that an
 * assertion that only holds with one kernel's rounding fails here, where it can be seen, and not on the next
 * machine. OPENBLAS_CORETYPE set by the caller is used as it is. Run after `npm run setup` (needs dist/).
 */
const path = require('path');
const { spawnSync } = require('child_process');

const root = path.resolve(__dirname, '..');
const { cpuFeatures } = require(path.join(root, 'dist', 'lib', 'cpu.js'));
const { recommendedKernel } = require(path.join(root, 'dist', 'lib', 'blas-kernel.js'));

/** Test files whose assertions rest on float arithmetic through the models: steps, models, generation metrics,
 * trainer, PEFT, quantized bases and decoding kernels, fused decoding and training ops against the ATen ones,
 * pipelines, serving, CLI runs, the demo, distributed (about a minute here). */
const NUMERICS = 'dist/test/{1[7-9],2?,4[1578],5[1-9],6[0145689],7[1345],80}.*.test.js';

const usual = recommendedKernel(cpuFeatures());
const other = usual === 'Haswell' || usual === 'Zen' ? 'Sandybridge' : 'Haswell';
// Two passes: another kernel; then the same kernel with two LibTorch threads (other reduction orders) and the
// portable q8 int8 decoding kernel, which every CPU runs (its sums in another order than the SIMD kernels').
const passes = process.env.OPENBLAS_CORETYPE !== undefined
  ? [{ OPENBLAS_CORETYPE: process.env.OPENBLAS_CORETYPE }]
  : [{ OPENBLAS_CORETYPE: other }, { OPENBLAS_CORETYPE: other, NODETUNE_NUM_THREADS: '2', NODETUNE_INT8_DECODE: 'q8' }];
const mocha = require.resolve('mocha/bin/mocha.js');
for (const env of passes) {
  const what = Object.entries(env).map(([k, v]) => `${k}=${v}`).join(' ');
  console.log(`nodetune test:numerics: ${what} (this CPU's usual kernel: ${usual ?? "OpenBLAS's own choice"})`);
  const result = spawnSync(process.execPath, [mocha, NUMERICS], { cwd: root, stdio: 'inherit', env: { ...process.env, ...env } });
  if (result.status !== 0) process.exit(result.status === null ? 1 : result.status);
}
