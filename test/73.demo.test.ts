import { expect } from 'chai';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { AutoModel } from '../lib/models';
import { emailText, classifierInput, EMAIL_END } from '../examples/demo/spam';
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

  it('pretrains its own base (and says so), fine-tunes with LoRA and head-only, merges, classifies through the pipeline, exits 0; the base is cached', () => {
    const cache = tempDir('nodetune-demo-cache-');
    const out = tempDir('nodetune-demo-out-');
    const first = demo(['--quick', '--out', out], cache);
    expect(first.status, first.out).to.equal(0);
    expect(first.out).to.contain('this demo pretrains its own small GPT-2-shaped');
    expect(first.out).to.match(/pretrained in \d+ s on [\d,]+ tokens; held-out perplexity \d+ -> \d+/);
    expect(first.out).to.match(/LoRA \(r 8, all linear layers\)\s+[\d,]+ \([\d.]+%\)/);
    expect(first.out).to.match(/head only\s+[\d,]+ \([\d.]+%\)/);
    expect(first.out).to.match(/pipeline\('text-classification'\) on ".*": (ham|spam) \(score [\d.]+\)/);
    expect(fs.existsSync(path.join(out, 'lora', 'report.html'))).to.equal(true);
    expect(fs.existsSync(path.join(out, 'partial', 'report.html'))).to.equal(true);
    expect(fs.existsSync(path.join(out, 'lora', 'adapter', 'adapter_model.safetensors'))).to.equal(true);
    const bases = fs.readdirSync(cache).filter((d) => d.startsWith('demo-base-'));
    expect(bases).to.have.length(1);
    expect(JSON.parse(fs.readFileSync(path.join(cache, bases[0]!, 'nodetune-demo.json'), 'utf8')).what).to.contain('pretrained by nodetune');
    const second = demo(['--quick', '--out', out], cache);
    expect(second.status, second.out).to.equal(0);
    expect(second.out).to.contain(`cached: ${path.join(cache, bases[0]!)}`);
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
