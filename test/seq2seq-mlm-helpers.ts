/** Model folders of the seq2seq and masked-LM tests (64, 75): tiny fixtures with a tokenizer beside them. */
import * as fs from 'fs';
import * as path from 'path';
import { repoRoot, tempDir } from './helpers';
import { fixture } from './models-helpers';

export const T5_TOKENIZER = path.join(repoRoot, 'test', 'fixtures', 'tokenizers', 't5-unigram');

/** A model folder: a fixture's config + weights, the tokenizer files beside them, config.json edited by `patch`. */
export function modelDir(name: string, tokenizer: (dir: string) => void, patch: Record<string, unknown> = {}): string {
  const dir = tempDir(`nodetune-${name}-`);
  fs.copyFileSync(path.join(fixture(name), 'model.safetensors'), path.join(dir, 'model.safetensors'));
  const config = JSON.parse(fs.readFileSync(path.join(fixture(name), 'config.json'), 'utf8')) as Record<string, unknown>;
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ ...config, ...patch }));
  tokenizer(dir);
  return dir;
}

export const t5Tokenizer = (dir: string) => { for (const f of fs.readdirSync(T5_TOKENIZER)) fs.copyFileSync(path.join(T5_TOKENIZER, f), path.join(dir, f)); };

/** 40 WordPiece entries, the vocabulary size of the *-mlm fixtures ([PAD] = 0). */
export const MLM_WORDS = ['the', 'cat', 'dog', 'sat', 'on', 'mat', 'a', 'ran', 'to', 'big', 'red', 'fish', 'ate', 'and', 'run', 'jump',
  'play', 'house', 'tree', 'bird', 'sun', 'sky', 'blue', 'green', 'small', 'fast', 'slow', 'over', 'under', '##s', '##ing', '##ed', 'x', '##y', '.'];
export function wordPieceTokenizer(dir: string): void {
  fs.writeFileSync(path.join(dir, 'vocab.txt'), ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]', ...MLM_WORDS].join('\n') + '\n');
  fs.writeFileSync(path.join(dir, 'tokenizer_config.json'), JSON.stringify({
    do_lower_case: true, pad_token: '[PAD]', unk_token: '[UNK]', cls_token: '[CLS]', sep_token: '[SEP]', mask_token: '[MASK]', model_max_length: 16,
  }));
}
