import { expect } from 'chai';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { main } from '../lib/cli/main';
import { repoRoot, tempDir } from './helpers';
import { tinyModelDir } from './60.serve-helpers';

const cli = path.join(repoRoot, 'dist', 'lib', 'cli', 'main.js');

describe('81 `nodetune launch`: data-parallel training from the CLI', function () {
  this.timeout(180_000);

  it('2 workers train one LoRA run: rank 0 writes the adapter, the report and the before/after table', () => {
    const work = tempDir('nodetune-launch-');
    const words = 'the a cat dog sat on mat is day night sun moon tree house big small'.split(' ');
    const lines = Array.from({ length: 64 }, (_, i) => {
      const w = Array.from({ length: 5 }, (_, k) => words[(i * 5 + k * 3) % words.length]!);
      w.splice(i % 5, 0, i % 2 === 0 ? 'good' : 'bad');
      return JSON.stringify({ sentence: w.join(' '), sentiment: i % 2 === 0 ? 'pos' : 'neg' });
    });
    fs.writeFileSync(path.join(work, 'data.jsonl'), lines.join('\n') + '\n');
    const config = path.join(work, 'run.yaml');
    fs.writeFileSync(config, `model: ${tinyModelDir('bert-cls', 'encoder')}
task: classification
seed: 3
data:
  train: data.jsonl
  columns: { text: sentence, label: sentiment }
  split: { validation: 0.25, test: 0.25, seed: 2 }
method: { kind: lora, r: 4, alpha: 8, targetModules: all-linear }
training: { epochs: 2, batchSize: 4, learningRate: 0.02, saveStrategy: epoch, loggingSteps: 1 }
output: run
`);
    const r = spawnSync(process.execPath, [cli, 'launch', '--nproc', '2', config, '--quiet'], { encoding: 'utf8', cwd: work, timeout: 170_000 });
    expect(r.status, r.stderr + r.stdout).to.equal(0);
    expect(r.stdout).to.match(/metric\s+before\s+after\s+change/);
    expect(r.stdout).to.include('rank 1 of 2:');
    const out = path.join(work, 'run');
    expect(fs.existsSync(path.join(out, 'adapter', 'adapter_model.safetensors'))).to.equal(true);
    expect(fs.existsSync(path.join(out, 'report.html'))).to.equal(true);
    const records = fs.readFileSync(path.join(out, 'metrics.jsonl'), 'utf8').trim().split('\n');
    expect(new Set(records).size).to.equal(records.length); // one writer: no record logged twice
    expect(records.filter((l) => 'loss' in (JSON.parse(l) as object))).to.have.length(8); // 32 training rows / (4 x 2 ranks) x 2 epochs
    const state = JSON.parse(fs.readFileSync(path.join(out, fs.readdirSync(out).filter((d) => d.startsWith('checkpoint-')).sort()[0]!, 'trainer_state.json'), 'utf8')) as { worldSize: number };
    expect(state.worldSize).to.equal(2);
  });

  it('bad usage exits 2 with the reason; --help prints the options', async () => {
    const err: string[] = [];
    expect(await main(['launch', 'run.yaml'], () => undefined, (s) => err.push(s))).to.equal(2);
    expect(err.join('')).to.include('--nproc N is required');
    expect(await main(['launch', '--nproc', '0', 'run.yaml'], () => undefined, () => undefined)).to.equal(2);
    expect(await main(['launch', '--nproc', '2'], () => undefined, () => undefined)).to.equal(2);
    const out: string[] = [];
    expect(await main(['launch', '--help'], (s) => out.push(s))).to.equal(0);
    expect(out.join('')).to.include('--master-port');
  });
});
