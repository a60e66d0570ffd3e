/** Causal language modelling on raw text: documents tokenized, joined with EOS between them, cut into fixed blocks. */
import { check } from '../errors';
import type { PreTrainedTokenizer } from '../tokenizers/tokenizer';
import type { Feature } from './batch';
import type { Example } from './example';

export interface PackOptions {
  /** Tokens per block. */
  blockSize: number;
  /** Token placed between documents; default the tokenizer's EOS. */
  eosTokenId?: number;
  /** Emit the last, shorter block (collate pads it, labels -100 on the padding); default false: drop it. */
  keepRemainder?: boolean;
  /** Examples tokenized per call to the engine; default 256. */
  tokenizeBatch?: number;
}

/** Accumulates token ids and hands out full blocks; labels equal the ids (the model shifts them). */
export class Packer {
  private buffer: number[] = [];
  private started = false;

  constructor(readonly blockSize: number, readonly eosTokenId: number) {
    check(Number.isInteger(blockSize) && blockSize > 1, `blockSize must be an integer > 1, got ${blockSize}`, 'blockSize');
  }

  /** Adds a document's ids (or a continuation of the current one) and returns the blocks completed. */
  push(ids: ArrayLike<number>, continuation = false): Feature[] {
    if (this.started && !continuation) this.buffer.push(this.eosTokenId);
    this.started = true;
    for (let i = 0; i < ids.length; i++) this.buffer.push(ids[i] as number);
    const out: Feature[] = [];
    let at = 0;
    while (this.buffer.length - at >= this.blockSize) {
      const block = this.buffer.slice(at, at + this.blockSize);
      out.push({ inputIds: block, labels: block.slice() });
      at += this.blockSize;
    }
    if (at > 0) this.buffer = this.buffer.slice(at);
    return out;
  }

  /** The final partial block, if any. */
  flush(): Feature[] {
    if (this.buffer.length === 0) return [];
    const block = this.buffer;
    this.buffer = [];
    return [{ inputIds: block, labels: block.slice() }];
  }
}

/** Streams blocks from a stream of text examples (corpus chunks continue their document; other examples are documents). */
export async function* packCausalLM(tok: PreTrainedTokenizer, examples: AsyncIterable<Example> | Iterable<Example>, opts: PackOptions): AsyncGenerator<Feature> {
  const eos = opts.eosTokenId ?? tok.requireTokenId('eos', 'causal-LM packing (EOS between documents)');
  const packer = new Packer(opts.blockSize, eos);
  const per = opts.tokenizeBatch ?? 256;
  let pending: Example[] = [];
  async function* drain(): AsyncGenerator<Feature> {
    const batch = pending;
    pending = [];
    const ids = await tok.encodeIds(batch.map((e) => e.text as string));
    for (let i = 0; i < batch.length; i++) yield* packer.push(ids[i] as number[], batch[i]?.continuation === true);
  }
  for await (const ex of examples) {
    check(typeof ex.text === 'string', 'causal-LM packing needs a "text" on every example', 'text');
    pending.push(ex);
    if (pending.length >= per) yield* drain();
  }
  if (pending.length > 0) yield* drain();
  if (opts.keepRemainder) yield* packer.flush();
}
