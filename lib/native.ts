/**
 * The native addon: its exact shape as a TypeScript interface, and the one place that loads it.
 * Everything else in lib/ talks to `native()`, never to a `.node` file directly.
 */
import * as fs from 'fs';
import * as path from 'path';
import { NodetuneError } from './errors';
import { blockCacheSettings, BlockCacheStats, mmapThreshold } from './heap';
import { setOmpWaitPolicy, startupThreadSettings, stepTorchThreads } from './threads';
import { chooseBlasKernel } from './blas-kernel';
import { cpuFeatures } from './cpu';

export type NativeDtype =
  | 'float32' | 'float16' | 'bfloat16' | 'float64' | 'int32' | 'int64' | 'int16' | 'int8' | 'uint8' | 'bool';

export type NativeTypedArray =
  | Float32Array | Float64Array | Int32Array | BigInt64Array | Int16Array | Int8Array | Uint8Array | Uint16Array;

/** A LibTorch tensor held by JavaScript (native/binding/tensor_wrap.cc). */
export interface NativeTensor {
  readonly shape: number[];
  readonly dtype: NativeDtype;
  readonly device: string;
  /** A view of the data (zero-copy for CPU tensors; the array keeps the tensor alive). */
  data(): NativeTypedArray;
  to(device?: string | null, dtype?: NativeDtype | null): Promise<NativeTensor>;
  matmul(other: NativeTensor): Promise<NativeTensor>;
}

export interface NativeTensorConstructor {
  new (
    data: NativeTypedArray | number[] | number[][] | number[][][],
    shape?: number[] | null,
    dtype?: NativeDtype | null,
    device?: string | null,
  ): NativeTensor;
}

/** The validated model config the native Model is built from (lib/models/config.ts fills it). */
export interface NativeModelConfig {
  family: 'gpt2' | 'llama' | 'bert' | 'distilbert' | 't5';
  modelType: string;
  task: 'base' | 'causal-lm' | 'sequence-classification' | 'token-classification' | 'question-answering' | 'masked-lm' | 'seq2seq-lm';
  prefix: string;
  vocabSize: number;
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads?: number;
  headDim?: number;
  intermediateSize: number;
  maxPositions: number;
  typeVocabSize?: number;
  numLabels: number;
  normEps: number;
  act: string;
  ropeTheta?: number;
  ropeType?: string;
  ropeFactor?: number;
  ropeLowFreqFactor?: number;
  ropeHighFreqFactor?: number;
  ropeOriginalMaxPositions?: number;
  slidingWindow?: number;
  tieWordEmbeddings?: boolean;
  qkvBias?: boolean;
  oBias?: boolean;
  mlpBias?: boolean;
  scaleAttnByInverseLayerIdx?: boolean;
  embdDropout?: number;
  attnDropout?: number;
  residDropout?: number;
  classifierDropout?: number;
  padTokenId?: number;
  robertaPositions?: boolean;
  initRange?: number;
  /** T5 / mT5 (numLayers is the encoder's, headDim d_kv, intermediateSize d_ff). */
  numDecoderLayers?: number;
  relativeAttentionNumBuckets?: number;
  relativeAttentionMaxDistance?: number;
  gatedFfn?: boolean;
  initFactor?: number;
  decoderStartTokenId?: number;
  /** umt5: a relative attention bias table in every block (t5/mt5: block 0's, shared). */
  perLayerRelativeBias?: boolean;
}

/** Decoder inputs of an encoder-decoder, passed in the token-types slot of forward/trainStep/lossAndGradients. */
export interface NativeSeq2SeqInputs {
  decoderInputIds: NativeIds | null;
  decoderShape: number[];
  decoderAttentionMask: NativeIds | null;
}

/** One tensor to copy from a safetensors file into a parameter. */
export interface NativeTensorEntry {
  param: string;
  file: string;
  dtype: string;
  shape: number[];
  offset: number;
  length: number;
}

export type NativeIds = Int32Array | BigInt64Array;

/** A linear layer LoRA wraps (native/peft/adapters.h). */
export interface NativeLoraTarget {
  module: string;
  inFeatures: number;
  outFeatures: number;
  /** GPT-2 Conv1D: the base weight is [in, out]. */
  fanInFanOut: boolean;
}

/** A parameter of the base model or of an adapter. */
export interface NativeParameterInfo {
  name: string;
  shape: number[];
  dtype: NativeDtype;
  trainable: boolean;
  /** Set for a frozen linear weight kept quantized (its dtype is then the one it dequantizes to). */
  quantized?: 'int8' | 'nf4';
}

/** One micro-batch of a native trainStep window. */
export interface NativeMicroBatch {
  ids: NativeIds;
  shape: number[];
  mask: NativeIds | null;
  tokenTypes: NativeIds | NativeSeq2SeqInputs | null;
  labels: NativeIds | Float32Array;
  labelsShape: number[];
}

/** An adapter name for one call: undefined = the active adapter, null = none. */
export type NativeAdapterArg = string | null | undefined;

/** A transformer with its task head (native/binding/model_wrap.cc). */
/** One row's decoding options in a generation session (native/nn/generation_session.h RowOptions). */
export interface NativeRowOptions {
  maxNewTokens: number; temperature: number; topK: number; topP: number; repetitionPenalty: number;
  presencePenalty: number; frequencyPenalty: number; penaltyContext: number;
  biasTokens: Int32Array; biasValues: Float32Array; stopTokens: Int32Array; seed: number; logprobs: number;
}

/** One generated token of a session row; `reason` is '' until the row finished. */
export interface NativeStepToken {
  row: number; token: number; finished: boolean; reason: '' | 'stop' | 'length';
  logprob?: number; topIds?: number[]; topLogprobs?: number[];
}

export interface NativeStepResult { tokens: NativeStepToken[]; rows: number; length: number; capacity: number }

export interface NativeModel {
  parameters(): NativeParameterInfo[];
  headNames(): string[];
  load(entries: NativeTensorEntry[], initialize: string[], seed: number | null): Promise<void>;
  save(path: string, header: string, names: string[]): Promise<number>;
  forward(ids: NativeIds, shape: number[], mask: NativeIds | null, tokenTypes: NativeIds | NativeSeq2SeqInputs | null, adapter?: NativeAdapterArg): Promise<{ data: Float32Array; shape: number[] }>;
  configureOptimizer(options: { type: string; lr: number; beta1: number; beta2: number; eps: number; weightDecay: number; momentum: number }): void;
  saveOptimizerState(file: string): Promise<void>;
  loadOptimizerState(file: string): Promise<void>;
  setDropout(options: { embedding?: number; attention?: number; hidden?: number; classifier?: number }): void;
  setGradientCheckpointing(enabled: boolean): void;
  lossScalerState(): { scale: number; goodSteps: number; growthInterval: number };
  setLossScalerState(state: { scale?: number; goodSteps?: number; growthInterval?: number }): void;
  /** One optimizer step on a window of micro-batches (one: a plain step; more: gradient accumulation). */
  trainStep(window: NativeMicroBatch[], lr: number | null, maxGradNorm: number | null, adapter?: NativeAdapterArg,
    communicator?: NativeCommunicator | null, skipNonFinite?: boolean, precision?: 'fp32' | 'bf16' | 'fp16',
    lossScaling?: boolean, torchThreads?: number): Promise<{ loss: number; gradNorm: number; skipped: boolean }>;
  lossAndGradients(ids: NativeIds, shape: number[], mask: NativeIds | null, tokenTypes: NativeIds | NativeSeq2SeqInputs | null, labels: NativeIds | Float32Array,
    labelsShape: number[], names: string[], adapter?: NativeAdapterArg): Promise<{ loss: number; grads: (NativeTensor | null)[] }>;
  generate(ids: NativeIds, shape: number[], mask: NativeIds | null, options: {
    maxNewTokens: number; temperature: number; topK: number; topP: number; repetitionPenalty: number;
    eosTokenId: number; padTokenId: number; seed: number; numBeams?: number; lengthPenalty?: number;
    /** Per row (lib/models/sampling.ts): [B] penalties, [N, 2] (row, token) + [N] logit biases, logprobs alternatives. */
    presencePenalty?: Float32Array; frequencyPenalty?: Float32Array; logitBiasIndex?: Int32Array; logitBiasValue?: Float32Array; logprobs?: number; penaltyContext?: Int32Array;
  }, adapter?: NativeAdapterArg): Promise<{ data: Int32Array; shape: number[]; lengths?: Int32Array;
    /** With options.logprobs: [B, steps] chosen tokens', [B, steps, k] best alternatives. */
    logprobs?: Float32Array; topIds?: Int32Array; topLogprobs?: Float32Array }>;
  /** Generation sessions (native/nn/generation_session.h): a handle per session; add/cancel queue work for the next step. */
  sessionOpen(): number;
  sessionAdd(session: number, row: number, ids: Int32Array, options: NativeRowOptions): void;
  sessionCancel(session: number, row: number): void;
  sessionStep(session: number, adapter?: NativeAdapterArg): Promise<NativeStepResult>;
  sessionClose(session: number): void;
  /** A CPU copy of a base parameter, or of an adapter's parameter when `adapter` is given. */
  getParameter(name: string, adapter?: string): NativeTensor;
  setParameter(name: string, value: NativeTensor): void;
  /** requires_grad of base parameters (a configured optimizer is rebuilt over the new set). */
  setTrainable(names: string[], trainable: boolean): void;
  addLora(name: string, options: { r: number; scale: number; dropout: number; seed: number | null; targets: NativeLoraTarget[] }): void;
  addBottleneck(name: string, options: { size: number; act: string; seed: number | null; sites: string[] }): void;
  addPrompt(name: string, options: { numVirtualTokens: number; embedding: string; ids: number[] | null; seed: number | null }): void;
  removeAdapter(name: string): void;
  adapterParameters(name: string): NativeParameterInfo[];
  /** The adapter calls use when they name none (null: none); only its parameters train. */
  setActiveAdapter(name: string | null): void;
  mergeAdapter(name: string): void;
  unmergeAdapter(): void;
  /** One safetensors file of base (adapter null) and adapter tensors, in `items` order. */
  saveTensors(path: string, header: string, items: { adapter: string | null; param: string }[]): Promise<number>;
  loadTensors(entries: (NativeTensorEntry & { adapter: string | null })[]): Promise<void>;
  /** Keeps these frozen linear weights quantized from now on (load() quantizes them tensor by tensor);
   * `transposed`: those stored [in, out] (Conv1D). */
  quantize(names: string[], format: 'int8' | 'nf4', transposed?: string[]): void;
  /** Weights a checkpoint holds quantized (bitsandbytes' layout), checked against their statistics. */
  loadQuantized(items: { param: string; format: 'int8' | 'nf4'; blocksize?: number; nestedBlocksize?: number; offset?: number;
    parts: { role: string; name: string; file: string; dtype: string; shape: number[]; offset: number; length: number }[] }[]): Promise<void>;
  /** Bytes held by the quantized weights. */
  quantizedBytes(): number;
  /** The LM head of a tied model multiplies by a quantized copy of the embeddings. */
  quantizeTiedHead(format: 'int8' | 'nf4'): void;
}

export interface NativeModelConstructor {
  new (config: NativeModelConfig, device: string, dtype: string): NativeModel;
}

/** A process's membership in a training group (native/binding/communicator_wrap.cc). */
export interface NativeCommunicator {
  readonly rank: number;
  readonly worldSize: number;
  allReduce(tensors: NativeTensor[], average: boolean): Promise<void>;
  broadcast(tensors: NativeTensor[], root: number): Promise<void>;
  barrier(): Promise<void>;
}

export interface NativeCommunicatorConstructor {
  connect(options: { masterAddr: string; port: number; rank: number; worldSize: number; timeoutMs: number }): Promise<NativeCommunicator>;
}

export interface NativeRuntimeInfo {
  torchVersion: string;
  cudaAvailable: boolean;
  cudaDevices: string[];
  torchLibrary: string;
  blas: { name: string; library: string; threads: number; kernel: string; config: string };
  intraOpThreads: number;
  interOpThreads: number;
  hardwareThreads: number;
}

export interface NativeBinding {
  setErrorClass(ctor: new (code: string, message: string) => Error): void;
  runtimeInfo(): NativeRuntimeInfo;
  setNumThreads(torchThreads: number, blasThreads: number): void;
  /** LibTorch intra-op threads for every call on a bfloat16 CPU model (0: leave the setting). */
  setBf16ModelThreads(threads: number): void;
  /** glibc's mmap threshold (lib/heap.ts): whether it was set; mmapThreshold(): the value set, 0 if none. */
  setMmapThreshold(bytes: number): boolean;
  mmapThreshold(): number;
  /** The block cache (lib/heap.ts): installs it (false if it already was); unmaps its idle blocks; its counters. */
  installBlockCache(minBytes: number, slack: number): boolean;
  releaseBlockCache(): number;
  blockCacheStats(): BlockCacheStats | null;
  bf16ModelThreads(): number;
  /** GFLOP/s of n x n products in dtype; threads > 0: with that many LibTorch intra-op threads, 0: as set. */
  measureMatmul(n: number, iterations: number, dtype: 'float32' | 'bfloat16', threads: number): Promise<number>;
  measureReadBandwidth(bytes: number, iterations: number): Promise<number>;
  /** [major, minor] compute capability of a CUDA device, [0, 0] where it cannot be asked. */
  cudaComputeCapability(index: number): [number, number];
  /** The int8 decoding kernels this CPU runs, preferred first: 'q8-vnni', 'q8-avx2', 'exact-avx2', 'exact', 'q8'. */
  int8DecodeKernels(): string[];
  /** The int8 decoding kernel products use now. */
  int8DecodeKernel(): string;
  /** Chooses the int8 decoding kernel for the process ('auto' or a name of int8DecodeKernels()); returns the previous. */
  setInt8DecodeKernel(name: string): string;
  /** x [m, k] @ W^T with W [n, k] quantized to int8 (per-row absmax) by the named decoding kernel ('': current). */
  int8DecodeProduct(weight: Float32Array, n: number, k: number, x: Float32Array, m: number, kernel: string): Float32Array;
  manualSeed(seed: number): void;
  rngState(device?: string | null): Uint8Array;
  setRngState(state: Uint8Array, device?: string | null): void;
  readonly buildInfo: { torchVersion: string; cxx11Abi: boolean; napiVersion: number };
  readonly Tensor: NativeTensorConstructor;
  readonly Communicator: NativeCommunicatorConstructor;
  readonly Model: NativeModelConstructor;
}

export interface LoadedBinding {
  binding: NativeBinding;
  /** The .node file that was loaded. */
  path: string;
}

let loaded: LoadedBinding | undefined;

/** The package root (where package.json, build/ and prebuilds/ are). */
export const packageRoot = path.resolve(__dirname, '..', '..');

function candidates(): string[] {
  const tried: string[] = [];
  if (process.env.NODETUNE_ADDON) tried.push(path.resolve(process.env.NODETUNE_ADDON));
  return tried;
}

/** Loads the addon once: NODETUNE_ADDON if set, else node-gyp-build's search (build/Release, prebuilds/). */
export function loadNative(): LoadedBinding {
  if (loaded) return loaded;
  const explicit = candidates();
  let file: string;
  try {
    if (explicit.length > 0) {
      file = explicit[0]!;
      if (!fs.existsSync(file)) throw new Error(`NODETUNE_ADDON points at ${file}, which does not exist`);
    } else {
      // eslint-disable-next-line @typescript-eslint/no-var-requires
      const nodeGypBuild = require('node-gyp-build') as { path(dir: string): string };
      file = nodeGypBuild.path(packageRoot);
    }
  } catch (e) {
    throw new NodetuneError(
      'ERR_NATIVE_LOAD',
      'nodetune: the native addon was not found. Tried: ' +
        [
          ...(process.env.NODETUNE_ADDON ? [`NODETUNE_ADDON=${process.env.NODETUNE_ADDON}`] : []),
          path.join(packageRoot, 'build', 'Release', '*.node'),
          path.join(packageRoot, 'prebuilds', `${process.platform}-${process.arch}`, '*.node'),
        ].join(', ') +
        ` (${(e as Error).message.split('\n')[0]}). Possible solutions: run \`npm run setup\` in ${packageRoot} ` +
        '(installs LibTorch and builds the addon); or install LibTorch and run `npm run build:native`; ' +
        'or unpack a LibTorch from pytorch.org, set LIBTORCH=/path/to/libtorch and rebuild.',
      { field: 'addon' },
    );
  }
  // OpenBLAS reads OPENBLAS_CORETYPE when the addon's libraries load: decide it first (lib/blas-kernel.ts).
  chooseBlasKernel(cpuFeatures());
  // OpenMP reads its wait policy when it loads, with the addon (lib/threads.ts).
  setOmpWaitPolicy();
  let binding: NativeBinding;
  try {
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    binding = require(file) as NativeBinding;
  } catch (e) {
    throw new NodetuneError(
      'ERR_NATIVE_LOAD',
      `nodetune: the native addon ${file} failed to load: ${(e as Error).message}. Possible solutions: ` +
        'make sure the LibTorch it was built against is still installed (`npm run doctor`, `node scripts/find-libtorch.js`); ' +
        'rebuild with `npm run build:native`; or run `npm run setup`.',
      { file },
    );
  }
  binding.setErrorClass(NodetuneError as unknown as new (code: string, message: string) => Error);
  // Before any tensor: NODETUNE_MMAP_THRESHOLD, glibc's mmap threshold (lib/heap.ts).
  const threshold = mmapThreshold();
  if (threshold !== null) binding.setMmapThreshold(threshold);
  // NODETUNE_BLOCK_CACHE: tensors' large blocks kept for reuse within the peak of live bytes (lib/heap.ts).
  const cache = blockCacheSettings();
  if (cache !== null) binding.installBlockCache(cache.minBytes, cache.slack);
  const info = binding.runtimeInfo();
  const threads = startupThreadSettings(info);
  binding.setNumThreads(threads.torch, threads.blas);
  // A bfloat16 model's products run on LibTorch's threads, not the BLAS's: every core for its calls, by the rule of
  // bf16 training steps (lib/threads.ts), unless NODETUNE_NUM_THREADS chose.
  binding.setBf16ModelThreads(stepTorchThreads(info, true, false) ?? 0);
  loaded = { binding, path: file };
  return loaded;
}

/** The loaded binding (loading it on first use). */
export function native(): NativeBinding {
  return loadNative().binding;
}
