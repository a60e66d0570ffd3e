/** question-answering: the best answer span of the context, with its score and character offsets. */
import { check } from '../errors';
import { MicroBatcher } from './batcher';
import type { BatcherOptions, Ticket } from './batcher';
import { Loaded, pad, softmax } from './common';

export interface QaInput {
  question: string;
  context: string;
}

export interface QaOptions {
  /** Longest answer in tokens. Default 15 (as transformers). */
  maxAnswerLength?: number;
}

export interface Answer {
  answer: string;
  /** p(start) * p(end), each a softmax over the context tokens. */
  score: number;
  /** [start, end) character offsets into the context. */
  start: number;
  end: number;
}

interface Item extends QaInput {
  maxAnswerLength: number;
}

export class QuestionAnswerer {
  readonly batcher: MicroBatcher<Item, Answer>;

  constructor(readonly loaded: Loaded, opts: BatcherOptions = {}) {
    this.batcher = new MicroBatcher((items) => this.run(items), opts);
  }

  submit(input: QaInput, opts: QaOptions = {}): Ticket<Answer> {
    check(input && typeof input.question === 'string' && typeof input.context === 'string',
      'question-answering: input must be { question: string, context: string }', 'input');
    const maxAnswerLength = opts.maxAnswerLength ?? 15;
    check(Number.isSafeInteger(maxAnswerLength) && maxAnswerLength >= 1, `question-answering: maxAnswerLength must be a positive integer, got ${opts.maxAnswerLength}`, 'maxAnswerLength');
    return this.batcher.submit({ question: input.question, context: input.context, maxAnswerLength });
  }

  private async run(items: Item[]): Promise<Answer[]> {
    const { model, tokenizer, maxLength, padId } = this.loaded;
    const encoded = await Promise.all(items.map((it) =>
      tokenizer.encode(it.question, { textPair: it.context, truncation: 'only_second', maxLength })));
    const { inputIds, attentionMask } = pad(encoded.map((e) => e.ids), padId, 'right');
    const hasTypes = Number((model.config as Record<string, unknown>).type_vocab_size ?? 0) > 1;
    const types = hasTypes ? { tokenTypeIds: pad(encoded.map((e) => e.tokenTypeIds), 0, 'right').inputIds } : {};
    const { logits, shape } = await model.forward({ inputIds, attentionMask, ...types });
    const width = shape[1]!;
    return encoded.map((e, b) => {
      // Context tokens only (sequence 1); start and end logits are interleaved as [.., 2].
      const ctx = e.sequenceIds.flatMap((s, t) => (s === 1 ? [t] : []));
      if (ctx.length === 0) return { answer: '', score: 0, start: 0, end: 0 };
      const startLogits = Float32Array.from(ctx, (t) => logits[(b * width + t) * 2]!);
      const endLogits = Float32Array.from(ctx, (t) => logits[(b * width + t) * 2 + 1]!);
      const ps = softmax(startLogits, 0, ctx.length);
      const pe = softmax(endLogits, 0, ctx.length);
      let best = { i: 0, j: 0, score: -1 };
      for (let i = 0; i < ctx.length; i++) {
        for (let j = i; j < Math.min(ctx.length, i + items[b]!.maxAnswerLength); j++) {
          const score = ps[i]! * pe[j]!;
          if (score > best.score) best = { i, j, score };
        }
      }
      const start = e.offsets[ctx[best.i]!]![0];
      const end = e.offsets[ctx[best.j]!]![1];
      return { answer: items[b]!.context.slice(start, end), score: best.score, start, end };
    });
  }
}
