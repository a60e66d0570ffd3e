import { expect } from 'chai';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { repoRoot, tempDir } from './helpers';

describe('74 example: domain-adaptive MLM pretraining, then classification (examples/domain-adaptation.ts --quick)', function () {
  this.timeout(120_000);

  it('runs both stages and prints the comparison table; the adapted encoder reloads as a classifier', () => {
    const out = tempDir('nodetune-dapt-test-');
    const started = Date.now();
    const r = spawnSync(process.execPath, [path.join(repoRoot, 'dist', 'examples', 'domain-adaptation.js'), '--out', out], {
      env: { ...process.env, NODETUNE_EXAMPLE_QUICK: '1' }, encoding: 'utf8', timeout: 100_000,
    });
    const text = `${r.stdout}${r.stderr}`;
    expect(r.status, text).to.equal(0);
    expect(Date.now() - started).to.be.below(60_000);
    expect(text).to.match(/stage 1 \(MLM, \d+ steps/);
    expect(text).to.match(/held-out masked-token loss \d+\.\d+ -> \d+\.\d+/);
    const lines = text.split('\n');
    const header = lines.findIndex((l) => l.startsWith('classifier from'));
    expect(header, text).to.be.above(-1);
    expect(lines[header]).to.match(/MLM steps\s+test accuracy\s+test macro-F1/);
    expect(lines[header + 2]).to.match(/^fresh encoder\s+0\s+\d\.\d{4}\s+\d\.\d{4}/);
    expect(lines[header + 3]).to.match(/^MLM-adapted encoder\s+[1-9]\d*\s+\d\.\d{4}\s+\d\.\d{4}/);
    // stage 1 wrote a BertForMaskedLM checkpoint and a vocab.txt tokenizer
    const config = JSON.parse(fs.readFileSync(path.join(out, 'adapted', 'config.json'), 'utf8')) as { architectures: string[] };
    expect(config.architectures).to.deep.equal(['BertForMaskedLM']);
    expect(fs.existsSync(path.join(out, 'tokenizer', 'vocab.txt'))).to.equal(true);
  });

  it('a bad option exits 2 with the usage', () => {
    const r = spawnSync(process.execPath, [path.join(repoRoot, 'dist', 'examples', 'domain-adaptation.js'), '--nope'], { encoding: 'utf8', timeout: 30_000 });
    expect(r.status).to.equal(2);
    expect(r.stderr).to.contain('Usage');
  });
});
