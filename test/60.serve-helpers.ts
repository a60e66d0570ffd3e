/**
 * Helpers of the pipeline and server tests (test/6*.test.ts): tiny real checkpoints from test/fixtures/models,
 * each copied with a word-level tokenizer.json whose vocabulary has exactly the checkpoint's vocab_size, so every
 * id the tokenizer makes is one the model has (no ids taken modulo anything).
 */
import * as fs from 'fs';
import * as path from 'path';
import { AutoModel } from '../lib/models';
import { tempDir } from './helpers';
import { fixture } from './models-helpers';

const WORDS = ('user assistant system the a cat dog sat on mat is good bad day night sun moon tree house big small red blue ' +
  'ran jumped happy sad little girl boy park play ball home went saw and').split(' ');

function added(id: number, content: string) {
  return { id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true };
}

/**
 * Copies fixture `name` into a temp dir with a tokenizer. `style` 'encoder': [CLS] A [SEP] (pairs: [CLS] A [SEP] B [SEP]),
 * [PAD] at config.pad_token_id; 'causal': <s> A, with <s>/</s> at the config's bos/eos ids.
 */
export function tinyModelDir(name: string, style: 'encoder' | 'causal', chatTemplate?: string): string {
  const dir = tempDir(`nodetune-${name}-`);
  for (const f of ['config.json', 'model.safetensors']) fs.copyFileSync(path.join(fixture(name), f), path.join(dir, f));
  const config = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8')) as Record<string, number>;
  const size = config.vocab_size!;
  const specials = new Map<number, string>();
  if (style === 'encoder') {
    const padId = config.pad_token_id ?? 0;
    specials.set(padId, '[PAD]');
    for (const t of ['[UNK]', '[CLS]', '[SEP]', '[MASK]']) specials.set([0, 1, 2, 3, 4, 5].find((i) => !specials.has(i))!, t);
  } else {
    specials.set(config.bos_token_id ?? 1, '<s>');
    specials.set(config.eos_token_id ?? 2, '</s>');
    for (const t of ['<pad>', '<unk>']) specials.set([0, 1, 2, 3, 4].find((i) => !specials.has(i))!, t);
  }
  const vocab: Record<string, number> = {};
  let w = 0;
  for (let id = 0; id < size; id++) vocab[specials.get(id) ?? WORDS[w++] ?? `w${id}`] = id;
  const enc = style === 'encoder';
  const [cls, sep, unk, pad] = enc ? ['[CLS]', '[SEP]', '[UNK]', '[PAD]'] : ['<s>', '</s>', '<unk>', '<pad>'];
  const special = (t: string) => ({ SpecialToken: { id: t, type_id: 0 } });
  const seq = (id: 'A' | 'B', type: number) => ({ Sequence: { id, type_id: type } });
  const tokenizer = {
    version: '1.0', truncation: null, padding: null,
    added_tokens: [...specials.entries()].sort((a, b) => a[0] - b[0]).map(([id, t]) => added(id, t)),
    normalizer: { type: 'Lowercase' },
    pre_tokenizer: { type: 'Whitespace' },
    post_processor: {
      type: 'TemplateProcessing',
      single: enc ? [special(cls), seq('A', 0), special(sep)] : [special(cls), seq('A', 0)],
      pair: enc ? [special(cls), seq('A', 0), special(sep), seq('B', 1), { SpecialToken: { id: sep, type_id: 1 } }] : [special(cls), seq('A', 0), seq('B', 1)],
      special_tokens: Object.fromEntries((enc ? [cls, sep] : [cls]).map((t) => [t, { id: t, ids: [vocab[t]], tokens: [t] }])),
    },
    decoder: null,
    model: { type: 'WordLevel', vocab, unk_token: unk },
  };
  fs.writeFileSync(path.join(dir, 'tokenizer.json'), JSON.stringify(tokenizer));
  const tc: Record<string, unknown> = enc
    ? { cls_token: cls, sep_token: sep, unk_token: unk, pad_token: pad, mask_token: '[MASK]' }
    : { bos_token: cls, eos_token: sep, unk_token: unk, pad_token: pad };
  if (chatTemplate) tc.chat_template = chatTemplate;
  fs.writeFileSync(path.join(dir, 'tokenizer_config.json'), JSON.stringify(tc));
  return dir;
}

/** A minimal chat template: "<role>: <content>" lines, then "assistant:" when asked. */
export const CHAT_TEMPLATE = "{{ bos_token }}{% for m in messages %}{{ m['role'] }} {{ m['content'] }} {% endfor %}{% if add_generation_prompt %}assistant{% endif %}";

/**
 * Trains a LoRA adapter for a few steps on one sequence (so it really changes the outputs) and saves it in PEFT's
 * layout; returns its directory.
 */
export async function trainedLora(modelDir: string, targetModules: string[]): Promise<string> {
  const model = await AutoModel.fromPretrained(modelDir, { quiet: true });
  model.addLora({ r: 4, alpha: 8, targetModules, seed: 1 }, 'fr');
  model.configureOptimizer({ type: 'adamw', lr: 0.05 });
  const inputIds = [[1, 5, 6, 7, 8, 9]];
  const labels = model.task === 'sequence-classification' ? [2] : inputIds;
  for (let i = 0; i < 5; i++) await model.trainStep({ inputIds, labels });
  const dir = tempDir('nodetune-lora-');
  await model.saveAdapter(dir);
  return dir;
}
