import { expect } from 'chai';
import * as fs from 'fs';
import * as path from 'path';
import { AutoTokenizer } from '../lib/tokenizers';
import type { PreTrainedTokenizer } from '../lib/tokenizers';
import { Augmenter, DataLoader, LabelMap, batchIndices, collate, lengthGroupedBatches, prefetch, readExamples } from '../lib/data';
import type { Batch, Example, Feature } from '../lib/data';
import { rejects, sharedAssets, tempDir, throws } from './helpers';

const rows = (b: Batch, key: 'inputIds' | 'attentionMask' | 'labels' | 'tokenTypeIds'): number[][] => {
  const [n, len] = b.shape;
  const a = b[key] as Int32Array;
  return Array.from({ length: n }, (_, r) => Array.from(a.subarray(r * len, (r + 1) * len)));
};

describe('36 data: collate and loader', function () {
  it('pads dynamically to the longest row, right or left, with attention masks and -100 label padding', function () {
    const feats: Feature[] = [{ inputIds: [1, 2, 3], labels: [1, 2, 3] }, { inputIds: [4], labels: [-100] }];
    const right = collate(feats, { padTokenId: 0 });
    expect(right.shape).to.deep.equal([2, 3]);
    expect(right.inputIds).to.be.instanceOf(Int32Array);
    expect(rows(right, 'inputIds')).to.deep.equal([[1, 2, 3], [4, 0, 0]]);
    expect(rows(right, 'attentionMask')).to.deep.equal([[1, 1, 1], [1, 0, 0]]);
    expect(rows(right, 'labels')).to.deep.equal([[1, 2, 3], [-100, -100, -100]]);
    const left = collate(feats, { padTokenId: 0, paddingSide: 'left' });
    expect(rows(left, 'inputIds')).to.deep.equal([[1, 2, 3], [0, 0, 4]]);
    expect(rows(left, 'attentionMask')).to.deep.equal([[1, 1, 1], [0, 0, 1]]);
  });

  it('pads to a multiple of 8 on request; class labels [batch]; QA positions shift with left padding', function () {
    const b = collate([{ inputIds: Array(9).fill(5), tokenTypeIds: Array(9).fill(1), label: 2 }, { inputIds: [5], label: 0 }], { padTokenId: 0, padToMultipleOf: 8 });
    expect(b.shape).to.deep.equal([2, 16]);
    expect(Array.from(b.labels as Int32Array)).to.deep.equal([2, 0]);
    expect(rows(b, 'tokenTypeIds')[0]?.slice(8, 10)).to.deep.equal([1, 0]);
    const qa = collate([{ inputIds: [1, 2, 3, 4], startPosition: 2, endPosition: 3 }, { inputIds: [1, 2], startPosition: 1, endPosition: 1 }], { padTokenId: 0, paddingSide: 'left' });
    expect(Array.from(qa.startPositions as Int32Array)).to.deep.equal([2, 3]);
    expect(Array.from(qa.endPositions as Int32Array)).to.deep.equal([3, 3]);
  });

  it('a batch whose labels are all -100 is an ERR_DATA naming the rows, not a silent zero loss', function () {
    const err = throws(() => collate([{ inputIds: [1, 2], labels: [-100, -100], source: { file: 'sft.jsonl', line: 7 } }], { padTokenId: 0 }));
    expect(err.code).to.equal('ERR_DATA');
    expect(err.message).to.match(/every label in this batch is -100.*sft\.jsonl:7/);
  });

  it('length-grouped batching puts similar lengths together, longest batch first, every index once', function () {
    const lengths = Array.from({ length: 64 }, (_, i) => (i * 37) % 64);
    const batches = lengthGroupedBatches(lengths, { batchSize: 8, seed: 1 });
    expect(batches.flat().sort((a, b) => a - b)).to.deep.equal(lengths.map((_, i) => i));
    expect(lengths[(batches[0] as number[])[0] as number]).to.equal(63);
    const spread = (b: number[]): number => Math.max(...b.map((i) => lengths[i] as number)) - Math.min(...b.map((i) => lengths[i] as number));
    expect(Math.max(...batches.map(spread))).to.be.lessThan(8);
    expect(Math.max(...batchIndices(64, { batchSize: 8, shuffle: true, seed: 1 }).map(spread))).to.be.greaterThan(20);
  });

  it('prefetch runs the producer ahead of the consumer', async function () {
    let produced = 0;
    async function* source(): AsyncGenerator<number> { for (let i = 0; i < 5; i++) { produced++; yield i; } }
    const it = prefetch(source(), 3);
    const first = await it.next();
    expect(first.value).to.equal(0);
    await new Promise((r) => setImmediate(r));
    expect(produced).to.be.greaterThanOrEqual(3);
    const rest: number[] = [];
    for await (const x of it) rest.push(x);
    expect(rest).to.deep.equal([1, 2, 3, 4]);
  });

  describe('DataLoader', function () {
    let bert: PreTrainedTokenizer;
    let gpt2: PreTrainedTokenizer;
    before(async function () {
      const assets = sharedAssets();
      if (!assets || !fs.existsSync(path.join(assets, 'tokenizers/gpt2/tokenizer.json'))) this.skip();
      bert = await AutoTokenizer.fromPretrained(path.join(assets as string, 'tokenizers/bert-base-uncased'));
      gpt2 = await AutoTokenizer.fromPretrained(path.join(assets as string, 'tokenizers/gpt2'));
    });

    const data: Example[] = [
      { text: 'a truly great film', label: 'pos' }, { text: 'bad', label: 'neg' }, { text: 'not good at all, sadly', label: 'neg' },
      { text: 'fine', label: 'pos' }, { text: 'loved every single minute of it', label: 'pos' },
    ];

    it('classification batches: every example once per epoch, reshuffled per epoch, padded with the pad token', async function () {
      const loader = new DataLoader(data, { tokenizer: bert, task: 'classification', batchSize: 2, labelMap: new LabelMap(['neg', 'pos']), seed: 3 });
      const epoch = async (): Promise<Batch[]> => { const out: Batch[] = []; for await (const b of loader) out.push(b); return out; };
      const e1 = await epoch();
      expect(e1.map((b) => b.shape[0])).to.deep.equal([2, 2, 1]);
      expect(e1.reduce((a, b) => a + Array.from(b.labels as Int32Array).filter((l) => l === 1).length, 0)).to.equal(3);
      for (const b of e1) expect(Array.from(b.inputIds).every((id, i) => (b.attentionMask[i] === 0 ? id === 0 : true))).to.equal(true);
      const e2 = await epoch();
      const order = (bs: Batch[]): string => bs.map((b) => Array.from(b.inputIds).join(',')).join('|');
      expect(order(e2)).to.not.equal(order(e1));
      const val = new DataLoader(data, { tokenizer: bert, task: 'classification', batchSize: 5, split: 'validation', labelMap: new LabelMap(['neg', 'pos']) });
      for await (const b of val) expect(Array.from(b.labels as Int32Array)).to.deep.equal([1, 0, 0, 1, 1]); // validation keeps its order
    });

    it('augmentation is applied on the fly to training batches only, and keeps the labels', async function () {
      const aug = new Augmenter({ randomSwap: 0.5, seed: 9 });
      const loader = new DataLoader(data, { tokenizer: bert, task: 'classification', batchSize: 5, shuffle: false, labelMap: new LabelMap(['neg', 'pos']), augment: aug });
      const plain = new DataLoader(data, { tokenizer: bert, task: 'classification', batchSize: 5, shuffle: false, labelMap: new LabelMap(['neg', 'pos']) });
      const [a] = await (async () => { const o: Batch[] = []; for await (const b of loader) o.push(b); return o; })();
      const [p] = await (async () => { const o: Batch[] = []; for await (const b of plain) o.push(b); return o; })();
      expect(Array.from(a?.labels as Int32Array)).to.deep.equal(Array.from(p?.labels as Int32Array));
      expect(Array.from(a?.inputIds as Int32Array)).to.not.deep.equal(Array.from(p?.inputIds as Int32Array));
      const err = throws(() => new DataLoader(data, { tokenizer: bert, task: 'classification', batchSize: 2, split: 'validation', augment: aug }));
      expect(err.code).to.equal('ERR_ARGUMENT');
      expect(err.message).to.match(/training data only/);
    });

    it('groupByLength batches rows of similar length', async function () {
      const many: Example[] = Array.from({ length: 40 }, (_, i) => ({ text: 'word '.repeat(1 + ((i * 7) % 40)), label: 'pos' }));
      const padding = async (groupByLength: boolean): Promise<number> => {
        const loader = new DataLoader(many, { tokenizer: bert, task: 'classification', batchSize: 4, groupByLength, seed: 2, labelMap: new LabelMap(['neg', 'pos']), padToMultipleOf: 8 });
        let padded = 0;
        for await (const b of loader) {
          expect(b.shape[1] % 8).to.equal(0);
          padded += Array.from(b.attentionMask).filter((m) => m === 0).length;
        }
        return padded;
      };
      const grouped = await padding(true);
      const random = await padding(false);
      expect(grouped).to.be.lessThan(random / 2);
    });

    it('causal LM from a streamed corpus file: fixed blocks, labels equal to inputs', async function () {
      const file = path.join(tempDir(), 'corpus.txt');
      fs.writeFileSync(file, 'First document line.\nAnother line here.\n'.repeat(50));
      const loader = new DataLoader(() => readExamples(file, { format: 'corpus', chunkChars: 200 }), { tokenizer: gpt2, task: 'causal-lm', batchSize: 4, blockSize: 16, seed: 1 });
      let blocks = 0;
      for await (const b of loader) {
        expect(b.shape[1]).to.equal(16);
        expect(Array.from(b.labels as Int32Array)).to.deep.equal(Array.from(b.inputIds));
        blocks += b.shape[0];
      }
      const total = (await gpt2.encode(fs.readFileSync(file, 'utf8'))).ids.length;
      expect(blocks).to.be.within(Math.floor(total / 16) - 2, Math.ceil(total / 16));
    });

    it('tokenization runs in the engine\'s native threads: the event loop keeps turning during a large encode', async function () {
      const text = 'To be, or not to be, that is the question. '.repeat(200);
      const pieces = Array.from({ length: 100 }, (_, i) => `${i} ${text}`);
      let ticks = 0;
      let running = true;
      const spin = (): void => { ticks++; if (running) setImmediate(spin); };
      setImmediate(spin);
      const t0 = Date.now();
      const ids = await gpt2.encodeIds(pieces);
      const ms = Date.now() - t0;
      running = false;
      expect(ids.length).to.equal(100);
      expect(ms).to.be.greaterThan(20);
      expect(ticks).to.be.greaterThan(10);
    });

    it('every task goes through the loader: QA windows, token classification, instruction, chat; the tokenizer\'s padding side', async function () {
      const all = async (l: DataLoader): Promise<Batch[]> => { const o: Batch[] = []; for await (const b of l) o.push(b); return o; };
      const context = 'Bob lives in Oslo. ' + 'Nothing else happens here at all. '.repeat(8);
      const qa = await all(new DataLoader([{ question: 'Where?', context, answers: { text: ['Oslo'], answerStart: [13] } }],
        { tokenizer: bert, task: 'qa', batchSize: 2, maxLength: 32, stride: 8, shuffle: false }));
      expect(qa.reduce((a, b) => a + b.shape[0], 0)).to.be.greaterThan(2); // one example, several windows
      expect(Array.from(qa[0]?.startPositions as Int32Array)[0]).to.be.greaterThan(0);
      const tc = await all(new DataLoader([{ tokens: ['Bob', 'lives'], tags: ['B-PER', 'O'] }],
        { tokenizer: bert, task: 'token-classification', batchSize: 1, labelMap: new LabelMap(['B-PER', 'O']) }));
      expect(rows(tc[0] as Batch, 'labels')).to.deep.equal([[-100, 0, 1, -100]]);
      const leftGpt2 = await AutoTokenizer.fromPretrained(path.join(sharedAssets() as string, 'tokenizers/gpt2'), { config: { padding_side: 'left' } });
      const ins = await all(new DataLoader([{ prompt: 'Say hi:', completion: ' hi' }, { prompt: 'A much longer prompt here:', completion: ' ok' }],
        { tokenizer: leftGpt2, task: 'instruction', batchSize: 2, shuffle: false }));
      const [r0] = rows(ins[0] as Batch, 'attentionMask');
      expect(r0?.[0]).to.equal(0); // left padding from the tokenizer config
      expect(rows(ins[0] as Batch, 'labels')[0]?.slice(-2)).to.deep.equal([23105, 50256]);
      const chatTok = await AutoTokenizer.fromPretrained(path.join(sharedAssets() as string, 'tokenizers/gpt2'),
        { chatTemplate: '{% for m in messages %}{{ m.role }}: {{ m.content }}{{ eos_token }}{% endfor %}{% if add_generation_prompt %}assistant:{% endif %}' });
      const chat = await all(new DataLoader([{ messages: [{ role: 'user', content: 'Hi' }, { role: 'assistant', content: 'Hello' }] }],
        { tokenizer: chatTok, task: 'chat', batchSize: 1 }));
      const labels = (rows(chat[0] as Batch, 'labels')[0] ?? []).filter((l) => l !== -100);
      expect(await chatTok.decode(labels)).to.equal(' Hello<|endoftext|>');
    });

    it('an empty split and a streaming source for a non-LM task are clear errors', async function () {
      const empty = new DataLoader([], { tokenizer: bert, task: 'classification', batchSize: 2 });
      const err = await rejects((async () => { for await (const _ of empty) { /* none */ } })());
      expect(err.code).to.equal('ERR_DATA');
      expect(throws(() => new DataLoader(() => readExamples('x.jsonl'), { tokenizer: bert, task: 'classification', batchSize: 2 })).code).to.equal('ERR_ARGUMENT');
    });
  });
});
