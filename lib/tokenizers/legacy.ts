/**
 * Builds a tokenizer.json document for the older directory layouts, so that one engine (the Rust binding)
 * handles every format: GPT-2 style `vocab.json` + `merges.txt` (byte-level BPE) and BERT `vocab.txt` (WordPiece).
 */
import * as fs from 'fs';
import * as path from 'path';
import { NodetuneError } from '../errors';
import type { TokenizerConfig } from './config';
import { tokenContent } from './config';

function readText(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new NodetuneError('ERR_IO', `cannot read ${file}: ${(e as Error).message}`, { file });
  }
}

function addedToken(id: number, content: string): Record<string, unknown> {
  return { id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true };
}

/** tokenizer.json for a byte-level BPE given as vocab.json + merges.txt (GPT-2, RoBERTa layouts). */
export function byteLevelBpeJson(dir: string, config: TokenizerConfig): string {
  const vocabFile = path.join(dir, 'vocab.json');
  let vocab: Record<string, number>;
  try {
    vocab = JSON.parse(readText(vocabFile)) as Record<string, number>;
  } catch (e) {
    if (e instanceof NodetuneError) throw e;
    throw new NodetuneError('ERR_CONFIG', `${vocabFile} is not valid JSON: ${(e as Error).message}`, { file: vocabFile });
  }
  const merges: string[] = [];
  const mergesFile = path.join(dir, 'merges.txt');
  readText(mergesFile).split('\n').forEach((line, i) => {
    if (line.startsWith('#version') || line.trim() === '') return;
    const parts = line.split(' ');
    if (parts.length !== 2) {
      throw new NodetuneError('ERR_CONFIG', `${mergesFile}:${i + 1}: expected two symbols separated by one space, got ${JSON.stringify(line)}`, { file: mergesFile, line: i + 1 });
    }
    merges.push(line);
  });
  const specials = new Set<string>();
  for (const key of ['bos_token', 'eos_token', 'unk_token', 'pad_token'] as const) {
    const t = tokenContent(config[key]);
    if (t !== undefined && vocab[t] !== undefined) specials.add(t);
  }
  const addPrefixSpace = config.add_prefix_space === true;
  const byteLevel = { type: 'ByteLevel', add_prefix_space: addPrefixSpace, trim_offsets: true, use_regex: true };
  return JSON.stringify({
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [...specials].map((t) => addedToken(vocab[t] as number, t)),
    normalizer: null,
    pre_tokenizer: byteLevel,
    post_processor: { ...byteLevel, trim_offsets: false },
    decoder: byteLevel,
    model: {
      type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: '', end_of_word_suffix: '',
      fuse_unk: false, byte_fallback: false, vocab, merges,
    },
  });
}

/** tokenizer.json for a BERT WordPiece vocabulary given as vocab.txt. */
export function wordPieceJson(dir: string, config: TokenizerConfig): string {
  const vocabFile = path.join(dir, 'vocab.txt');
  const vocab: Record<string, number> = {};
  const lines = readText(vocabFile).split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  lines.forEach((line, i) => {
    const token = line.replace(/\r$/, '');
    if (!(token in vocab)) vocab[token] = i;
  });
  const need = (key: 'cls_token' | 'sep_token' | 'unk_token' | 'pad_token' | 'mask_token', dflt: string): string => {
    const t = tokenContent(config[key]) ?? dflt;
    if (vocab[t] === undefined) {
      throw new NodetuneError('ERR_CONFIG', `${vocabFile} has no ${key} ${JSON.stringify(t)}`, { file: vocabFile, field: key });
    }
    return t;
  };
  const cls = need('cls_token', '[CLS]');
  const sep = need('sep_token', '[SEP]');
  const unk = need('unk_token', '[UNK]');
  const specials = [need('pad_token', '[PAD]'), unk, cls, sep, need('mask_token', '[MASK]')];
  const id = (t: string): number => vocab[t] as number;
  const lowercase = config.do_lower_case !== false;
  return JSON.stringify({
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: specials.map((t) => addedToken(id(t), t)).sort((a, b) => (a.id as number) - (b.id as number)),
    normalizer: {
      type: 'BertNormalizer', clean_text: true, handle_chinese_chars: config.tokenize_chinese_chars !== false,
      strip_accents: config.strip_accents ?? null, lowercase,
    },
    pre_tokenizer: { type: 'BertPreTokenizer' },
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: cls, type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: sep, type_id: 0 } }],
      pair: [
        { SpecialToken: { id: cls, type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: sep, type_id: 0 } },
        { Sequence: { id: 'B', type_id: 1 } }, { SpecialToken: { id: sep, type_id: 1 } },
      ],
      special_tokens: {
        [cls]: { id: cls, ids: [id(cls)], tokens: [cls] },
        [sep]: { id: sep, ids: [id(sep)], tokens: [sep] },
      },
    },
    decoder: { type: 'WordPiece', prefix: '##', cleanup: true },
    model: { type: 'WordPiece', unk_token: unk, continuing_subword_prefix: '##', max_input_chars_per_word: 100, vocab },
  });
}
