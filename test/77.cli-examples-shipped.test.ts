import { expect } from 'chai';
import * as fs from 'fs';
import * as path from 'path';
import { main } from '../lib/cli/main';
import { loadConfig } from '../lib/cli/config/load';
import { DEMO_ENCODER, DEMO_GPT2 } from '../lib/cli/demo-models';
import { repoRoot, tempDir } from './helpers';

// Every example config as shipped, on a machine with nothing but the npm install: its model is one nodetune builds on
// first use (here the seconds-long variants, in a cache of this test's own); only the run's length is overridden.
describe('77 cli: every example config trains as shipped', function () {
  this.timeout(300_000);
  const saved = { cache: process.env.NODETUNE_CACHE, quick: process.env.NODETUNE_DEMO_QUICK };
  const cache = tempDir('nodetune-examples-cache-');
  before(() => {
    process.env.NODETUNE_CACHE = cache;
    process.env.NODETUNE_DEMO_QUICK = '1';
  });
  after(() => {
    for (const [k, v] of [['NODETUNE_CACHE', saved.cache], ['NODETUNE_DEMO_QUICK', saved.quick]] as const) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  });

  const dir = path.join(repoRoot, 'examples');
  const files = fs.readdirSync(dir).filter((f) => f.endsWith('.yaml')).sort();

  it('the examples name a model every machine has', () => {
    expect(files).to.have.length.greaterThan(0);
    for (const f of files) expect([DEMO_GPT2, DEMO_ENCODER], f).to.include(loadConfig(path.join(dir, f)).model);
  });

  for (const f of files) {
    it(`${f}: two steps, metrics before and after, the result written`, async () => {
      const out = path.join(tempDir('nodetune-examples-run-'), 'run');
      const lines: string[] = [];
      const errs: string[] = [];
      const code = await main(['train', path.join(dir, f), '--quiet', '--output', out, '--training.maxSteps', '2'], (s) => lines.push(s), (s) => errs.push(s));
      expect(code, errs.join('\n')).to.equal(0);
      const text = lines.join('\n');
      expect(text).to.match(/, 2 steps in /);
      expect(text).to.match(/^validation loss\s+[\d.]+\s+[\d.]+/m);
      expect(fs.existsSync(path.join(out, 'adapter', 'adapter_config.json')) || fs.existsSync(path.join(out, 'model', 'model.safetensors'))).to.equal(true);
    });
  }

  it('the demo models are built once and reused from the cache', () => {
    const built = fs.readdirSync(cache).filter((d) => /^demo-(base|encoder)-[0-9a-f]{12}$/.test(d)).sort();
    expect(built.map((d) => d.replace(/-[0-9a-f]+$/, ''))).to.deep.equal(['demo-base', 'demo-encoder']);
  });
});
