import { expect } from 'chai';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { AutoModel } from '../lib/models';
import { emailText, classifierInput, fitClassifierInputs, EMAIL_END } from '../examples/demo/spam';
import { verdict } from '../examples/demo/verdict';
import { describePool, domainPool } from '../examples/demo/domain-pool';
import { DOMAIN_RECIPE, adaptBase, domainDirFor, gpt2TokenizerDir } from '../lib/cli/demo-base';
import { AutoTokenizer } from '../lib/tokenizers';
import { NodetuneError } from '../lib/errors';
import { repoRoot, tempDir } from './helpers';
import { tinyModelDir } from './60.serve-helpers';

function demo(args: string[], cache: string): { status: number | null; out: string } {
  const r = spawnSync(process.execPath, [path.join(repoRoot, 'dist', 'examples', 'demo.js'), ...args], {
    env: { ...process.env, NODETUNE_CACHE: cache }, encoding: 'utf8', timeout: 180_000,
  });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

describe('73 demo (npm run demo -- --quick)', function () {
  this.timeout(240_000);

  it('emails lose their headers (but keep the subject) and non-text MIME parts; classifier inputs end with the marker', () => {
    const raw = 'From: a@b.c\nSubject: Cheap pills\nReceived: from relay.example\n\nThis is a multi-part message\n--==boundary123\n' +
      'Content-Type: text/plain\n\nBuy now!\n--==boundary123\nContent-Type: image/gif\n\nR0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7R0lGODlhAQABAIAAAAAAAP\nmore gif\n';
    const text = emailText(raw);
    expect(text.startsWith('Cheap pills\n')).to.equal(true);
    expect(text).to.contain('Buy now!');
    for (const gone of ['relay.example', 'a@b.c', 'Content-Type', 'R0lGOD', 'more gif', 'boundary123']) expect(text).not.to.contain(gone);
    const input = classifierInput('x'.repeat(1000), 360);
    expect(input).to.equal('x'.repeat(360) + EMAIL_END);
  });

  it('classifier inputs fit the model: an email is cut at a token boundary so that the end marker stays within maxTokens', async () => {
    const tok = await AutoTokenizer.fromPretrained(gpt2TokenizerDir());
    const short = 'Lunch on Friday?\nSee you at noon.';
    const url = 'Click http://x7.example.biz/r/?a=Zq81&b=77f0e&c=%20%3D now. ';
    const long = `Cheap meds\n${url.repeat(40)}`; // about 27 tokens per 60 characters: 360 characters are ~160 tokens
    const cjk = `Thai and CJK\n${'สวัสดีครับ 日本語のメール '.repeat(40)}`; // characters split over several byte tokens
    const fitted = await fitClassifierInputs(tok, [short, long, cjk], 64);
    expect(fitted[0]).to.equal(classifierInput(short));
    for (const [i, text] of [long, cjk].entries()) {
      const f = fitted[i + 1]!;
      const n = (await tok.encode(f)).ids.length;
      expect(n, f).to.be.within(56, 64);
      expect(f.endsWith(EMAIL_END)).to.equal(true);
      expect(text.startsWith(f.slice(0, -EMAIL_END.length))).to.equal(true);
    }
    // The old cut by characters does not fit: truncating it to 64 tokens would have cut the marker off.
    expect((await tok.encode(classifierInput(long, 360))).ids.length).to.be.greaterThan(64);
  });

  it('the verdict: passes when training improved held-out accuracy over the base; says ahead of or behind the baseline either way', () => {
    const base = { accuracy: 0.494, macroF1: 0.331 };
    const win = verdict('full fine-tuning', { before: base, after: { accuracy: 0.96, macroF1: 0.959 } }, { accuracy: 0.947, macroF1: 0.947 });
    expect(win).to.include({ ok: true, ahead: true });
    expect(win.text).to.equal('full fine-tuning improved held-out accuracy 0.4940 -> 0.9600; against the naive Bayes baseline: ahead (0.9600 > 0.9470, macro-F1 0.9590 vs 0.9470)');
    // Behind the baseline (a tie is not ahead), but improved: the demo still passes, and says it is behind.
    const tie = verdict('x', { before: base, after: { accuracy: 0.9, macroF1: 0.95 } }, { accuracy: 0.9, macroF1: 0.8 });
    expect(tie).to.include({ ok: true, ahead: false });
    expect(tie.text).to.contain('against the naive Bayes baseline: behind (0.9000 <= 0.9000');
    // No better than before training (a collapsed classifier): the demo fails.
    const flat = verdict('head only', { before: base, after: base }, { accuracy: 0.9, macroF1: 0.9 });
    expect(flat).to.include({ ok: false, ahead: false });
    expect(flat.text).to.contain('head only did not improve held-out accuracy 0.4940 -> 0.4940');
  });

  it('the unlabelled pool leaves out the split emails, what the cleaning drops, and exact, normalised and near duplicates of validation/test emails', async () => {
    const words = (seed: number) => Array.from({ length: 40 }, (_, i) => `w${(i * 7 + seed * 13) % 97}x${seed}`).join(' ');
    const heldOut = { validation: [{ text: `Meeting notes ${words(1)}` }], test: [{ text: `Cheap pills ${words(2)}` }, { text: `Lunch ${words(3)}` }] };
    const nearTest = heldOut.test[0]!.text.split(' ').map((w, i) => (i === 39 ? 'changed' : w)).join(' ');
    const candidates = [
      { id: 10, text: `In a split ${words(4)}` }, // id in the splits: never read, even though unrelated
      { id: 11, text: heldOut.validation[0]!.text }, // exact copy of a validation email
      { id: 12, text: heldOut.test[1]!.text.toUpperCase() + '!!' }, // the same up to case and punctuation
      { id: 13, text: nearTest }, // one word of 41 changed: Jaccard of 3-word shingles about 0.9
      { id: 14, text: 'too short' }, // removed by the cleaning (minChars)
      { id: 15, text: `<b>Unrelated</b> ${words(5)}` },
      { id: 16, text: `Also unrelated ${words(6)}` },
      { id: 17, text: `Also unrelated ${words(6)}` }, // a repeat: the cleaning's exact dedupe
    ];
    const pool = await domainPool(candidates, new Set([10, 20, 21]), heldOut, { stripHtml: true, dedupe: 'exact', minChars: 20 });
    expect(pool.texts).to.deep.equal([`Unrelated ${words(5)}`, `Also unrelated ${words(6)}`]);
    expect(pool).to.include({ candidates: 8, inSplits: 1, cleanedAway: 2, nearDuplicates: 3 });
    expect(pool.heldOutMatched.validation).to.include({ rows: 1, leaked: 1, exact: 1 });
    expect(pool.heldOutMatched.test).to.include({ rows: 2, leaked: 2, normalized: 1, near: 1 });
    expect(describePool(pool)).to.equal('2 unlabelled emails (of 8: 1 in train/validation/test left out, 2 removed by the cleaning, 3 dropped as duplicates or near-duplicates of 1 validation and 2 test emails)');
  });

  it('the domain-adapted base is cached under a key of the base, the recipe and the texts; too few texts are ERR_ARGUMENT', async () => {
    const key = domainDirFor('/x/demo-base-1', ['a', 'b'], DOMAIN_RECIPE);
    expect(path.basename(key)).to.match(/^demo-domain-[0-9a-f]{12}$/);
    expect(domainDirFor('/x/demo-base-1', ['a', 'b'], DOMAIN_RECIPE)).to.equal(key);
    for (const other of [domainDirFor('/x/demo-base-2', ['a', 'b'], DOMAIN_RECIPE), domainDirFor('/x/demo-base-1', ['a', 'c'], DOMAIN_RECIPE),
      domainDirFor('/x/demo-base-1', ['ab'], DOMAIN_RECIPE), domainDirFor('/x/demo-base-1', ['a', 'b'], { ...DOMAIN_RECIPE, steps: 7 })]) expect(other).not.to.equal(key);
    let err: unknown;
    try {
      await adaptBase('/x/demo-base-1', ['only one'], DOMAIN_RECIPE, false);
    } catch (e) {
      err = e;
    }
    expect(err).to.be.instanceOf(NodetuneError);
    expect((err as NodetuneError).code).to.equal('ERR_ARGUMENT');
    expect((err as Error).message).to.contain('adaptBase: at least 2 texts');
  });

  it('pretrains its own base (and says so), prints the naive Bayes baseline, fine-tunes fully, with LoRA and head-only, merges, classifies through the pipeline, exits 0; the base is cached', () => {
    const cache = tempDir('nodetune-demo-cache-');
    const out = tempDir('nodetune-demo-out-');
    const first = demo(['--quick', '--out', out], cache);
    expect(first.status, first.out).to.equal(0);
    expect(first.out).to.contain('this demo pretrains its own small GPT-2-shaped');
    expect(first.out).to.match(/pretrained in \d+ s on [\d,]+ tokens; held-out perplexity \d+ -> \d+/);
    // The domain stage: split emails left out (the quick candidates hold all 80), leakage checked, trained, cached.
    expect(first.out).to.match(/then domain-adaptive pretraining \(causal LM, no labels\) on [\d,]+ unlabelled emails \(of [\d,]+: 80 in train\/validation\/test left out, \d+ removed by the cleaning, \d+ dropped as duplicates or near-duplicates of \d+ validation and \d+ test emails\)/);
    expect(first.out).to.match(/adapted in \d+ s: 4 steps, 2,048 tokens; held-out email perplexity \d+ -> \d+/);
    expect(first.out).to.match(/baseline: multinomial naive Bayes .* on the same \d+ cleaned training emails/);
    expect(first.out).to.match(/[\d,]+ words: held-out test accuracy [\d.]+, macro-F1 [\d.]+ \(\d+ emails/);
    expect(first.out).to.match(/naive Bayes baseline\s+[\d,]+ word counts\s+\d+ s\s+[\d.]+\s+[\d.]+/);
    const method = '(full fine-tuning|LoRA \\(r 8, all linear layers\\)|head only)';
    expect(first.out).to.match(new RegExp(`The demo's choice: ${method}, the highest validation accuracy \\([\\d.]+; .+ [\\d.]+, .+ [\\d.]+\\)`));
    expect(first.out).to.match(new RegExp(`not judged \\(--quick\\): ${method} (improved|did not improve) held-out accuracy [\\d.]+ -> [\\d.]+; against the naive Bayes baseline: (ahead|behind)`));
    expect(first.out).to.match(/full fine-tuning\s+[\d,]+ \(100\.00%\)/);
    expect(first.out).to.match(/LoRA \(r 8, all linear layers\)\s+[\d,]+ \([\d.]+%\)/);
    expect(first.out).to.match(/head only\s+[\d,]+ \([\d.]+%\)/);
    expect(first.out).to.match(new RegExp(`pipeline\\('text-classification'\\) with the ${method} model \\(.*\\) on ".*": (ham|spam) \\(score [\\d.]+\\)`));
    // Full fine-tuning's restarts (two under --quick): each run in its own folder, the best on validation kept.
    expect(first.out).to.match(/- full fine-tuning, seed 7 \(run 1 of 2\)[\s\S]*- full fine-tuning, seed 8 \(run 2 of 2\)/);
    expect(first.out).to.match(/full fine-tuning: kept the run with seed [78], the best validation accuracy of 2 \(seed 7 [\d.]+, seed 8 [\d.]+; the test set only reports\)/);
    expect(first.out).to.contain("(full fine-tuning: the run kept of 2, seeds 7-8, chosen on validation; its time is all 2 runs')");
    for (const s of [7, 8]) {
      expect(fs.existsSync(path.join(out, 'full', `seed-${s}`, 'report.html'))).to.equal(true);
      expect(fs.existsSync(path.join(out, 'full', `seed-${s}`, 'model', 'model.safetensors'))).to.equal(true);
    }
    expect(fs.existsSync(path.join(out, 'lora', 'report.html'))).to.equal(true);
    expect(fs.existsSync(path.join(out, 'partial', 'report.html'))).to.equal(true);
    expect(fs.existsSync(path.join(out, 'lora', 'adapter', 'adapter_model.safetensors'))).to.equal(true);
    const bases = fs.readdirSync(cache).filter((d) => d.startsWith('demo-base-'));
    expect(bases).to.have.length(1);
    expect(JSON.parse(fs.readFileSync(path.join(cache, bases[0]!, 'nodetune-demo.json'), 'utf8')).what).to.contain('pretrained by nodetune');
    const domains = fs.readdirSync(cache).filter((d) => d.startsWith('demo-domain-'));
    expect(domains).to.have.length(1);
    expect(JSON.parse(fs.readFileSync(path.join(cache, domains[0]!, 'nodetune-demo.json'), 'utf8')).what).to.contain('domain-adaptive pretraining on');
    expect(fs.readdirSync(cache).filter((d) => d.startsWith('.'))).to.deep.equal([]);
    const second = demo(['--quick', '--out', out], cache);
    expect(second.status, second.out).to.equal(0);
    expect(second.out).to.contain(`cached: ${path.join(cache, bases[0]!)}`);
    expect(second.out).to.contain(`cached: ${path.join(cache, domains[0]!)}`);
    // Without the domain stage the classifier starts from the speech base itself.
    const none = demo(['--quick', '--out', out, '--domain-steps', '0', '--seed', '1'], cache);
    expect(none.status, none.out).to.equal(0);
    expect(none.out).not.to.contain('domain-adaptive');
    expect(demo(['--quick', '--seed', 'x'], cache).status).to.equal(2);
  });

  it('the merged LoRA checkpoint loads as a plain classifier with the label names', async () => {
    const cache = tempDir('nodetune-demo-cache-');
    const out = tempDir('nodetune-demo-out-');
    const r = demo(['--quick', '--out', out, '--model', tinyModelDir('bert-cls', 'encoder')], cache);
    expect(r.status, r.out).to.equal(0);
    expect(r.out).to.contain('(given with --model)');
    expect(fs.readdirSync(cache)).to.deep.equal([]);
    const merged = await AutoModel.fromPretrained(path.join(out, 'lora-merged'), { quiet: true });
    expect(merged.task).to.equal('sequence-classification');
    expect(merged.config.id2label).to.deep.equal({ 0: 'ham', 1: 'spam' });
    expect(merged.loadReport.newlyInitialized).to.deep.equal([]);
  });
});
