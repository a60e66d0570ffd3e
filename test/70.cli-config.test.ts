import { expect } from 'chai';
import * as fs from 'fs';
import * as path from 'path';
import { loadConfig, parseOverrides } from '../lib/cli/config/load';
import { main } from '../lib/cli/main';
import { repoRoot, tempDir, throws } from './helpers';

/** Writes a YAML config into a temp folder and returns its path. */
function yamlFile(text: string): string {
  const file = path.join(tempDir('nodetune-cfg-'), 'run.yaml');
  fs.writeFileSync(file, text);
  return file;
}

const GOOD = `model: ./m
task: classification
data:
  train: train.jsonl
  split: { validation: 0.2 }
method:
  kind: lora
  r: 4
training:
  epochs: 2
  learningRate: 1.0e-3
output: out
`;

async function run(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(argv, (s) => out.push(s), (s) => err.push(s));
  return { code, out: out.join('\n'), err: err.join('\n') };
}

describe('70 cli: YAML config schema', () => {
  it('every example config in examples/ is valid, with paths resolved next to the config', () => {
    const dir = path.join(repoRoot, 'examples');
    const files = fs.readdirSync(dir).filter((f) => f.endsWith('.yaml'));
    expect(files.sort()).to.deep.equal(['instruction.yaml', 'qa.yaml', 'sentiment.yaml', 'token-classification.yaml']);
    const tasks = files.map((f) => {
      const c = loadConfig(path.join(dir, f));
      expect(fs.existsSync(c.data.train as string), `${f}: ${String(c.data.train)}`).to.equal(true);
      expect(path.isAbsolute(c.output)).to.equal(true);
      return c.task;
    });
    expect(tasks.sort()).to.deep.equal(['classification', 'instruction', 'qa', 'token-classification']);
  });

  it('a valid config loads typed, relative paths resolved against its folder', () => {
    const file = yamlFile(GOOD);
    const c = loadConfig(file);
    expect(c.model).to.equal(path.join(path.dirname(file), 'm'));
    expect(c.data.train).to.equal(path.join(path.dirname(file), 'train.jsonl'));
    expect(c.method).to.deep.equal({ kind: 'lora', r: 4 });
    expect(c.training).to.deep.equal({ epochs: 2, learningRate: 1e-3 });
  });

  it('a bad value names the key and lists the allowed values', () => {
    const e = throws(() => loadConfig(yamlFile(GOOD.replace('kind: lora', 'kind: lorra').replace('  r: 4\n', ''))));
    expect(e.code).to.equal('ERR_CONFIG');
    expect(e.message).to.match(/run\.yaml: method\.kind: must be one of full, partial, lora, adapter, prompt; got "lorra"/);
    const t = throws(() => loadConfig(yamlFile(GOOD.replace('task: classification', 'task: sentiment'))));
    expect(t.message).to.contain('task: must be one of classification, token-classification, qa, causal-lm, instruction, chat, seq2seq, masked-lm; got "sentiment"');
  });

  it('an unknown key, at any depth, is named with the keys allowed there', () => {
    const top = throws(() => loadConfig(yamlFile(GOOD + 'epochs: 3\n')));
    expect(top.message).to.match(/: epochs: unknown key; allowed: model, tokenizer, task, output, device, dtype, seed, data, method, training$/);
    const nested = throws(() => loadConfig(yamlFile(GOOD.replace('  r: 4', '  rank: 4'))));
    expect(nested.message).to.match(/method\.rank: unknown key; allowed: kind, policy, lastLayers, .*targetModules/);
    const col = throws(() => loadConfig(yamlFile(GOOD.replace('  train: train.jsonl', '  train: train.jsonl\n  columns: { review: text }'))));
    expect(col.message).to.match(/data\.columns\.review: unknown key; allowed: text, textPair, label/);
  });

  it('types, ranges, required keys, cross-field rules and TrainingArgs are checked with the key path', () => {
    const cases: [string, RegExp][] = [
      [GOOD.replace('r: 4', 'r: four'), /method\.r: must be a number, got "four"/],
      [GOOD.replace('r: 4', 'r: 0'), /method\.r: must be at least 1, got 0/],
      [GOOD.replace('validation: 0.2', 'validation: 1.5'), /data\.split\.validation: must be at most 1, got 1\.5/],
      [GOOD.replace('  train: train.jsonl\n', ''), /data\.train: is required/],
      [GOOD.replace('output: out\n', ''), /: output: is required/],
      [GOOD.replace('kind: lora', 'kind: full'), /method\.r: belongs to method kind 'lora', but kind is 'full'/],
      [GOOD.replace('kind: lora\n  r: 4', 'kind: partial'), /method\.policy: is required with kind 'partial'; allowed: head, bitfit, lastLayers, include/],
      [GOOD.replace('epochs: 2', 'epochs: -1'), /training\.epochs: must be/],
      [GOOD.replace('epochs: 2', 'epoch: 2'), /training\.epoch: unknown key \(did you mean training\.epochs\?\); allowed: epochs, maxSteps, batchSize/],
      [GOOD.replace('learningRate: 1.0e-3', 'lrScheduler: sawtooth'), /training\.lrScheduler: .*linear.*cosine/],
      [GOOD.replace('task: classification', 'task: causal-lm'), /data\.blockSize: is required with task causal-lm/],
    ];
    for (const [text, re] of cases) {
      const e = throws(() => loadConfig(yamlFile(text)));
      expect(e.code, text).to.equal('ERR_CONFIG');
      expect(e.message, text).to.match(re);
    }
  });

  it('--key.path overrides are read as YAML values and validated like the file', () => {
    const file = yamlFile(GOOD);
    const c = loadConfig(file, parseOverrides(['--training.epochs', '5', '--method.r=16', '--method.targetModules', '[q_proj, v_proj]', '--training.shuffle', 'false'], file));
    expect(c.training.epochs).to.equal(5);
    expect(c.training.shuffle).to.equal(false);
    expect(c.method.r).to.equal(16);
    expect(c.method.targetModules).to.deep.equal(['q_proj', 'v_proj']);
    const bad = throws(() => loadConfig(file, parseOverrides(['--method.kind', 'magic'], file)));
    // Blamed on the override, not on the file.
    expect(bad.message).to.contain('override --method.kind "magic": must be one of full, partial, lora, adapter, prompt; got "magic"');
    expect(bad.message).not.to.contain(file);
    expect(throws(() => parseOverrides(['--training.epochs'], file)).message).to.contain('training.epochs: the override has no value');
    expect(throws(() => loadConfig(file, [['task.x', '1']])).message).to.contain('task.x: cannot set a key inside task, which is not a mapping');
  });

  it('YAML syntax errors give the line; a missing file is ERR_IO', () => {
    const e = throws(() => loadConfig(yamlFile('model: a\ntask: [classification\n')));
    expect(e.code).to.equal('ERR_CONFIG');
    expect(e.message).to.match(/run\.yaml:\d+: not valid YAML/);
    expect(throws(() => loadConfig('/nonexistent/x.yaml')).code).to.equal('ERR_IO');
  });

  it('nodetune train exits 2 on a bad config, naming the key, and on a missing config argument', async () => {
    const bad = await run(['train', yamlFile(GOOD.replace('kind: lora', 'kind: lorra'))]);
    expect(bad.code).to.equal(2);
    expect(bad.err).to.match(/^nodetune train: .*method\.kind: must be one of full, partial, lora, adapter, prompt/);
    const none = await run(['train']);
    expect(none.code).to.equal(2);
    expect(none.err).to.contain('a config file is required');
    const missing = await run(['train', '/nonexistent/run.yaml']);
    expect(missing.code).to.equal(2);
    expect(missing.err).to.contain('no such config file');
  });
});
