/**
 * nodetune: fine-tune transformer language models from Node.js on LibTorch.
 */
export { NodetuneError } from './errors';
export type { ErrorCode, ErrorDetails } from './errors';
export { runtimeInfo, setNumThreads, defaultThreadSettings, measureMatmul, measureReadBandwidth, resolvePrecision, releaseCachedMemory } from './runtime';
export type { BlockCacheStats } from './heap';
export type { MeasureMatmulOptions, Precision, PrecisionOption } from './runtime';
export { cpuFeatures } from './cpu';
export type { CpuFeatures } from './cpu';
export type { RuntimeInfo, ThreadSettings } from './runtime';
export { Tensor } from './tensor';
export type { Dtype, Device, TensorOptions } from './tensor';
export { AutoModel, Model, hubCacheDir, resolveModelDir } from './models';
export type {
  FromPretrainedOptions as ModelFromPretrainedOptions,
  ForwardOutput, GenerateOptions, Labels, LoadReport, ModelDtype, ModelInputs, OptimizerOptions, Task, IdsInput,
} from './models';
export type { TrainBatch } from './models';
export type { GenerationSession, SessionOptions, SessionRowOptions, SessionStep, SessionToken } from './models';
export { AutoTokenizer, PreTrainedTokenizer } from './tokenizers';
export type { EncodeOptions, Encoded, DecodeOptions, SpecialTokens, ChatMessage, ChatTemplateOptions } from './tokenizers';
export type { FromPretrainedOptions as TokenizerFromPretrainedOptions } from './tokenizers';
export * as data from './data';
export { DataLoader, LabelMap } from './data';
export type { Batch, Example, Feature, LoaderOptions, SourceSpec } from './data';
export { manualSeed, rngState, setRngState } from './rng';
export { Trainer, hyperparameterSearch } from './train';
export type { TrainingArgs, TrainerEvents, TrainerEvent, TrainResult, TrainerModel, TrainerOptions } from './train';
export * as train from './train';
export * as dist from './distributed';
export { pipeline, groupEntities, QueueFullError, CancelledError } from './pipelines';
export type {
  PipelineTask, PipelineOptions, TextClassificationPipeline, TextGenerationPipeline, TokenClassificationPipeline,
  QuestionAnsweringPipeline, ClassificationResult, LabelScore, Generation, GenerationOptions, TokenLabel, EntitySpan,
  Answer, QaInput, QaOptions, BatcherOptions, Text2TextGenerationPipeline, Text2TextOptions, Text2TextResult, FillMaskPipeline, FillMaskOptions,
  FillMaskResult,
} from './pipelines';
// The HTTP server (Fastify) is a subpath, so `require('nodetune')` does not load it: require('nodetune/serve').
export { formatSummary, ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE, readAdapterConfig } from './peft';
export type {
  ParameterSummary, ModuleCount, TrainablePolicy, TrainableOptions, LoraOptions, BottleneckOptions, PromptTuningOptions, TextEncoder,
} from './peft';
export type { CallOptions } from './models';
