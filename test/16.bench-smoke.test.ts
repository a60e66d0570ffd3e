import { expect } from 'chai';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { configFor, writeRandomCheckpoint } from '../bench/random-checkpoint';
import { AutoModel } from '../lib';
import { tempDir } from './helpers';

describe('16 the benchmark harness (smoke test; figures come from `npm run bench`)', () => {
  for (const family of ['gpt2', 'llama'] as const) {
    it(`${family}: random checkpoint, then a measured training step in a child process`, async () => {
      const dir = tempDir('nodetune-bench-smoke-');
      const shape = { name: 'tiny', family, layers: 2, hidden: 32, heads: 4, vocab: 64, seq: 8 };
      await writeRandomCheckpoint(dir, configFor(shape), 3);
      const model = await AutoModel.fromPretrained(dir, { quiet: true });
      expect(model.task).to.equal('causal-lm');
      const batchFile = path.join(dir, 'batch.json');
      fs.writeFileSync(batchFile, JSON.stringify({ inputIds: [[1, 2, 3, 4, 5, 6, 7, 8], [8, 7, 6, 5, 4, 3, 2, 1]] }));
      const child = path.resolve(__dirname, '..', 'bench', 'step-child.js');
      const r = spawnSync(process.execPath, [child, JSON.stringify({ dir, batchFile, steps: 2, warmup: 1, mode: 'train' })], { encoding: 'utf8' });
      expect(r.status, r.stderr).to.equal(0);
      const out = JSON.parse(r.stdout.trim()) as { times: number[]; losses: number[]; params: number; peakRssKb: number };
      expect(out.times).to.have.length(2);
      expect(out.losses).to.have.length(3);
      expect(out.losses[2]!).to.be.lessThan(out.losses[0]!);
      expect(out.params).to.be.greaterThan(64 * 32);
      expect(out.peakRssKb).to.be.greaterThan(0);
    });
  }
});
