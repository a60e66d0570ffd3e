/** Formatting by task name, shared by the loader and its worker threads. */
import { NodetuneError } from '../errors';
import type { PreTrainedTokenizer } from '../tokenizers/tokenizer';
import type { Feature } from './batch';
import type { Example, Task } from './example';
import { formatChat, formatClassification, formatInstruction, formatQa, formatTokenClassification } from './format';
import { LabelMap } from './label';
import { packCausalLM } from './pack';
import { formatSeq2Seq } from './seq2seq';
import type { Seq2SeqFormat } from './seq2seq';

/** Plain data (it crosses to worker threads): label names rather than a LabelMap. */
export interface FeaturizeOptions {
  task: Task;
  maxLength?: number;
  stride?: number;
  blockSize?: number;
  labels?: string[];
  /** seq2seq: templates and source/target lengths. */
  seq2seq?: Seq2SeqFormat;
}

export async function featurizeFor(tok: PreTrainedTokenizer, o: FeaturizeOptions, examples: Example[]): Promise<Feature[]> {
  const lim = o.maxLength !== undefined ? { maxLength: o.maxLength } : {};
  const labelMap = o.labels ? { labelMap: new LabelMap(o.labels) } : {};
  switch (o.task) {
    case 'classification': return formatClassification(tok, examples, { ...lim, ...labelMap });
    case 'instruction': return formatInstruction(tok, examples, lim);
    case 'chat': return formatChat(tok, examples, lim);
    case 'qa': return formatQa(tok, examples, { ...lim, ...(o.stride !== undefined ? { stride: o.stride } : {}) });
    case 'token-classification': return formatTokenClassification(tok, examples, { ...lim, ...labelMap });
    case 'seq2seq': return formatSeq2Seq(tok, examples, { ...(o.maxLength !== undefined ? { maxSourceLength: o.maxLength } : {}), ...o.seq2seq });
    case 'causal-lm': {
      const out: Feature[] = [];
      for await (const f of packCausalLM(tok, examples, { blockSize: o.blockSize as number })) out.push(f);
      return out;
    }
    default:
      throw new NodetuneError('ERR_ARGUMENT', `unknown task ${JSON.stringify(o.task)}`, { field: 'task' });
  }
}
