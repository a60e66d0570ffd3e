/** What an exact resume needs, and whether this model and these args have it with the current model API. */
import { NodetuneError } from '../errors';
import type { ResolvedArgs } from './args';

/** The native methods exact resume still lacks (see docs/TRAINER.md). */
export const MISSING_FOR_EXACT_RESUME = {
  optimizer: 'model.optimizerState(): Promise<NativeTensor map + step counts> and model.loadOptimizerState(state) (AdamW moments, SGD momentum buffers)',
  rng: 'model.rngState() / model.setRngState(state) (the LibTorch generator that draws dropout masks), or a per-step dropout seed argument to trainStep',
};

const DROPOUT_DEFAULTS: Record<string, Record<string, number>> = {
  gpt2: { resid_pdrop: 0.1, embd_pdrop: 0.1, attn_pdrop: 0.1 },
  bert: { hidden_dropout_prob: 0.1, attention_probs_dropout_prob: 0.1 },
  roberta: { hidden_dropout_prob: 0.1, attention_probs_dropout_prob: 0.1 },
  distilbert: { dropout: 0.1, attention_dropout: 0.1 },
};
const DROPOUT_KEYS = ['resid_pdrop', 'embd_pdrop', 'attn_pdrop', 'attention_dropout', 'hidden_dropout_prob', 'attention_probs_dropout_prob', 'dropout',
  'classifier_dropout', 'hidden_dropout', 'qa_dropout', 'seq_classif_dropout'];

/** Dropout probabilities of a model's config.json that are above 0 (with transformers' defaults for absent keys). */
export function activeDropout(config: Record<string, unknown>): string[] {
  const type = String(config.model_type ?? '');
  const defaults = DROPOUT_DEFAULTS[type] ?? {};
  const values: Record<string, number> = { ...defaults };
  for (const k of DROPOUT_KEYS) if (typeof config[k] === 'number') values[k] = config[k] as number;
  return Object.entries(values).filter(([, v]) => v > 0).map(([k, v]) => `${k}=${v}`);
}

/** Throws ERR_STATE unless resuming this run can be exact with what the model API offers today. */
export function checkExactResume(args: ResolvedArgs, config: Record<string, unknown>, checkpoint: string): void {
  const reasons: string[] = [];
  if (args.optimizer === 'adamw') reasons.push(`AdamW keeps moment estimates that cannot be saved yet; needs ${MISSING_FOR_EXACT_RESUME.optimizer}`);
  else if (args.momentum > 0) reasons.push(`SGD momentum ${args.momentum} keeps velocity buffers that cannot be saved yet; needs ${MISSING_FOR_EXACT_RESUME.optimizer}`);
  const dropout = activeDropout(config);
  if (dropout.length > 0) reasons.push(`the model uses dropout (${dropout.join(', ')}) whose random state cannot be saved yet; needs ${MISSING_FOR_EXACT_RESUME.rng}`);
  if (reasons.length > 0)
    throw new NodetuneError('ERR_STATE', `resumeFrom ${checkpoint}: an exact resume is not possible: ${reasons.join('; ')}. ` +
      'Runs with plain SGD (momentum 0) on a model without dropout resume exactly today.', { field: 'resumeFrom' });
}
