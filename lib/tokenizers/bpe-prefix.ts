/**
 * A smaller vocabulary from a byte-level BPE tokenizer (GPT-2's family): the same tokenizer stopped after its first
 * `merges` merges. BPE applies merges in rank order, so every token of the cut vocabulary is a token of the original
 * with the same bytes, any text still encodes (down to single bytes, which stay) and decodes back exactly; words past
 * the cut come out as a few more, shorter tokens. For a model trained from scratch on a small corpus, GPT-2's 50,257
 * rows of embedding and LM head are mostly rows it never sees, and the LM head's softmax dominates the compute: a
 * prefix of the merges keeps the tokenizer's behaviour and ids (the original's ids below the cut are unchanged; the
 * added tokens such as <|endoftext|> move down to follow the kept vocabulary).
 */
import * as fs from 'fs';
import * as path from 'path';
import { NodetuneError, check } from '../errors';

interface AddedToken {
  id: number;
  content: string;
}

interface TokenizerJson {
  model?: { type?: string; vocab?: Record<string, number>; merges?: Array<string | [string, string]> };
  added_tokens?: AddedToken[];
  post_processor?: unknown;
}

export interface BpePrefixResult {
  /** Tokens in the cut vocabulary, added tokens included. */
  vocabSize: number;
  /** Merges kept: the `merges` asked for, less those whose parts no earlier kept merge makes (none in GPT-2's). */
  merges: number;
  /** The original's merges and vocabulary size. */
  original: { merges: number; vocabSize: number };
}

/** The files besides tokenizer.json that describe a tokenizer by token content (copied unchanged). */
const SIDE_FILES = ['tokenizer_config.json', 'special_tokens_map.json'];

/**
 * Writes to `dstDir` the tokenizer of `srcDir` (a tokenizer.json with a BPE model) cut to its first `merges` merges
 * (skipping any whose parts are not made by a merge before it): the vocabulary keeps the tokens no merge produces (the
 * byte alphabet) and the products of the kept merges, numbered in the original's order; added tokens follow. tokenizer_config.json and special_tokens_map.json are copied.
 */
export function writeBpePrefixTokenizer(srcDir: string, dstDir: string, merges: number): BpePrefixResult {
  const file = path.join(srcDir, 'tokenizer.json');
  if (!fs.existsSync(file)) throw new NodetuneError('ERR_IO', `writeBpePrefixTokenizer: ${file} does not exist`, { file });
  const json = JSON.parse(fs.readFileSync(file, 'utf8')) as TokenizerJson;
  const model = json.model;
  if (model?.type !== 'BPE' || !model.vocab || !Array.isArray(model.merges)) {
    throw new NodetuneError('ERR_CONFIG', `writeBpePrefixTokenizer: ${file} holds no BPE model (model.type ${JSON.stringify(model?.type)})`, { file, field: 'model.type' });
  }
  const all = model.merges.map((m) => (typeof m === 'string' ? (m.split(' ') as [string, string]) : m));
  check(Number.isInteger(merges) && merges >= 0 && merges <= all.length,
    `writeBpePrefixTokenizer: merges must be a whole number from 0 to ${all.length} (the tokenizer's merges), got ${merges}`, 'merges');
  const produced = new Set(all.map(([a, b]) => a + b));
  const added = new Set((json.added_tokens ?? []).map((t) => t.content));
  // The alphabet (tokens no merge makes), then each of the first `merges` merges whose two parts are already there
  // (in GPT-2's order that is every one; Llama 3's lists some merges before the merges that make their parts).
  const kept = new Set(Object.keys(model.vocab).filter((t) => !produced.has(t) && !added.has(t)));
  const keptMerges: number[] = [];
  all.slice(0, merges).forEach(([a, b], i) => {
    if (!kept.has(a) || !kept.has(b)) return;
    kept.add(a + b);
    keptMerges.push(i);
  });
  const tokens = Object.entries(model.vocab).filter(([t]) => kept.has(t)).sort((x, y) => x[1] - y[1]);
  const vocab: Record<string, number> = {};
  const remap = new Map<number, number>();
  tokens.forEach(([t, id], i) => {
    vocab[t] = i;
    remap.set(id, i);
  });
  let next = tokens.length;
  const addedTokens = (json.added_tokens ?? []).slice().sort((x, y) => x.id - y.id).map((t) => {
    const id = next++;
    remap.set(t.id, id);
    if (t.content in model.vocab!) vocab[t.content] = id;
    return { ...t, id };
  });
  // Post-processors (TemplateProcessing, RobertaProcessing) name special tokens with their ids: renumber those too.
  const postProcessor = JSON.parse(JSON.stringify(json.post_processor ?? null), (key, value: unknown) => {
    if (key === 'ids' && Array.isArray(value)) return value.map((id) => (typeof id === 'number' ? remap.get(id) ?? id : id));
    if ((key === 'sep' || key === 'cls') && Array.isArray(value) && typeof value[1] === 'number') return [value[0], remap.get(value[1]) ?? value[1]];
    return value;
  }) as unknown;
  const out = { ...json, added_tokens: addedTokens, post_processor: postProcessor, model: { ...model, vocab, merges: keptMerges.map((i) => model.merges![i]) } };
  fs.mkdirSync(dstDir, { recursive: true });
  fs.writeFileSync(path.join(dstDir, 'tokenizer.json'), JSON.stringify(out));
  for (const f of SIDE_FILES) {
    if (fs.existsSync(path.join(srcDir, f))) fs.writeFileSync(path.join(dstDir, f), fs.readFileSync(path.join(srcDir, f)));
  }
  return { vocabSize: next, merges: keptMerges.length, original: { merges: all.length, vocabSize: Object.keys(model.vocab).length + [...added].filter((t) => !(t in model.vocab!)).length } };
}
