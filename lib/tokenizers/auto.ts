/** AutoTokenizer.fromPretrained: a directory (or a repo id found in the local Hugging Face cache). */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { NodetuneError, check } from '../errors';
import { rustTokenizers } from './binding';
import type { RustTokenizer } from './binding';
import { readJsonIfExists, tokenContent } from './config';
import type { TokenizerConfig } from './config';
import { byteLevelBpeJson, wordPieceJson } from './legacy';
import { PreTrainedTokenizer } from './tokenizer';
import { checkOptionKeys } from '../util/options';
import { TOKENIZER_LOAD_KEYS } from '../util/option-keys';

export interface FromPretrainedOptions {
  /** Overrides for tokenizer_config.json entries (e.g. { padding_side: 'left', pad_token: '<|endoftext|>' }). */
  config?: Partial<TokenizerConfig>;
  /** A Jinja chat template to use instead of the one in tokenizer_config.json. */
  chatTemplate?: string;
}

function hubCacheDirs(): string[] {
  const env = process.env;
  const dirs: string[] = [];
  if (env.HF_HUB_CACHE) dirs.push(env.HF_HUB_CACHE);
  if (env.HF_HOME) dirs.push(path.join(env.HF_HOME, 'hub'));
  dirs.push(path.join(os.homedir(), '.cache', 'huggingface', 'hub'));
  return dirs;
}

/** The snapshot folder of a repo id in the Hugging Face cache (refs/main), if present. */
function fromHubCache(repoId: string): { dir?: string; tried: string[] } {
  const tried: string[] = [];
  for (const cache of hubCacheDirs()) {
    const repoDir = path.join(cache, `models--${repoId.replace('/', '--')}`);
    tried.push(repoDir);
    const ref = path.join(repoDir, 'refs', 'main');
    if (!fs.existsSync(ref)) continue;
    const snap = path.join(repoDir, 'snapshots', fs.readFileSync(ref, 'utf8').trim());
    if (fs.existsSync(snap)) return { dir: snap, tried };
  }
  return { tried };
}

export function resolveTokenizerDir(dirOrRepoId: string): string {
  check(typeof dirOrRepoId === 'string' && dirOrRepoId.length > 0, 'fromPretrained: a directory or repo id is required', 'dirOrRepoId');
  const asPath = path.resolve(dirOrRepoId);
  if (fs.existsSync(asPath)) {
    if (!fs.statSync(asPath).isDirectory()) {
      throw new NodetuneError('ERR_IO', `${asPath} is not a directory (pass the folder that holds tokenizer.json)`, { file: asPath });
    }
    return asPath;
  }
  if (/^[\w.-]+\/[\w.-]+$/.test(dirOrRepoId)) {
    const hit = fromHubCache(dirOrRepoId);
    if (hit.dir) return hit.dir;
    throw new NodetuneError('ERR_IO',
      `tokenizer "${dirOrRepoId}" is neither a directory nor in the local Hugging Face cache (looked in ${hit.tried.join(', ')}); ` +
      'nodetune does not download: fetch it first (e.g. huggingface-cli download) and pass the folder', { file: dirOrRepoId });
  }
  throw new NodetuneError('ERR_IO', `tokenizer directory ${asPath} does not exist`, { file: asPath });
}

/** Ids of the added tokens marked special in tokenizer.json (or in tokenizer_config.json's added_tokens_decoder). */
function specialAddedTokens(dir: string, config: TokenizerConfig): Map<string, number> {
  const out = new Map<string, number>();
  const tj = path.join(dir, 'tokenizer.json');
  if (fs.existsSync(tj)) {
    const doc = readJsonIfExists(tj) as { added_tokens?: Array<{ id: number; content: string; special?: boolean }> };
    for (const t of doc.added_tokens ?? []) if (t.special) out.set(t.content, t.id);
  }
  const dec = config.added_tokens_decoder as Record<string, { content?: string; special?: boolean }> | undefined;
  for (const [id, t] of Object.entries(dec ?? {})) if (t.special && typeof t.content === 'string') out.set(t.content, Number(id));
  return out;
}

function loadEngine(dir: string, config: TokenizerConfig): RustTokenizer {
  const { Tokenizer } = rustTokenizers();
  const tj = path.join(dir, 'tokenizer.json');
  try {
    if (fs.existsSync(tj)) return Tokenizer.fromFile(tj);
    if (fs.existsSync(path.join(dir, 'vocab.json')) && fs.existsSync(path.join(dir, 'merges.txt'))) {
      return Tokenizer.fromString(byteLevelBpeJson(dir, config));
    }
    if (fs.existsSync(path.join(dir, 'vocab.txt'))) return Tokenizer.fromString(wordPieceJson(dir, config));
  } catch (e) {
    if (e instanceof NodetuneError) throw e;
    throw new NodetuneError('ERR_CONFIG', `cannot load the tokenizer in ${dir}: ${(e as Error).message}`, { file: dir });
  }
  const present = fs.readdirSync(dir).join(', ') || '(empty)';
  throw new NodetuneError('ERR_CONFIG',
    `${dir} holds no tokenizer: expected tokenizer.json, vocab.json + merges.txt, or vocab.txt (found: ${present})`, { file: dir });
}

export const AutoTokenizer = {
  async fromPretrained(dirOrRepoId: string, opts: FromPretrainedOptions = {}): Promise<PreTrainedTokenizer> {
    checkOptionKeys(opts, TOKENIZER_LOAD_KEYS, 'AutoTokenizer.fromPretrained()');
    const dir = resolveTokenizerDir(dirOrRepoId);
    const config: TokenizerConfig = {
      ...readJsonIfExists(path.join(dir, 'special_tokens_map.json')),
      ...readJsonIfExists(path.join(dir, 'tokenizer_config.json')),
      ...opts.config,
    };
    const engine = loadEngine(dir, config);
    const specials = specialAddedTokens(dir, config);
    for (const t of [config.bos_token, config.eos_token, config.unk_token, config.pad_token, config.cls_token, config.sep_token, config.mask_token]) {
      const content = tokenContent(t);
      const id = content === undefined ? null : engine.tokenToId(content);
      if (content !== undefined && id !== null) specials.set(content, id);
    }
    const tok = new PreTrainedTokenizer(engine, config, dir, new Set(specials.values()));
    if (opts.chatTemplate !== undefined) tok.setChatTemplate(opts.chatTemplate);
    return tok;
  },
};
