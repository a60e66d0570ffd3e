/** Label maps (from the data or from a config's id2label) and turning labels into class ids. */
import { NodetuneError, check } from '../errors';
import type { Example, Source } from './example';

function where(src: Source | undefined): string {
  return src ? `${src.file}:${src.line}: ` : '';
}

export class LabelMap {
  private readonly index = new Map<string, number>();
  /** Integer labels in the data may stand for ids when no label name looks like a number. */
  private readonly numericIds: boolean;

  constructor(readonly labels: readonly string[]) {
    check(labels.length > 0, 'LabelMap: at least one label is required', 'labels');
    labels.forEach((l, i) => {
      check(!this.index.has(l), `LabelMap: label ${JSON.stringify(l)} appears twice`, 'labels');
      this.index.set(l, i);
    });
    this.numericIds = !labels.some((l) => /^-?\d+$/.test(l));
  }

  /** From a Hugging Face config's `id2label` ({ "0": "neg", "1": "pos" }) or a list of names. */
  static fromConfig(id2label: Record<string, string> | readonly string[]): LabelMap {
    if (Array.isArray(id2label)) return new LabelMap(id2label.map(String));
    const entries = Object.entries(id2label as Record<string, string>);
    const labels: string[] = new Array<string>(entries.length);
    for (const [k, v] of entries) {
      const i = Number(k);
      check(Number.isInteger(i) && i >= 0 && i < entries.length, `id2label: key ${JSON.stringify(k)} is not an id in 0..${entries.length - 1}`, 'id2label');
      labels[i] = String(v);
    }
    return new LabelMap(labels);
  }

  /** Every distinct value of `label` (or of each `tags` entry): numbers sorted numerically, else names sorted. */
  static fromExamples(examples: Iterable<Example>, field: 'label' | 'tags' = 'label'): LabelMap {
    const seen = new Set<string>();
    for (const ex of examples) {
      if (field === 'label') { if (ex.label !== undefined) seen.add(String(ex.label)); }
      else ex.tags?.forEach((t) => seen.add(String(t)));
    }
    if (seen.size === 0) throw new NodetuneError('ERR_DATA', `no ${field} values in the data to build a label map from`, { field });
    const list = [...seen];
    const numeric = list.every((l) => /^-?\d+(\.\d+)?$/.test(l));
    list.sort(numeric ? (a, b) => Number(a) - Number(b) : undefined);
    return new LabelMap(list);
  }

  get size(): number { return this.labels.length; }

  has(label: string | number): boolean {
    return this.lookup(label) !== undefined;
  }

  private lookup(label: string | number): number | undefined {
    const hit = this.index.get(String(label));
    if (hit !== undefined) return hit;
    if (this.numericIds && /^\d+$/.test(String(label))) {
      const id = Number(label);
      if (id < this.labels.length) return id;
    }
    return undefined;
  }

  /** The class id of a label; an unknown label is ERR_DATA naming file, line and value. */
  encode(label: string | number, source?: Source, field = 'label'): number {
    const id = this.lookup(label);
    if (id === undefined) {
      const known = this.labels.length <= 20 ? this.labels.join(', ') : `${this.labels.slice(0, 20).join(', ')}, ... (${this.labels.length})`;
      throw new NodetuneError('ERR_DATA', `${where(source)}unknown ${field} ${JSON.stringify(label)} (known: ${known})`,
        { file: source?.file, line: source?.line, field, value: label });
    }
    return id;
  }

  decode(id: number): string {
    const l = this.labels[id];
    check(l !== undefined, `LabelMap: no label with id ${id}`, 'id');
    return l;
  }

  /** The `id2label` / `label2id` pair for a model's config.json. */
  toConfig(): { id2label: Record<string, string>; label2id: Record<string, number> } {
    const id2label: Record<string, string> = {};
    const label2id: Record<string, number> = {};
    this.labels.forEach((l, i) => { id2label[String(i)] = l; label2id[l] = i; });
    return { id2label, label2id };
  }
}

export interface LabelOptions {
  /** 'error' (default) stops at the first unknown label; 'skip' drops the example and counts it. */
  onInvalid?: 'error' | 'skip';
  /** 'label' for classification, 'tags' for token classification. */
  field?: 'label' | 'tags';
}

export interface Labelled extends Example {
  labelId?: number;
  tagIds?: number[];
}

/** Adds `labelId` (or `tagIds`) to each example; `counts.skipped` says how many were dropped with onInvalid 'skip'. */
export async function* labelExamples(
  examples: AsyncIterable<Example> | Iterable<Example>, map: LabelMap, opts: LabelOptions = {}, counts: { skipped: number } = { skipped: 0 },
): AsyncGenerator<Labelled> {
  const field = opts.field ?? 'label';
  const skip = opts.onInvalid === 'skip';
  check(opts.onInvalid === undefined || opts.onInvalid === 'error' || skip, "onInvalid must be 'error' or 'skip'", 'onInvalid');
  for await (const ex of examples) {
    try {
      if (field === 'label') {
        if (ex.label === undefined) {
          throw new NodetuneError('ERR_DATA', `${where(ex.source)}missing label`, { file: ex.source?.file, line: ex.source?.line, field: 'label' });
        }
        yield { ...ex, labelId: map.encode(ex.label, ex.source) };
      } else {
        yield { ...ex, tagIds: (ex.tags ?? []).map((t) => map.encode(t, ex.source, 'tag')) };
      }
    } catch (e) {
      if (!skip || !(e instanceof NodetuneError)) throw e;
      counts.skipped++;
    }
  }
}
