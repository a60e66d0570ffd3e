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

/** Test files whose assertions rest on float arithmetic through the models (see docs/ARCHITECTURE.md). */
const NUMERICS = [
  '19.train-step-options', '2?.models-*', '45.train-*', '5?.peft-*', '60.pipelines', '64.pipelines-seq2seq-mlm', '80.dist',
];

const usual = recommendedKernel(cpuFeatures());
const kernel = process.env.OPENBLAS_CORETYPE ?? (usual === 'Haswell' || usual === 'Zen' ? 'Sandybridge' : 'Haswell');
console.log(`nodetune test:numerics: OPENBLAS_CORETYPE=${kernel} (this CPU's usual kernel: ${usual ?? "OpenBLAS's own choice"})`);
const files = NUMERICS.map((f) => path.join('dist', 'test', `${f}.test.js`));
const mocha = require.resolve('mocha/bin/mocha.js');
const result = spawnSync(process.execPath, [mocha, ...files], {
  cwd: root, stdio: 'inherit', env: { ...process.env, OPENBLAS_CORETYPE: kernel },
});
process.exit(result.status === null ? 1 : result.status);
