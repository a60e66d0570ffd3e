/** The Trainer's option, model and result types (lib/train/trainer.ts). */
import type { ForwardOutput, IdsInput, ModelInputs, OptimizerOptions, TrainBatch } from '../models';
import type { NativeTensor } from '../native';
import type { Communicator } from '../distributed/communicator';
import type { TrainingArgs } from './args';
import type { SaveHooks } from './checkpoint';
import type { TrainData } from './data';
import type { DecodingTokenizer, GenerationOptions } from './generate-eval';
import type { MlmTrainOptions } from './mlm';
import type { MlmCollator } from '../data/mlm';

/** What the Trainer needs of a model (lib/models' Model has all of it). */
export interface TrainerModel {
  readonly task: string;
  readonly config: Record<string, unknown>;
  readonly device?: string;
  readonly dtype?: string;
  forward(inputs: ModelInputs): Promise<ForwardOutput>;
  /** One optimizer step on a batch, or on an accumulation window (an array, given when gradientAccumulationSteps > 1):
   * loss, gradients and update of the window's concatenation, computed one micro-batch at a time (Model.trainStep). */
  trainStep(inputs: TrainBatch | TrainBatch[], options?: { lr?: number; maxGradNorm?: number; communicator?: Communicator; skipNonFinite?: boolean; precision?: 'fp32' | 'bf16' | 'fp16' | 'auto' }): Promise<{ loss: number; gradNorm?: number; skipped?: boolean }>;
  configureOptimizer(options: OptimizerOptions): void;
  savePretrained(dir: string): Promise<void>;
  parameters(): { name: string; shape: number[]; dtype: string }[];
  getParameter(name: string): NativeTensor;
  setParameter(name: string, value: NativeTensor): void;
  /** Optimizer state to a file and back (lib/models Model has both): checkpoints then resume exactly. */
  saveOptimizerState?(file: string): Promise<void>;
  loadOptimizerState?(file: string): Promise<void>;
  /** Dropout overrides (TrainingArgs.dropout). */
  setDropout?(options: { embedding?: number; attention?: number; hidden?: number; classifier?: number }): void;
  /** TrainingArgs.gradientCheckpointing. */
  setGradientCheckpointing?(enabled: boolean): void;
  /** The loss scaler's state, saved in checkpoints and restored on resume (float16 training). */
  lossScalerState?(): { scale: number; goodSteps: number; growthInterval: number };
  setLossScalerState?(state: { scale?: number; goodSteps?: number; growthInterval?: number }): void;
  /** TrainingArgs.predictWithGenerate: generated ids per row (seq2seq: the target tokens; decoder-only: prompt + new tokens). */
  generate?(inputIds: IdsInput, options: GenerationOptions): Promise<number[][]>;
}

export interface TrainerOptions {
  model: TrainerModel;
  /** Supplies the pad id when features are collated and the model config has none; masked-lm: the mask token and raw-text tokenization. */
  tokenizer?: Partial<DecodingTokenizer> & { requireTokenId(kind: 'pad', purpose: string): number };
  /**
   * Masked-lm models: every batch of every split is masked afresh (80/10/10, seeded by args.seed, epoch and batch;
   * lib/data/mlm.ts). Default `{ mlmProbability: 0.15 }` with the tokenizer's mask token; an MlmCollator is used as
   * is; `false`: the data are already masked (they carry labels). Train data may then be raw texts (string[]).
   */
  mlm?: MlmTrainOptions | MlmCollator | false;
  train: TrainData;
  validation?: TrainData;
  test?: TrainData;
  args: TrainingArgs;
  /** Fault injection for checkpoint saves (tests). */
  saveHooks?: SaveHooks;
  /**
   * Data parallel (lib/distributed): each rank trains on its shard of every epoch with gradients averaged over the
   * group; rank 0 alone writes logs, checkpoints and the report (the others wait at a barrier after each
   * checkpoint). Every rank evaluates the full validation set, so early-stopping decisions agree without talk.
   */
  communicator?: Communicator;
}

export interface TrainResult {
  globalStep: number;
  epoch: number;
  reason: 'completed' | 'earlyStop' | 'aborted';
  /** Training loss per optimizer step, in order. */
  losses: number[];
  bestMetric: number | null;
  bestCheckpoint: string | null;
  testMetrics: Record<string, number> | null;
  /** report.html (report.png beside it), when args.report. */
  report: string | null;
  /** Updates skipped for a NaN/Inf loss or gradient norm (onNonFinite: 'skip'). */
  skippedSteps: number;
}

export interface Prediction {
  outputs: ForwardOutput[];
  /** Per row: [class id] (classification), argmax per token (causal-lm, token classification), [start, end] (QA: the best span of at most 30 tokens). */
  predictions: number[][];
}
