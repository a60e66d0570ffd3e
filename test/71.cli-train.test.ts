import { expect } from 'chai';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { main } from '../lib/cli/main';
import { AutoModel } from '../lib/models';
import { AutoTokenizer } from '../lib/tokenizers';
import { repoRoot, tempDir } from './helpers';
import { maxAbsDiff } from './models-helpers';
import { tinyModelDir } from './60.serve-helpers';

async function run(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(argv, (s) => out.push(s), (s) => err.push(s));
  return { code, out: out.join('\n'), err: err.join('\n') };
}

const WORDS = 'the a cat dog sat on mat is good bad day night sun moon tree house big small red blue ran jumped happy sad little girl boy park play ball home went saw and'.split(' ');

/** Labelled sentences the tiny word-level tokenizers know: label "pos" iff the text has "good", else "neg". */
function classificationData(dir: string, n: number): string {
  const lines: string[] = [];
  for (let i = 0; i < n; i++) {
    const words = Array.from({ length: 4 + (i % 4) }, (_, k) => WORDS[(i * 7 + k * 3) % WORDS.length]!).filter((w) => w !== 'good' && w !== 'bad');
    const pos = i % 2 === 0;
    words.splice(i % words.length, 0, pos ? 'good' : 'bad');
    lines.push(JSON.stringify({ sentence: words.join(' '), sentiment: pos ? 'pos' : 'neg' }));
  }
  const file = path.join(dir, 'data.jsonl');
  fs.writeFileSync(file, lines.join('\n') + '\n');
  return file;
}

describe('71 cli: train, merge, predict, eval end to end on tiny models', function () {
  this.timeout(120_000);
  const work = tempDir('nodetune-cli-train-');
  const base = tinyModelDir('bert-cls', 'encoder');
  classificationData(work, 96);
  const config = path.join(work, 'lora.yaml');
  fs.writeFileSync(config, `model: ${base}
task: classification
seed: 3
data:
  train: data.jsonl
  columns: { text: sentence, label: sentiment }
  split: { validation: 0.25, test: 0.25, seed: 2 }
method: { kind: lora, r: 4, alpha: 8, targetModules: all-linear }
training: { epochs: 2, batchSize: 8, learningRate: 0.02, evalStrategy: epoch, loggingSteps: 2 }
output: run
`);
  let trained: { code: number; out: string; err: string };

  before(async () => {
    trained = await run(['train', config, '--quiet', '--training.epochs', '8']);
  });

  it('train: exit 0, a before/after table on validation and test, the adapter and the HTML report written', () => {
    expect(trained.code, trained.err).to.equal(0);
    expect(trained.out).to.match(/metric\s+before\s+after\s+change/);
    expect(trained.out).to.match(/validation accuracy\s+[\d.]+\s+[\d.]+/);
    expect(trained.out).to.match(/test macroF1\s+[\d.]+\s+[\d.]+/);
    expect(trained.out).to.match(/method lora: [\d,]+ of [\d,]+ parameters trained/);
    const adapter = path.join(work, 'run', 'adapter');
    expect(trained.out).to.contain(`adapter written to ${adapter}`);
    for (const f of ['adapter_config.json', 'adapter_model.safetensors', 'labels.json', 'tokenizer.json']) expect(fs.existsSync(path.join(adapter, f)), f).to.equal(true);
    expect(JSON.parse(fs.readFileSync(path.join(adapter, 'labels.json'), 'utf8'))).to.deep.equal({ labels: ['neg', 'pos'] });
    expect(trained.out).to.contain(`report: ${path.join(work, 'run', 'report.html')}`);
    const report = fs.readFileSync(path.join(work, 'run', 'report.html'), 'utf8');
    expect(report).to.contain('<svg');
    // The run's report: its configuration, metrics before/after, per-label metrics, the confusion matrix, the best step.
    expect(report).to.include(`<th>model</th><td>${base}</td>`).and.include('<th>method</th><td>lora</td>').and.include('<th>r</th><td>4</td>')
      .and.include('<th>batch size</th><td>8</td>').and.include('<th>train examples</th><td>48</td>').and.include('<th>validation examples</th><td>24</td>');
    expect(report).to.match(/<th>trainable parameters<\/th><td>[\d,]+ of [\d,]+ \([\d.]+%\)<\/td>/).and.match(/<th>wall time \(s\)<\/th><td>[\d.]+<\/td>/);
    expect(report).to.match(/<table class="before-after">[\s\S]*<th>test accuracy<\/th>/);
    expect(report).to.match(/<table class="per-label">[\s\S]*<th>pos<\/th>/);
    expect(report).to.match(/<table class="confusion"><thead><tr><th>validation: true \\ predicted<\/th><th>neg<\/th><th>pos<\/th>/);
    expect(report).to.match(/<g class="mark">[\s\S]*?best loss \(step \d+\)/);
    // The override took effect: 8 epochs of ceil(48 / 8) steps.
    expect(trained.out).to.match(/ 48 steps in /);
    // --quiet: no progress lines (they go to stderr otherwise), only the summary.
    expect(trained.out).not.to.contain('tok/s');
  });

  it('train without --quiet: each phase on screen as it starts (data, model, before, training with the epoch, validation, after, writing)', () => {
    const r = spawnSync(process.execPath, [path.join(repoRoot, 'dist', 'lib', 'cli', 'main.js'), 'train', config, '--output', 'phases', '--training.epochs', '2'],
      { cwd: work, encoding: 'utf8', timeout: 120_000 });
    expect(r.status, r.stderr).to.equal(0);
    const phases = ['reading the data', `loading the model ${base}`, 'evaluating before training (validation: 24, test: 24 examples)',
      'training: 12 steps over 2 epochs of 48 examples, batch size 8', 'validation @6: evaluating...', 'validation @6: loss',
      'step 12/12 epoch 2/2', 'evaluating after training', 'writing the adapter and the report'];
    let at = -1;
    for (const p of phases) {
      const i = r.stderr.indexOf(p, at + 1);
      expect(i, `"${p}" after the previous phase in:\n${r.stderr}`).to.be.above(at);
      at = i;
    }
  });

  it('train really learned: test accuracy after is above before (the rule is one word)', () => {
    const m = /test accuracy\s+([\d.]+)\s+([\d.]+)/.exec(trained.out)!;
    expect(Number(m[2])).to.be.greaterThan(Number(m[1]));
    expect(Number(m[2])).to.be.at.least(0.75);
  });

  it('merge: a plain checkpoint with the label names that gives the logits of base + adapter', async () => {
    const merged = path.join(work, 'merged');
    const r = await run(['merge', '--model', base, '--adapter', path.join(work, 'run', 'adapter'), '--output', merged]);
    expect(r.code, r.err).to.equal(0);
    // Says where the merged model went (not "merged ... into <base>", which reads as if the base were written).
    expect(r.out).to.equal(`merged model written to ${merged} (sequence-classification: base ${base} + adapter ${path.join(work, 'run', 'adapter')}; the base is unchanged)`);
    expect(fs.readdirSync(merged).sort()).to.include.members(['config.json', 'model.safetensors', 'tokenizer.json']);
    expect(fs.existsSync(path.join(merged, 'adapter_config.json'))).to.equal(false);
    const plain = await AutoModel.fromPretrained(merged, { quiet: true });
    expect(plain.loadReport.newlyInitialized).to.deep.equal([]);
    expect(plain.config.id2label).to.deep.equal({ 0: 'neg', 1: 'pos' });
    const withAdapter = await AutoModel.fromPretrained(base, { task: 'sequence-classification', numLabels: 2, quiet: true });
    await withAdapter.loadAdapter(path.join(work, 'run', 'adapter'));
    const tok = await AutoTokenizer.fromPretrained(merged);
    const ids = [(await tok.encode('the good cat sat')).ids];
    const a = (await plain.forward({ inputIds: ids })).logits;
    const b = (await withAdapter.forward({ inputIds: ids })).logits;
    expect(maxAbsDiff(Array.from(a), Array.from(b))).to.be.below(1e-4);
    withAdapter.setActiveAdapter(null);
    const untrained = (await withAdapter.forward({ inputIds: ids })).logits;
    expect(maxAbsDiff(Array.from(a), Array.from(untrained))).to.be.above(1e-3);
  });

  it('predict: JSONL in, JSONL out in order, each line with its prediction; eval agrees with it', async () => {
    const merged = path.join(work, 'merged');
    const input = path.join(work, 'in.jsonl');
    fs.writeFileSync(input, ['{"text": "the good dog ran home", "id": 1}', '', '{"text": "a bad day", "id": 2}', '{"text": "good good sun", "id": 3}'].join('\n') + '\n');
    const output = path.join(work, 'out.jsonl');
    const r = await run(['predict', '--model', merged, '--input', input, '--output', output]);
    expect(r.code, r.err).to.equal(0);
    const rows = fs.readFileSync(output, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { id: number; text: string; prediction: { label: string; score: number } });
    expect(rows.map((x) => x.id)).to.deep.equal([1, 2, 3]);
    for (const row of rows) {
      expect(['neg', 'pos']).to.include(row.prediction.label);
      // two labels: a score near 0.5 would be a near-tie that eval (other batches) could decide the other way
      expect(row.prediction.score).to.be.within(0.5 + 1e-4, 1);
    }
    expect(rows.map((x) => x.prediction.label)).to.deep.equal(['pos', 'neg', 'pos']);
    // To standard output when no --output.
    const s = await run(['predict', '--model', merged, '--input', input]);
    expect(s.out.split('\n').map((l) => (JSON.parse(l) as { prediction: { label: string } }).prediction.label)).to.deep.equal(['pos', 'neg', 'pos']);
    // eval on a labelled file: the merged model scores what train reported for it.
    const labelled = path.join(work, 'labelled.jsonl');
    fs.writeFileSync(labelled, rows.map((x) => JSON.stringify({ text: x.text, label: x.prediction.label })).join('\n') + '\n');
    const e = await run(['eval', '--model', merged, '--data', labelled, '--task', 'classification', '--json']);
    expect(e.code, e.err).to.equal(0);
    const metrics = (JSON.parse(e.out) as { metrics: Record<string, number> }).metrics;
    expect(metrics.accuracy).to.equal(1);
    // The base with the adapter (head size and label names from the adapter's labels.json) scores the same.
    const ea = await run(['eval', '--model', base, '--adapter', path.join(work, 'run', 'adapter'), '--data', labelled, '--task', 'classification', '--json']);
    expect(ea.code, ea.err).to.equal(0);
    expect((JSON.parse(ea.out) as { metrics: Record<string, number> }).metrics.accuracy).to.equal(1);
  });

  it('predict --adapter without --task: the task from adapter_config.json, the label names from the run\'s labels.json', async () => {
    // A base whose config.json names no head (as a bare encoder or a causal LM would): only the adapter says SEQ_CLS.
    const bare = tempDir('nodetune-cli-bare-');
    for (const f of fs.readdirSync(base)) fs.copyFileSync(path.join(base, f), path.join(bare, f));
    const cfg = JSON.parse(fs.readFileSync(path.join(bare, 'config.json'), 'utf8')) as Record<string, unknown>;
    delete cfg.id2label;
    delete cfg.label2id;
    fs.writeFileSync(path.join(bare, 'config.json'), JSON.stringify({ ...cfg, architectures: ['BertModel'] }));
    const input = path.join(work, 'in.jsonl');
    const viaAdapter = await run(['predict', '--model', bare, '--adapter', path.join(work, 'run', 'adapter'), '--input', input]);
    expect(viaAdapter.code, viaAdapter.err).to.equal(0);
    const viaMerged = await run(['predict', '--model', path.join(work, 'merged'), '--input', input]);
    const labels = (out: string) => out.split('\n').map((l) => (JSON.parse(l) as { prediction: { label: string } }).prediction.label);
    expect(labels(viaAdapter.out)).to.deep.equal(labels(viaMerged.out));
    expect(labels(viaAdapter.out)).to.deep.equal(['pos', 'neg', 'pos']);
  });

  it('a validation label that training lacks is ERR_DATA naming file, line and label, with or without data.labels (never a wider head)', async () => {
    const dir = tempDir('nodetune-cli-unseen-');
    fs.writeFileSync(path.join(dir, 'train.jsonl'), ['pos', 'neg', 'pos', 'neg'].map((l, i) => JSON.stringify({ text: `the ${l === 'pos' ? 'good' : 'bad'} cat ${WORDS[i]}`, label: l })).join('\n') + '\n');
    fs.writeFileSync(path.join(dir, 'dev.jsonl'), [JSON.stringify({ text: 'the good dog', label: 'pos' }), JSON.stringify({ text: 'the dog sat', label: 'neutral' })].join('\n') + '\n');
    for (const labels of ['', 'labels: [neg, pos]\n  ']) {
      const file = path.join(dir, 'run.yaml');
      fs.writeFileSync(file, `model: ${base}\ntask: classification\ndata:\n  ${labels}train: train.jsonl\n  validation: dev.jsonl\nmethod: { kind: full }\ntraining: { epochs: 1 }\noutput: out\n`);
      const r = await run(['train', file, '--quiet']);
      expect(r.code, labels).to.equal(1);
      expect(r.err, labels).to.contain(`ERR_DATA: ${path.join(dir, 'dev.jsonl')}:2: unknown label "neutral" (known: neg, pos)`);
      expect(fs.existsSync(path.join(dir, 'out', 'model')), labels).to.equal(false);
    }
  });

  it('predict: a line that is not JSON fails with exit 1 naming file and line', async () => {
    const input = path.join(work, 'broken.jsonl');
    fs.writeFileSync(input, '{"text": "a"}\n{"text": oops}\n');
    const r = await run(['predict', '--model', path.join(work, 'merged'), '--input', input]);
    expect(r.code).to.equal(1);
    expect(r.err).to.contain(`ERR_DATA: ${input}:2: not valid JSON`);
    const missing = await run(['predict', '--model', path.join(work, 'merged'), '--input', path.join(work, 'missing-field.jsonl')]);
    expect(missing.code).to.equal(1);
    expect(missing.err).to.contain('no such input file');
  });

  it('train with full fine-tuning on a causal LM (instruction task of examples/instruction.yaml), then generate', async () => {
    const llama = tinyModelDir('llama', 'causal');
    const out = path.join(work, 'instr');
    const r = await run(['train', path.join(repoRoot, 'examples', 'instruction.yaml'), '--model', llama, '--output', out, '--method', '{kind: full}',
      '--training.epochs', '1', '--training.batchSize', '8', '--data.maxLength', '32', '--quiet']);
    expect(r.code, r.err).to.equal(0);
    expect(r.out).to.match(/validation perplexity\s+[\d.]+\s+[\d.]+/);
    expect(fs.existsSync(path.join(out, 'model', 'model.safetensors'))).to.equal(true);
    const g = await run(['generate', '--model', path.join(out, 'model'), '--prompt', 'the cat', '--max-new-tokens', '4', '--json']);
    expect(g.code, g.err).to.equal(0);
    const gen = JSON.parse(g.out) as { completionTokens: number; prompt: string };
    expect(gen.prompt).to.equal('the cat');
    expect(gen.completionTokens).to.be.within(1, 4);
  });
});
