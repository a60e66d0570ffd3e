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

/** Consecutive tokens of one entity merged (transformers' aggregation_strategy 'simple'). */
export interface EntitySpan {
  /** The entity type, without its B-/I- prefix. */
  entity: string;
  /** Mean of the tokens' scores. */
  score: number;
  /** The text of the span. */
  word: string;
  start: number;
  end: number;
}

/**
 * Groups per-token labels into entity spans: B-X starts a span, I-X (or a repeated unprefixed X) continues the
 * span of type X before it; spans of `ignore` labels (default 'O') are left out.
 */
export function groupEntities(tokens: TokenLabel[], text: string, ignore: string[] = ['O']): EntitySpan[] {
  const spans: (EntitySpan & { n: number })[] = [];
  for (const t of tokens) {
    const m = /^([BI])-(.+)$/.exec(t.entity);
    const type = m ? m[2]! : t.entity;
    const last = spans[spans.length - 1];
    if (last && last.entity === type && m?.[1] !== 'B') {
      last.end = t.end;
      last.score += t.score;
      last.n++;
    } else {
      spans.push({ entity: type, score: t.score, word: '', start: t.start, end: t.end, n: 1 });
    }
  }
  return spans.filter((g) => !ignore.includes(g.entity))
    .map((g) => ({ entity: g.entity, score: g.score / g.n, word: text.slice(g.start, g.end), start: g.start, end: g.end }));
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
