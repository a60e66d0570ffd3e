/** question-answering: the best answer span of the context, with its score and character offsets. */
import { NodetuneError, check } from '../errors';
import type { Encoded } from '../tokenizers';
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

  /** The question + context pair as windows over the context (overlapping by a stride) that fit the model. */
  private async windows(it: Item): Promise<Encoded[]> {
    const { tokenizer, maxLength } = this.loaded;
    const question = (await tokenizer.encode(it.question, { addSpecialTokens: false })).ids.length;
    const budget = maxLength - (await tokenizer.numSpecialTokens(true)) - question;
    if (budget < 1)
      throw new NodetuneError('ERR_ARGUMENT', `question-answering: the question (${question} tokens) leaves no room for the context within ${maxLength} tokens`, { field: 'question' });
    const stride = Math.min(128, Math.floor(budget / 2));
    const e = await tokenizer.encode(it.question, { textPair: it.context, truncation: 'only_second', maxLength, returnOverflowing: true, stride });
    return [e, ...e.overflowing];
  }

  private async run(items: Item[]): Promise<Answer[]> {
    const { model, padId } = this.loaded;
    const perItem = await Promise.all(items.map((it) => this.windows(it)));
    const rows = perItem.flat();
    const { inputIds, attentionMask } = pad(rows.map((e) => e.ids), padId, 'right');
    const hasTypes = Number((model.config as Record<string, unknown>).type_vocab_size ?? 0) > 1;
    const types = hasTypes ? { tokenTypeIds: pad(rows.map((e) => e.tokenTypeIds), 0, 'right').inputIds } : {};
    const { logits, shape } = await model.forward({ inputIds, attentionMask, ...types });
    const width = shape[1]!;
    let row = 0;
    return perItem.map((windows, b) => {
      let best: Answer = { answer: '', score: 0, start: 0, end: 0 };
      for (const e of windows) {
        const a = bestSpan(e, logits, row++ * width, items[b]!);
        if (a.score > best.score) best = a;
      }
      return best;
    });
  }
}

/** The best span of one window: context tokens only (sequence 1); start/end logits interleaved as [.., 2]. */
function bestSpan(e: Encoded, logits: Float32Array, base: number, it: Item): Answer {
  const ctx = e.sequenceIds.flatMap((s, t) => (s === 1 ? [t] : []));
  if (ctx.length === 0) return { answer: '', score: 0, start: 0, end: 0 };
  const ps = softmax(Float32Array.from(ctx, (t) => logits[(base + t) * 2]!), 0, ctx.length);
  const pe = softmax(Float32Array.from(ctx, (t) => logits[(base + t) * 2 + 1]!), 0, ctx.length);
  let best = { i: 0, j: 0, score: -1 };
  for (let i = 0; i < ctx.length; i++) {
    for (let j = i; j < Math.min(ctx.length, i + it.maxAnswerLength); j++) {
      const score = ps[i]! * pe[j]!;
      if (score > best.score) best = { i, j, score };
    }
  }
  const start = e.offsets[ctx[best.i]!]![0];
  const end = e.offsets[ctx[best.j]!]![1];
  return { answer: it.context.slice(start, end), score: best.score, start, end };
}
