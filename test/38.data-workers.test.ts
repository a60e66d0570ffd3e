import { expect } from 'chai';
import * as fs from 'fs';
import * as path from 'path';
import { threadId } from 'worker_threads';
import { AutoTokenizer } from '../lib/tokenizers';
import type { PreTrainedTokenizer } from '../lib/tokenizers';
import { DataLoader, FeaturePool, LabelMap } from '../lib/data';
import type { Batch, Example } from '../lib/data';
import { rejects, sharedAssets } from './helpers';

async function epoch(loader: DataLoader): Promise<Batch[]> {
  const out: Batch[] = [];
  for await (const b of loader) out.push(b);
  return out;
}

const flat = (bs: Batch[]): number[][] => bs.map((b) => [...Array.from(b.inputIds), ...Array.from(b.labels ?? [])]);

describe('38 data: formatting in worker threads', function () {
  let bert: PreTrainedTokenizer;
  before(async function () {
    const assets = sharedAssets();
    if (!assets || !fs.existsSync(path.join(assets, 'tokenizers/bert-base-uncased/tokenizer.json'))) this.skip();
    bert = await AutoTokenizer.fromPretrained(path.join(assets as string, 'tokenizers/bert-base-uncased'));
  });

  const data: Example[] = Array.from({ length: 600 }, (_, i) => ({ text: `example number ${i} ${'word '.repeat(i % 13)}`, label: i % 3 === 0 ? 'a' : 'b' }));

  it('workers give exactly the batches the main thread gives, and run in other threads', async function () {
    const opts = { tokenizer: bert, task: 'classification' as const, batchSize: 32, labelMap: new LabelMap(['a', 'b']), seed: 4, groupByLength: true };
    const here = await epoch(new DataLoader(data, opts));
    const loader = new DataLoader(data, { ...opts, workers: 2 });
    try {
      const there = await epoch(loader);
      expect(flat(there)).to.deep.equal(flat(here));
    } finally {
      await loader.close();
    }
    const pool = new FeaturePool(bert, { task: 'classification', labels: ['a', 'b'] }, 2);
    try {
      expect(pool.threadIds.length).to.equal(2);
      expect(pool.threadIds).to.not.include(threadId);
      const [f] = await pool.featurize([{ text: 'hello', label: 'b' }]);
      expect(f?.inputIds).to.deep.equal([101, 7592, 102]);
      expect(f?.label).to.equal(1);
    } finally {
      await pool.close();
    }
  });

  it('a custom chat template and config overrides reach the workers', async function () {
    const dir = path.join(sharedAssets() as string, 'tokenizers/gpt2');
    const tok = await AutoTokenizer.fromPretrained(dir, { chatTemplate: '{% for m in messages %}{{ m.role }}: {{ m.content }}{{ eos_token }}{% endfor %}{% if add_generation_prompt %}assistant:{% endif %}', config: { padding_side: 'left' } });
    const convo: Example[] = [{ messages: [{ role: 'user', content: 'Hi' }, { role: 'assistant', content: 'Hello there' }] }, { messages: [{ role: 'user', content: 'Yo' }, { role: 'assistant', content: 'Hey' }] }];
    const here = await epoch(new DataLoader(convo, { tokenizer: tok, task: 'chat', batchSize: 2, shuffle: false }));
    const loader = new DataLoader(convo, { tokenizer: tok, task: 'chat', batchSize: 2, shuffle: false, workers: 1 });
    try {
      expect(flat(await epoch(loader))).to.deep.equal(flat(here));
    } finally {
      await loader.close();
    }
  });

  it('an error in a worker comes back as the same NodetuneError with file and line', async function () {
    const bad: Example[] = [{ text: 'x', label: 'a', source: { file: 'train.csv', line: 2 } }, { text: 'y', label: 'zzz', source: { file: 'train.csv', line: 3 } }];
    const loader = new DataLoader(bad, { tokenizer: bert, task: 'classification', batchSize: 2, labelMap: new LabelMap(['a', 'b']), workers: 1 });
    try {
      const err = await rejects(epoch(loader));
      expect(err.code).to.equal('ERR_DATA');
      expect(err.message).to.equal('train.csv:3: unknown label "zzz" (known: a, b)');
      expect((err as unknown as { details: object }).details).to.include({ file: 'train.csv', line: 3 });
    } finally {
      await loader.close();
    }
  });
});
