/** token-classification: per-token labels with scores and character offsets into the input text. */
import { check } from '../errors';
import { MicroBatcher } from './batcher';
import type { BatcherOptions, Ticket } from './batcher';
import { Loaded, labelNames, pad, softmax } from './common';

export interface TokenLabel {
  /** The label of this token (config.id2label). */
  entity: string;
  score: number;
  /** Token position in the encoded input (special tokens included). */
  index: number;
  /** The token as the tokenizer spells it. */
  word: string;
  /** [start, end) character offsets into the input text. */
  start: number;
  end: number;
}

export class TokenClassifier {
  readonly batcher: MicroBatcher<string, TokenLabel[]>;

  constructor(readonly loaded: Loaded, opts: BatcherOptions = {}) {
    this.batcher = new MicroBatcher((items) => this.run(items), opts);
  }

  submit(text: string): Ticket<TokenLabel[]> {
    check(typeof text === 'string', 'token-classification: text must be a string', 'text');
    return this.batcher.submit(text);
  }

  private async run(texts: string[]): Promise<TokenLabel[][]> {
    const { model, tokenizer, maxLength, padId } = this.loaded;
    const encoded = await Promise.all(texts.map((t) => tokenizer.encode(t, { truncation: true, maxLength })));
    const { inputIds, attentionMask } = pad(encoded.map((e) => e.ids), padId, 'right');
    const { logits, shape } = await model.forward({ inputIds, attentionMask });
    const [, width, n] = shape as [number, number, number];
    const names = labelNames(model, n);
    return encoded.map((e, b) => {
      const out: TokenLabel[] = [];
      e.ids.forEach((_, t) => {
        if (e.specialTokensMask[t] === 1) return;
        const probs = softmax(logits, (b * width + t) * n, n);
        let best = 0;
        for (let i = 1; i < n; i++) if (probs[i]! > probs[best]!) best = i;
        const [start, end] = e.offsets[t]!;
        out.push({ entity: names[best]!, score: probs[best]!, index: t, word: e.tokens[t]!, start, end });
      });
      return out;
    });
  }
}
