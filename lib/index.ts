/**
 * nodetune: fine-tune transformer language models from Node.js on LibTorch.
 */
export { NodetuneError } from './errors';
export type { ErrorCode, ErrorDetails } from './errors';
export { runtimeInfo, setNumThreads, defaultThreadSettings, measureMatmul } from './runtime';
export type { RuntimeInfo, ThreadSettings } from './runtime';
export { Tensor } from './tensor';
export type { Dtype, Device, TensorOptions } from './tensor';
