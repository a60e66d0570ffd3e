/** The option and result types of Model (lib/models/model.ts): what each call takes and returns. */
import type { Communicator } from '../distributed/communicator';
import type { IdsInput } from './inputs';
import type { RowSamplingOptions, TokenLogprob } from './sampling';
import type { Seq2SeqInputs } from './seq2seq';

export type ModelDtype = 'float32' | 'float16' | 'bfloat16';

export interface ModelInputs extends Seq2SeqInputs {
  inputIds: IdsInput;
  attentionMask?: IdsInput;
  tokenTypeIds?: IdsInput;
}

/** causal-lm / token-classification: [batch, length] ids (-100 ignored); sequence-classification:
 * class ids per row (numLabels 1: float regression targets); question-answering: [start, end] per row. */
export type Labels = IdsInput | number[] | Int32Array | BigInt64Array | Float32Array;

/** One batch for trainStep: the inputs and their labels. */
export type TrainBatch = ModelInputs & { labels: Labels };

export interface ForwardOutput {
  logits: Float32Array;
  shape: number[];
}

export interface OptimizerOptions {
  type: 'adamw' | 'sgd';
  lr: number;
  betas?: [number, number];
  eps?: number;
  weightDecay?: number;
  momentum?: number;
}

/** Per-row options (causal-lm, not with beam search): presencePenalty, frequencyPenalty, logitBias (lib/models/sampling.ts). */
export interface GenerateOptions extends Omit<RowSamplingOptions, 'logprobs'> {
  maxNewTokens: number;
  /** 0 (the default): greedy. */
  temperature?: number;
  topK?: number;
  topP?: number;
  repetitionPenalty?: number;
  /** Defaults to config.json's eos_token_id; null: never stop early. */
  eosTokenId?: number | null;
  seed?: number;
  /** 1 for real tokens, 0 for (left) padding. */
  attentionMask?: IdsInput;
  /** Beam search with this many beams (greedy; default 1). */
  numBeams?: number;
  /** Beam scores are sum log-prob / length ** lengthPenalty (default 1). */
  lengthPenalty?: number;
  /** The adapter for this call (undefined: the active one; null: the base model alone). */
  adapter?: string | null;
}

export interface DetailedGenerateOptions extends GenerateOptions {
  /** Report the chosen tokens' log-probabilities and this many best alternatives per step (0: the chosen only). */
  logprobs?: number;
}

export interface GenerateOutput {
  /** As generate() returns them. */
  sequences: number[][];
  /** With `logprobs`: per row, one entry per generated token up to its EOS (included); otherwise null. */
  logprobs: TokenLogprob[][] | null;
}

export interface CallOptions {
  /** The adapter for this call (undefined: the active one; null: the base model alone). */
  adapter?: string | null;
}

export interface TrainStepOptions {
  /** The learning rate for this step (the scheduler's); default: the optimizer's current rate. */
  lr?: number;
  /** Clip the total gradient norm to this value. */
  maxGradNorm?: number;
  /** Data parallel: average the gradients (and the reported loss) over the group before the step, as DDP does. */
  communicator?: Communicator;
  /** A NaN/Inf loss or gradient norm skips the update (the result says `skipped`) instead of applying it. */
  skipNonFinite?: boolean;
  /**
   * 'bf16': the forward pass under autocast (matrix products in bfloat16, reductions and the loss in float32) while
   * weights, gradients and optimizer state stay float32. CPU and CUDA. 'fp16': the same in float16, CUDA only, with
   * dynamic loss scaling. 'auto': bf16 where the device has fast bf16 (a CPU with AVX512-BF16 or AMX, a CUDA device
   * of compute capability 8.0+), fp32 elsewhere (see resolvePrecision()). Default 'fp32'.
   */
  precision?: 'fp32' | 'bf16' | 'fp16' | 'auto';
  /**
   * Dynamic loss scaling (on by itself with 'fp16'): the loss is scaled before backward, the gradients unscaled before
   * clipping; a step with non-finite gradients is skipped and the scale halved; after growthInterval good steps the
   * scale doubles. See lossScalerState().
   */
  lossScaling?: boolean;
}

/** The loss scaler's state (saved in trainer checkpoints). */
export interface LossScalerState {
  scale: number;
  goodSteps: number;
  growthInterval: number;
}

/** Dropout probabilities to use from now on (absent keys keep config.json's). */
export interface DropoutOverrides {
  embedding?: number;
  attention?: number;
  hidden?: number;
  classifier?: number;
}

export interface LoadReport {
  /** Head weights the checkpoint lacked, initialised fresh (train before use). */
  newlyInitialized: string[];
  /** Checkpoint tensors this model has no place for. */
  unexpected: string[];
  /** Head tensors of another shape (a different numLabels), replaced by fresh ones (also in newlyInitialized). */
  mismatched: string[];
}
