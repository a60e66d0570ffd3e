export { AutoModel } from './auto';
export type { FromPretrainedOptions } from './auto';
export { Model } from './model';
export type { CallOptions, ForwardOutput, GenerateOptions, Labels, LoadReport, TrainStepOptions, DropoutOverrides, LossScalerState, ModelDtype, ModelInputs, OptimizerOptions } from './model';
export type { Task } from './config';
export type { IdsInput } from './inputs';
export { hubCacheDir, resolveModelDir } from './hub';
