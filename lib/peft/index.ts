export { formatSummary } from './trainable';
export type { ModuleCount, ParameterSummary, TrainableOptions, TrainablePolicy } from './trainable';
export type { BottleneckOptions, LoraOptions, PromptTuningOptions, TextEncoder } from './methods';
export { CONFIG_FILE as ADAPTER_CONFIG_FILE, WEIGHTS_FILE as ADAPTER_WEIGHTS_FILE, readAdapterConfig } from './files';
