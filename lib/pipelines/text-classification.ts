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
  /** A loaded adapter's name; null: the base model alone; undefined: the model's active adapter. */
  adapter?: string | null;
}

interface Item {
  text: string;
  textPair: string | undefined;
}

export class TextClassifier {
  readonly batcher: MicroBatcher<Item, ClassificationResult>;

  constructor(readonly loaded: Loaded, opts: ConstructorParameters<typeof MicroBatcher>[1] = {}) {
    this.batcher = new MicroBatcher((items, key) => {
      const adapter = JSON.parse(key) as string | null;
      return this.run(items, adapter === '\u0000default' ? undefined : adapter);
    }, opts);
  }

  /** Queues one text; it joins whatever batch forms within the wait window. */
  submit(text: string, opts: ClassifyOptions = {}): Ticket<ClassificationResult> {
    check(typeof text === 'string', 'text-classification: text must be a string', 'text');
    check(opts.textPair === undefined || typeof opts.textPair === 'string', 'text-classification: textPair must be a string', 'textPair');
    // Requests for different adapters never share a batch.
    return this.batcher.submit({ text, textPair: opts.textPair }, JSON.stringify(opts.adapter === undefined ? '\u0000default' : opts.adapter));
  }

  private async run(items: Item[], adapter: string | null | undefined): Promise<ClassificationResult[]> {
    const { model, tokenizer, maxLength, padId } = this.loaded;
    const encoded = await Promise.all(items.map((it) => tokenizer.encode(it.text, {
      truncation: true, maxLength, ...(it.textPair !== undefined ? { textPair: it.textPair } : {}),
    })));
    const { inputIds, attentionMask } = pad(encoded.map((e) => e.ids), padId, 'right');
    const hasTypes = Number((model.config as Record<string, unknown>).type_vocab_size ?? 0) > 1;
    const tokenTypeIds = hasTypes ? pad(encoded.map((e) => e.tokenTypeIds), 0, 'right').inputIds : undefined;
    const { logits, shape } = await model.forward({ inputIds, attentionMask, ...(tokenTypeIds ? { tokenTypeIds } : {}) },
      adapter !== undefined ? { adapter } : {});
    const n = shape[shape.length - 1]!;
    const names = labelNames(model, n);
    return items.map((_, b) => {
      const probs = softmax(logits, b * n, n);
      const scores = probs.map((score, i) => ({ label: names[i]!, score })).sort((x, y) => y.score - x.score);
      return { label: scores[0]!.label, score: scores[0]!.score, scores };
    });
  }
}
