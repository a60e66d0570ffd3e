/** The Trainer's masked-LM data setup: TrainerOptions.mlm + the tokenizer → dynamic masking of every split. */
import { NodetuneError, check } from '../errors';
import { MlmCollator, tokenizeForMlm } from '../data/mlm';
import type { MlmOptions, MlmTokenizer } from '../data/mlm';
import type { MlmData } from './data';

/** TrainerOptions.mlm: the collator's options plus the length raw texts are cut to. */
export interface MlmTrainOptions extends MlmOptions {
  /** Raw texts: tokens per text, special tokens included (default 128). */
  maxLength?: number;
}

function isMlmTokenizer(t: unknown): t is MlmTokenizer {
  const x = t as MlmTokenizer;
  return !!x && typeof x === 'object' && typeof x.idToToken === 'function' && typeof x.encodeBatch === 'function' && x.specialTokenIds instanceof Set;
}

/** The masking a masked-lm Trainer applies (an MlmCollator given as is, else one from the tokenizer's mask token). */
export function mlmTrainData(option: MlmTrainOptions | MlmCollator | undefined, tokenizer: unknown): MlmData {
  const maxLength = option instanceof MlmCollator ? 128 : option?.maxLength ?? 128;
  check(Number.isInteger(maxLength) && maxLength > 2, `mlm.maxLength must be an integer > 2, got ${JSON.stringify(maxLength)}`, 'maxLength');
  const tok = isMlmTokenizer(tokenizer) ? tokenizer : undefined;
  let collator: MlmCollator;
  if (option instanceof MlmCollator) collator = option;
  else if (tok) collator = MlmCollator.fromTokenizer(tok, option ?? {});
  else throw new NodetuneError('ERR_ARGUMENT', 'new Trainer(): a masked-lm model needs the tokenizer (its mask token and vocabulary) or an MlmCollator in options.mlm; pass mlm: false for data already masked', { field: 'tokenizer' });
  return { collator, ...(tok ? { tokenize: (texts: string[]) => tokenizeForMlm(tok, texts, { maxLength }) } : {}) };
}
