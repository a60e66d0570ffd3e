import { expect } from 'chai';
import * as fs from 'fs';
import * as path from 'path';
import { collapseWarning } from '../lib/cli/collapse';
import { closest, editDistance } from '../lib/util/suggest';
import { repoRoot, tempDir } from './helpers';
import { tinyModelDir } from './60.serve-helpers';
import { runCli } from './sources-helpers';

const run = runCli;

const WORDS = 'the a cat dog sat on mat is day night sun moon tree house big small red blue ran'.split(' ');

/** Row i of the data: a few words, "good" for label 1 and "bad" for label 0. */
const sentence = (i: number): string => `${WORDS[i % WORDS.length]} ${i % 2 ? 'good' : 'bad'} ${WORDS[(i * 3) % WORDS.length]}`;

describe('76 cli: the first hour (version, task names, --format, did you mean, overrides, output folder, warnings)', function () {
  this.timeout(120_000);
  const work = tempDir('nodetune-cli-friction-');
  const base = tinyModelDir('bert-cls', 'encoder');
  // SST-2's own layout: `label sentence` per line.
  const data = path.join(work, 'dev.sst');
  fs.writeFileSync(data, Array.from({ length: 24 }, (_, i) => `${i % 2} ${sentence(i)}`).join('\n') + '\n');
  const jsonl = path.join(work, 'train.jsonl');
  fs.writeFileSync(jsonl, Array.from({ length: 24 }, (_, i) => JSON.stringify({ text: sentence(i), label: i % 2 ? 'pos' : 'neg' })).join('\n') + '\n');
  // One text under both labels: whatever the model says, it says one class for every row.
  fs.writeFileSync(path.join(work, 'same.jsonl'), Array.from({ length: 12 }, (_, i) => JSON.stringify({ text: sentence(0), label: i % 2 ? 'pos' : 'neg' })).join('\n') + '\n');
  const config = path.join(work, 'run.yaml');
  fs.writeFileSync(config, `model: ${base}\ntask: text-classification\ndata: { train: train.jsonl, validation: same.jsonl, limit: 10 }\nmethod: { kind: full }\ntraining: { epochs: 1, batchSize: 8, learningRate: 0 }\noutput: run\n`);

  it('--version and -v print the package version', async () => {
    const version = (JSON.parse(fs.readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { version: string }).version;
    for (const flag of ['--version', '-v']) {
      const r = await run([flag]);
      expect(r.code).to.equal(0);
      expect(r.out).to.equal(`nodetune ${version}`);
    }
  });

  it('edit distance and the nearest name', () => {
    expect(editDistance('dtyep', 'dtype')).to.equal(2);
    expect(closest('learningrate', ['epochs', 'learningRate'])).to.equal('learningRate');
    expect(closest('max-tokens', ['tokenizer', 'data', 'max-length', 'json'])).to.equal('max-length');
    expect(closest('zzzzzz', ['epochs', 'batchSize'])).to.equal(undefined);
  });

  it('an unknown option or config key suggests the nearest one', async () => {
    const opt = await run(['tokenize', '--tokenizer', base, '--data', data, '--max-tokens', '8']);
    expect(opt.code).to.equal(2);
    expect(opt.err).to.include("unknown option --max-tokens (did you mean --max-length?)");
    const yaml = path.join(work, 'typo.yaml');
    fs.writeFileSync(yaml, fs.readFileSync(config, 'utf8').replace('learningRate: 0', 'learningrate: 0'));
    const key = await run(['train', yaml]);
    expect(key.code).to.equal(2);
    expect(key.err).to.include('training.learningrate: unknown key (did you mean training.learningRate?)');
  });

  it('an override typo is blamed on the override, not on the YAML file', async () => {
    const r = await run(['train', config, '--training.epoch', '2']);
    expect(r.code).to.equal(2);
    expect(r.err).to.include('override --training.epoch "2": unknown key (did you mean training.epochs?)');
    expect(r.err).not.to.include(`${config}: training.epoch`);
  });

  it('train --help lists --model, --output and --overwrite', async () => {
    const r = await run(['train', '--help']);
    for (const flag of ['--model DIR', '--output DIR', '--overwrite', '--quiet', '--training.KEY']) expect(r.out).to.include(flag);
  });

  it('a missing model folder is named as the model; a missing data file by its config key', async () => {
    const m = await run(['train', config, '--model', path.join(work, 'no-model'), '--output', path.join(work, 'out-m')]);
    expect(m.code).to.equal(1);
    expect(m.err).to.include(`model folder ${path.join(work, 'no-model')} does not exist`);
    expect(m.err).not.to.include('tokenizer directory');
    const d = await run(['train', config, '--data.validation', 'missing.jsonl', '--output', path.join(work, 'out-d')]);
    expect(d.code).to.equal(1);
    expect(d.err).to.include(`data.validation: ${path.join(work, 'missing.jsonl')} does not exist`);
  });

  it('train (either task spelling): refuses a non-empty output folder without --overwrite; warns of data.limit and of a collapsed classifier; tokenizer copies writable', async () => {
    const first = await run(['train', config, '--quiet']);
    expect(first.code, first.err).to.equal(0);
    expect(first.out).to.include('warning: data.limit 10 also cut data.validation');
    // learningRate 0: the fresh head predicts one class for every row.
    expect(first.out).to.match(/warning: on validation the model predicts one class \("(neg|pos)"\) for all 10 rows \(macro-recall 0\.50 on 2 classes\)/);
    const tok = path.join(work, 'run', 'model', 'tokenizer.json');
    fs.chmodSync(path.join(base, 'tokenizer.json'), 0o444);
    const again = await run(['train', config, '--quiet']);
    expect(again.code).to.equal(2);
    expect(again.err).to.include('already exists and is not empty');
    expect(again.err).to.include('--overwrite');
    const forced = await run(['train', config, '--quiet', '--overwrite']);
    expect(forced.code, forced.err).to.equal(0);
    expect(fs.statSync(tok).mode & 0o200).to.equal(0o200);
  });

  it('eval, predict and tokenize take --format label-text and either task spelling; the format hint is CLI syntax', async () => {
    const model = path.join(work, 'run', 'model');
    const ev = await run(['eval', '--model', model, '--data', data, '--task', 'text-classification', '--format', 'label-text', '--json']);
    expect(ev.code, ev.err).to.equal(0);
    expect((JSON.parse(ev.out) as { examples: number }).examples).to.equal(24);
    const tk = await run(['tokenize', '--tokenizer', model, '--data', data, '--task', 'text-classification', '--format', 'label-text', '--json']);
    expect(tk.code, tk.err).to.equal(0);
    expect((JSON.parse(tk.out) as { examples: number }).examples).to.equal(24);
    const pr = await run(['predict', '--model', model, '--input', data, '--task', 'classification', '--format', 'label-text']);
    expect(pr.code, pr.err).to.equal(0);
    const rows = pr.out.split('\n').map((l) => JSON.parse(l) as { text: string; label: string; prediction: { label: string } });
    expect(rows).to.have.length(24);
    expect(rows[1]!.label).to.equal('1');
    expect(rows[1]!.prediction.label).to.be.a('string');
    const hint = await run(['eval', '--model', model, '--data', data, '--task', 'classification']);
    expect(hint.code).to.equal(1);
    expect(hint.err).to.include('pass --format FORMAT');
    expect(hint.err).not.to.include('{ format');
    const bad = await run(['eval', '--model', model, '--data', data, '--task', 'clasification']);
    expect(bad.code).to.equal(2);
    expect(bad.err).to.include('(did you mean classification?)');
  });

  it('collapseWarning: one predicted class for every row, not a mixed or single-class split', () => {
    expect(collapseWarning('test', [[5, 0], [5, 0]], ['neg', 'pos'])).to.include('predicts one class ("neg") for all 10 rows (macro-recall 0.50 on 2 classes)');
    expect(collapseWarning('test', [[4, 1], [2, 3]], ['neg', 'pos'])).to.equal(null);
    expect(collapseWarning('test', [[5, 0], [0, 0]], ['neg', 'pos'])).to.equal(null);
  });
});
