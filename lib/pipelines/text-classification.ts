/** text-classification: texts → labels with softmax scores (config.id2label), micro-batched, right-padded. */
import { check } from '../errors';
import { MicroBatcher } from './batcher';
import type { Ticket } from './batcher';
import { Loaded, labelNames, pad, softmax } from './common';

export interface LabelScore {
  label: string;
  score: number;
}

export interface ClassificationResult extends LabelScore {
  /** Every label with its score, best first. */
  scores: LabelScore[];
}

export interface ClassifyOptions {
  /** Text pairs (e.g. premise, hypothesis): the second text of each input. */
  textPair?: string;
}

interface Item {
  text: string;
  textPair: string | undefined;
}

export class TextClassifier {
  readonly batcher: MicroBatcher<Item, ClassificationResult>;

  constructor(readonly loaded: Loaded, opts: ConstructorParameters<typeof MicroBatcher>[1] = {}) {
    this.batcher = new MicroBatcher((items) => this.run(items), opts);
  }

  /** Queues one text; it joins whatever batch forms within the wait window. */
  submit(text: string, opts: ClassifyOptions = {}): Ticket<ClassificationResult> {
    check(typeof text === 'string', 'text-classification: text must be a string', 'text');
    check(opts.textPair === undefined || typeof opts.textPair === 'string', 'text-classification: textPair must be a string', 'textPair');
    return this.batcher.submit({ text, textPair: opts.textPair });
  }

  private async run(items: Item[]): Promise<ClassificationResult[]> {
    const { model, tokenizer, maxLength, padId } = this.loaded;
    const encoded = await Promise.all(items.map((it) => tokenizer.encode(it.text, {
      truncation: true, maxLength, ...(it.textPair !== undefined ? { textPair: it.textPair } : {}),
    })));
    const { inputIds, attentionMask } = pad(encoded.map((e) => e.ids), padId, 'right');
    const hasTypes = Number((model.config as Record<string, unknown>).type_vocab_size ?? 0) > 1;
    const tokenTypeIds = hasTypes ? pad(encoded.map((e) => e.tokenTypeIds), 0, 'right').inputIds : undefined;
    const { logits, shape } = await model.forward({ inputIds, attentionMask, ...(tokenTypeIds ? { tokenTypeIds } : {}) });
    const n = shape[shape.length - 1]!;
    const names = labelNames(model, n);
    return items.map((_, b) => {
      const probs = softmax(logits, b * n, n);
      const scores = probs.map((score, i) => ({ label: names[i]!, score })).sort((x, y) => y.score - x.score);
      return { label: scores[0]!.label, score: scores[0]!.score, scores };
    });
  }
}
