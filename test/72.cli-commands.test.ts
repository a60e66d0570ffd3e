import { expect } from 'chai';
import * as fs from 'fs';
import * as path from 'path';
import { main } from '../lib/cli/main';
import { corpusStats } from '../lib/cli/tokenize';
import { BAR_MAX, BAR_MIN, FALLBACK_COLUMNS, attachProgress, formatSeconds } from '../lib/cli/progress';
import { Trainer } from '../lib/train';
import { AutoModel } from '../lib/models';
import { Writable } from 'stream';
import { repoRoot, tempDir } from './helpers';
import { tinyModelDir } from './60.serve-helpers';

async function run(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(argv, (s) => out.push(s), (s) => err.push(s));
  return { code, out: out.join('\n'), err: err.join('\n') };
}

const COMMANDS = ['train', 'eval', 'predict', 'generate', 'merge', 'tokenize', 'doctor', 'serve'];

describe('72 cli: help, exit codes, tokenize, the example configs on tiny models', function () {
  this.timeout(60_000);

  it('--help on every command: exit 0, a usage line and examples; the top-level help lists every command', async () => {
    const top = await run(['--help']);
    expect(top.code).to.equal(0);
    for (const c of COMMANDS) {
      expect(top.out).to.match(new RegExp(`^  ${c} `, 'm'));
      for (const flag of ['--help', '-h']) {
        const r = await run([c, flag]);
        expect(r.code, `${c} ${flag}`).to.equal(0);
        expect(r.out).to.match(new RegExp(`^Usage: nodetune ${c}`));
        expect(r.out, c).to.contain('Examples:');
        expect(r.out, c).to.contain(`nodetune ${c} `);
      }
    }
  });

  it('bad usage exits 2 with the reason: no command, unknown command, unknown option, missing required option, bad value', async () => {
    expect((await run([])).code).to.equal(2);
    const unknown = await run(['finetune']);
    expect(unknown.code).to.equal(2);
    expect(unknown.err).to.contain("unknown command 'finetune'");
    const cases: [string[], RegExp][] = [
      [['eval', '--modle', 'x'], /unknown option --modle \(did you mean --model\?\)/],
      [['eval', '--data', 'x.jsonl', '--task', 'classification'], /--model is required/],
      [['eval', '--model', 'm', '--data', 'x.jsonl', '--task', 'sentiment'], /--task must be one of classification, token-classification, qa/],
      [['predict', '--model', 'm'], /--input is required/],
      [['generate', '--model', 'm'], /--prompt is required/],
      [['generate', '--model', 'm', '--prompt', 'x', '--max-new-tokens', 'many'], /--max-new-tokens must be an integer of at least 1; got "many"/],
      [['merge', '--model', 'm', '--adapter', 'a'], /--output is required/],
      [['tokenize', '--data', 'x'], /--tokenizer is required/],
      [['eval', '--model', 'm', '--data', 'x', '--task', 'classification', '--column', 'text'], /--column must be FIELD=COLUMN/],
      [['predict', '--model', 'm', '--input', 'x', '--task', 'summarize'], /--task must be one of text-classification/],
    ];
    for (const [argv, re] of cases) {
      const r = await run(argv);
      expect(r.code, argv.join(' ')).to.equal(2);
      expect(r.err, argv.join(' ')).to.match(re);
    }
  });

  it('a failure exits 1 with the error code and the path: a missing model folder, an adapter that is not one', async () => {
    const dir = tempDir('nodetune-cli-fail-');
    const r = await run(['generate', '--model', path.join(dir, 'nope'), '--prompt', 'x']);
    expect(r.code).to.equal(1);
    expect(r.err).to.match(/^nodetune generate: ERR_IO: .*nope/);
    const m = await run(['merge', '--model', tinyModelDir('bert-cls', 'encoder'), '--adapter', dir, '--output', path.join(dir, 'out')]);
    expect(m.code).to.equal(1);
    expect(m.err).to.contain(dir);
  });

  it('progress: a bar sized to the terminal and redrawn in place on a TTY (epoch, loss, lr, tokens/s, ETA), validation shown as it starts, plain log lines otherwise', async () => {
    const model = await AutoModel.fromPretrained(tinyModelDir('bert-cls', 'encoder'), { quiet: true });
    const sink = (columns?: number) => {
      const chunks: string[] = [];
      const stream = Object.assign(new Writable({ write(c: Buffer, _e, cb) { chunks.push(c.toString()); cb(); } }), columns ? { columns } : {});
      return { stream, text: () => chunks.join('') };
    };
    const make = () => new Trainer({ model, train: [{ inputIds: [1, 5, 6], label: 0 }], args: { outputDir: tempDir('nodetune-progress-'), report: false } });
    const step = { step: 3, epoch: 1.5, loss: 0.6931, lr: 2e-4, gradNorm: null, tokens: 30, tokensPerSecond: 1234.4, etaSeconds: 75 };
    const suffix = '3/6 epoch 2/3 loss 0.6931 lr 2.00e-4 1234 tok/s ETA 1m15s';
    const barOf = (text: string) => /\[([#.]+)\]/.exec(text)![1]!;
    const tty = sink(120);
    const t1 = make();
    const done = attachProgress(t1, { totalSteps: 6, epochs: 3, stream: tty.stream, tty: true, label: 'lora' });
    t1.emit('step', step);
    t1.emit('evaluateStart', { split: 'validation', step: 3 });
    t1.emit('evaluate', { split: 'validation', step: 3, epoch: 1.5, metrics: { loss: 0.5, accuracy: 0.75, precision_a: 1 } });
    done();
    // 120 columns: the bar takes what "lora [" + "] " + the suffix leave (one column spare), and the line is padded to 119.
    const width = 120 - 1 - 'lora '.length - suffix.length - 3;
    const line = `\rlora [${'#'.repeat(width / 2)}${'.'.repeat(width / 2)}] ${suffix}`;
    expect(tty.text()).to.equal(`${line}\nlora validation @3: evaluating...\nlora validation @3: loss 0.5000  accuracy 0.7500\n`);
    expect(line.length - 1).to.equal(119);
    // A narrow terminal: the bar keeps its minimum; a wide one: its maximum; no width known: 80 columns.
    const bar = (columns?: number) => {
      const s = sink(columns);
      const t = make();
      const fin = attachProgress(t, { totalSteps: 6, stream: s.stream, tty: true });
      t.emit('step', step);
      fin();
      return barOf(s.text()).length;
    };
    expect(bar(40)).to.equal(BAR_MIN);
    expect(bar(400)).to.equal(BAR_MAX);
    const stdoutColumns = process.stdout.columns;
    Object.defineProperty(process.stdout, 'columns', { value: undefined, configurable: true, writable: true });
    try {
      expect(bar()).to.equal(FALLBACK_COLUMNS - 1 - '3/6 epoch 1.50 loss 0.6931 lr 2.00e-4 1234 tok/s ETA 1m15s'.length - 3);
    } finally {
      Object.defineProperty(process.stdout, 'columns', { value: stdoutColumns, configurable: true, writable: true });
    }
    const plain = sink();
    const t2 = make();
    const fin2 = attachProgress(t2, { totalSteps: 6, epochs: 3, stream: plain.stream, tty: false });
    t2.emit('step', step);
    t2.emit('log', { step: 4, epoch: 0.67, loss: 0.5, lr: 1e-4, gradNorm: null, tokensPerSecond: 99.6, etaSeconds: 5 });
    fin2();
    t2.emit('log', { step: 5, epoch: 0.8, loss: 0.5, lr: 1e-4, gradNorm: null, tokensPerSecond: 99.6, etaSeconds: 5 });
    expect(plain.text()).to.equal('step 4/6 epoch 1/3 loss 0.5000 lr 1.00e-4 100 tok/s eta 5s\n');
    expect(formatSeconds(Infinity)).to.equal('?');
  });

  it('tokenize: exact token counts, lengths and truncation rate with a word-level tokenizer', async () => {
    const model = tinyModelDir('bert-cls', 'encoder');
    const dir = tempDir('nodetune-cli-tok-');
    const file = path.join(dir, 'c.csv');
    // [CLS] words [SEP]: 3 words -> 5 tokens, 1 -> 3, 6 -> 8, 2 -> 4.
    fs.writeFileSync(file, 'review,stars\nthe cat sat,1\ndog,2\nthe little girl went home happy,3\ngood day,4\n');
    const r = await run(['tokenize', '--tokenizer', model, '--data', file, '--column', 'text=review', '--column', 'label=stars', '--max-length', '4', '--json']);
    expect(r.code, r.err).to.equal(0);
    const s = JSON.parse(r.out) as Record<string, number>;
    expect(s).to.include({ examples: 4, tokens: 20, mean: 5, median: 5, max: 8, maxLength: 4, truncated: 2, truncationRate: 0.5 });
    expect(s.charsPerToken).to.be.closeTo((11 + 3 + 31 + 8) / 20, 1e-9);
    const table = await run(['tokenize', '--tokenizer', model, '--data', file, '--column', 'text=review', '--column', 'label=stars', '--max-length', '4']);
    expect(table.out).to.match(/truncated at 4\s+2 \(50\.0%\)/);
    expect(corpusStats([], 0, 8)).to.include({ examples: 0, tokens: 0, truncationRate: 0 });
  });

  it('examples/sentiment.yaml (with EDA augmentation and cleaning) runs on a tiny BERT', async () => {
    const out = tempDir('nodetune-cli-ex-');
    const r = await run(['train', path.join(repoRoot, 'examples', 'sentiment.yaml'), '--quiet', '--model', tinyModelDir('bert-cls', 'encoder'),
      '--output', out, '--training.epochs', '1', '--data.maxLength', '16']);
    expect(r.code, r.err).to.equal(0);
    expect(r.out).to.match(/data\/sentiment\.jsonl: read 40, kept 40/);
    expect(r.out).to.match(/split: train 24, validation 8, test 8/);
    expect(r.out).to.match(/test accuracy\s+[\d.]+\s+[\d.]+/);
    expect(fs.existsSync(path.join(out, 'adapter', 'adapter_config.json'))).to.equal(true);
  });

  it('every method kind trains from the CLI and writes the right kind of output: full, partial, adapter, prompt', async () => {
    const bert = tinyModelDir('bert-cls', 'encoder');
    const cases: [string, string, string, string[]][] = [
      ['sentiment.yaml', bert, '{kind: full}', ['model', 'model.safetensors']],
      ['sentiment.yaml', bert, '{kind: partial, policy: bitfit}', ['model', 'model.safetensors']],
      ['sentiment.yaml', bert, '{kind: adapter, reduction: 4}', ['adapter', 'adapter_config.json']],
      ['instruction.yaml', tinyModelDir('llama', 'causal'), '{kind: prompt, numVirtualTokens: 3, init: text, initText: the cat}', ['adapter', 'adapter_config.json']],
    ];
    for (const [example, model, method, [sub, file]] of cases) {
      const out = tempDir('nodetune-cli-method-');
      const r = await run(['train', path.join(repoRoot, 'examples', example), '--quiet', '--model', model, '--output', out, '--method', method,
        '--training.epochs', '1', '--data.maxLength', '16']);
      expect(r.code, `${method}: ${r.err}`).to.equal(0);
      expect(r.out, method).to.match(new RegExp(`method ${/kind: (\w+)/.exec(method)![1]}: [\\d,]+ of [\\d,]+ parameters trained`));
      expect(fs.existsSync(path.join(out, sub!, file!)), `${method}: ${sub}/${file}`).to.equal(true);
    }
  });

  it('examples/token-classification.yaml runs on a tiny RoBERTa tagger and reports entity F1', async () => {
    const out = tempDir('nodetune-cli-ex-');
    const r = await run(['train', path.join(repoRoot, 'examples', 'token-classification.yaml'), '--quiet', '--model', tinyModelDir('roberta-tok', 'encoder'),
      '--output', out, '--training.epochs', '1', '--data.maxLength', '20', '--method.lastLayers', '1']);
    expect(r.code, r.err).to.equal(0);
    expect(r.out).to.match(/validation tokenAccuracy\s+[\d.]+\s+[\d.]+/);
    expect(r.out).to.match(/validation entityF1\s+[\d.]+\s+[\d.]+/);
    const config = JSON.parse(fs.readFileSync(path.join(out, 'model', 'config.json'), 'utf8')) as { id2label: Record<string, string> };
    expect(Object.values(config.id2label)).to.deep.equal(['B-LOC', 'B-ORG', 'B-PER', 'I-LOC', 'I-ORG', 'I-PER', 'O']);
  });

  it('examples/qa.yaml runs on a tiny DistilBERT QA model (windows with stride) and predict answers from the context', async () => {
    const out = tempDir('nodetune-cli-ex-');
    const r = await run(['train', path.join(repoRoot, 'examples', 'qa.yaml'), '--quiet', '--model', tinyModelDir('distilbert-qa', 'encoder'),
      '--output', out, '--training.epochs', '1', '--data.maxLength', '16', '--data.stride', '4']);
    expect(r.code, r.err).to.equal(0);
    expect(r.out).to.match(/validation exactMatch\s+[\d.]+\s+[\d.]+/);
    const input = path.join(out, 'q.jsonl');
    const context = 'the little girl went home and saw a red ball';
    fs.writeFileSync(input, JSON.stringify({ question: 'what did the girl see', context }) + '\n');
    const p = await run(['predict', '--model', path.join(out, 'model'), '--input', input]);
    expect(p.code, p.err).to.equal(0);
    const a = (JSON.parse(p.out) as { prediction: { answer: string; start: number; end: number } }).prediction;
    expect(context.slice(a.start, a.end)).to.equal(a.answer);
  });
});
