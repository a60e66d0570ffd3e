/**
 * The keys of each option object of the public API, for checkOptionKeys (lib/util/options.ts). Each list is checked
 * against its interface when this compiles: a key added to an interface must be added here.
 */
import type { FromPretrainedOptions as ModelLoadOptions } from '../models/auto';
import type { CallOptions, DetailedGenerateOptions, OptimizerOptions, TrainStepOptions } from '../models/model-types';
import type { SessionRowOptions } from '../models/session';
import type { BottleneckOptions, LoraOptions, PromptTuningOptions } from '../peft/methods';
import type { TrainableOptions } from '../peft/trainable';
import type { PipelineOptions } from '../pipelines/common';
import type { FromPretrainedOptions as TokenizerLoadOptions } from '../tokenizers/auto';
import type { EncodeOptions, PaddedBatchOptions } from '../tokenizers/tokenizer';
import type { TrainerOptions } from '../train/trainer';
import { optionKeys } from './options';

export const MODEL_LOAD_KEYS = optionKeys<ModelLoadOptions>({ task: true, device: true, dtype: true, numLabels: true, seed: true, quiet: true, revision: true, keepLayers: true, quantize: true, computeDtype: true, quantizeLmHead: true });
export const CALL_KEYS = optionKeys<CallOptions>({ adapter: true });
export const GENERATE_KEYS = optionKeys<DetailedGenerateOptions>({
  maxNewTokens: true, temperature: true, topK: true, topP: true, repetitionPenalty: true, eosTokenId: true, seed: true, attentionMask: true, numBeams: true,
  lengthPenalty: true, adapter: true, presencePenalty: true, frequencyPenalty: true, logitBias: true, penaltyContext: true, logprobs: true,
});
export const SESSION_ROW_KEYS = optionKeys<SessionRowOptions>({
  maxNewTokens: true, temperature: true, topK: true, topP: true, repetitionPenalty: true, presencePenalty: true, frequencyPenalty: true,
  penaltyContext: true, logitBias: true, stopTokens: true, seed: true, logprobs: true,
});
export const OPTIMIZER_KEYS = optionKeys<OptimizerOptions>({ type: true, lr: true, betas: true, eps: true, weightDecay: true, momentum: true });
export const TRAIN_STEP_KEYS = optionKeys<TrainStepOptions>({ lr: true, maxGradNorm: true, communicator: true, skipNonFinite: true, precision: true, lossScaling: true });
export const LORA_KEYS = optionKeys<LoraOptions>({ r: true, alpha: true, dropout: true, targetModules: true, useRslora: true, seed: true });
export const BOTTLENECK_KEYS = optionKeys<BottleneckOptions>({ kind: true, reduction: true, nonLinearity: true, seed: true });
export const PROMPT_KEYS = optionKeys<PromptTuningOptions>({ numVirtualTokens: true, init: true, seed: true });
export const TRAINABLE_KEYS = optionKeys<TrainableOptions>({ trainEmbeddings: true });
export const PIPELINE_KEYS = optionKeys<PipelineOptions>({ adapter: true, tokenizer: true, device: true, dtype: true, maxBatch: true, maxWaitMs: true, maxQueue: true });
export const TOKENIZER_LOAD_KEYS = optionKeys<TokenizerLoadOptions>({ config: true, chatTemplate: true });
export const ENCODE_KEYS = optionKeys<EncodeOptions>({ addSpecialTokens: true, textPair: true, truncation: true, maxLength: true, returnOverflowing: true, stride: true });
export const PADDED_BATCH_KEYS = optionKeys<PaddedBatchOptions>({ padding: true, maxLength: true, truncation: true, addSpecialTokens: true, paddingSide: true });
export const TRAINER_KEYS = optionKeys<TrainerOptions>({ model: true, tokenizer: true, mlm: true, train: true, validation: true, test: true, args: true, saveHooks: true, communicator: true });
