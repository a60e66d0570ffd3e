/**
 * fill-mask: texts with the tokenizer's mask token ([MASK], <mask>) → the top-k tokens for it from a masked-lm model
 * (BERT, RoBERTa, DistilBERT), as transformers' FillMaskPipeline: `{ score, token, token_str, sequence }` best first,
 * score the softmax over the vocabulary, sequence the text decoded with the mask replaced (special tokens skipped).
 * A text with several masks gets one list per mask. Micro-batched, right-padded.
 */
import { NodetuneError, check } from '../errors';
import { MicroBatcher } from './batcher';
import type { BatcherOptions, Ticket } from './batcher';
import { Loaded, pad, softmax } from './common';

export interface FillMaskOptions {
  /** Candidates per mask, best first (default 5, at most the vocabulary). */
  topK?: number;
  /** A loaded adapter's name; null: the base model alone; undefined: the model's active adapter. */
  adapter?: string | null;
}

export interface FillMaskResult {
  score: number;
  token: number;
  token_str: string;
  sequence: string;
}

interface Item { ids: number[]; tokenTypeIds: number[]; masks: number[]; topK: number }

export class MaskFiller {
  readonly batcher: MicroBatcher<Item, FillMaskResult[][]>;
  readonly maskTokenId: number;
  readonly maskToken: string;

  constructor(readonly loaded: Loaded, opts: BatcherOptions = {}) {
    if (loaded.model.task !== 'masked-lm')
      throw new NodetuneError('ERR_ARGUMENT', `fill-mask: needs a masked-lm model (BERT, RoBERTa or DistilBERT with its MLM head); this one is ${loaded.model.task}`, { field: 'task' });
    const id = loaded.tokenizer.maskTokenId;
    if (id === undefined) throw new NodetuneError('ERR_CONFIG', 'fill-mask: the tokenizer has no mask token (mask_token in tokenizer_config.json)', { field: 'mask_token' });
    this.maskTokenId = id;
    this.maskToken = loaded.tokenizer.idToToken(id) ?? '[MASK]';
    this.batcher = new MicroBatcher((items, key) => {
      const adapter = JSON.parse(key) as string | null;
      return this.run(items, adapter === '\u0000default' ? undefined : adapter);
    }, opts);
  }

  /** Encodes one text (it must hold the mask token; cut to the model's length like transformers' truncation) and queues it. */
  async submit(text: string, opts: FillMaskOptions = {}): Promise<Ticket<FillMaskResult[][]>> {
    check(typeof text === 'string', 'fill-mask: the input must be a string', 'input');
    check(opts !== null && typeof opts === 'object', 'fill-mask: options must be an object', 'options');
    const vocab = this.loaded.tokenizer.vocabSize;
    const topK = opts.topK ?? 5;
    check(Number.isSafeInteger(topK) && topK >= 1, `fill-mask: topK must be a positive integer, got ${JSON.stringify(opts.topK)}`, 'topK');
    const e = await this.loaded.tokenizer.encode(text, { truncation: true, maxLength: this.loaded.maxLength });
    const masks = e.ids.flatMap((x, i) => (x === this.maskTokenId ? [i] : []));
    if (masks.length === 0)
      throw new NodetuneError('ERR_ARGUMENT', `fill-mask: no mask token (${this.maskToken}) in the input${e.ids.length >= this.loaded.maxLength ? ` within its first ${this.loaded.maxLength} tokens` : ''}: ${JSON.stringify(text.slice(0, 80))}`, { field: 'input' });
    return this.batcher.submit({ ids: e.ids, tokenTypeIds: e.tokenTypeIds, masks, topK: Math.min(topK, vocab) },
      JSON.stringify(opts.adapter === undefined ? '\u0000default' : opts.adapter));
  }

  private async run(items: Item[], adapter: string | null | undefined): Promise<FillMaskResult[][][]> {
    const { model, tokenizer, padId } = this.loaded;
    const { inputIds, attentionMask, width } = pad(items.map((it) => it.ids), padId, 'right');
    const hasTypes = Number((model.config as Record<string, unknown>).type_vocab_size ?? 0) > 1;
    const tokenTypeIds = hasTypes ? pad(items.map((it) => it.tokenTypeIds), 0, 'right').inputIds : undefined;
    const { logits, shape } = await model.forward({ inputIds, attentionMask, ...(tokenTypeIds ? { tokenTypeIds } : {}) }, adapter !== undefined ? { adapter } : {});
    const v = shape[shape.length - 1]!;
    // Rows of the model's vocabulary the tokenizer has no token for are not candidates.
    const n = Math.min(v, tokenizer.vocabSize);
    return Promise.all(items.map(async (it, b) => Promise.all(it.masks.map(async (pos) => {
      const probs = softmax(logits, (b * width + pos) * v, v);
      const order = Array.from({ length: n }, (_, i) => i).sort((x, y) => probs[y]! - probs[x]! || x - y).slice(0, it.topK);
      return Promise.all(order.map(async (token) => {
        const filled = it.ids.slice();
        filled[pos] = token;
        const [tokenStr, sequence] = await Promise.all([tokenizer.decode([token]), tokenizer.decode(filled, { skipSpecialTokens: true })]);
        return { score: probs[token]!, token, token_str: tokenStr, sequence };
      }));
    }))));
  }
}
