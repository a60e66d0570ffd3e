/** Model: a loaded transformer with its task head; every slow call is a Promise, calls run one at a time. */
import { checkOptionKeys } from '../util/options';
import { CALL_KEYS, GENERATE_KEYS, OPTIMIZER_KEYS, TRAIN_STEP_KEYS } from '../util/option-keys';
import * as fs from 'fs';
import * as path from 'path';
import { NodetuneError, check } from '../errors';
import { callerSite, SerialQueue, withCallerStack } from '../util/serial';
import type { NativeIds, NativeMicroBatch, NativeModel, NativeSeq2SeqInputs, NativeTensor } from '../native';
import { PeftController } from '../peft/controller';
import type { BottleneckOptions, LoraOptions, PromptTuningOptions } from '../peft/methods';
import type { ParameterSummary, TrainableOptions, TrainablePolicy } from '../peft/trainable';
import { NativeTask, RawConfig, ResolvedConfig } from './config';
import { LayerSelection, planLayers, reducedConfig, shrinkNative } from './structure';
import { IdsInput, Matrix, expectLabelIds, expectShape, toMatrix } from './inputs';
import { decoderInputs, generatedRows, seq2seqLabels } from './seq2seq';
import { HeaderTensor, SafetensorsDtype, buildHeader, elementSize } from './safetensors';
import { resolvePrecision } from '../precision';
import { trainStepThreads } from '../runtime';

import { noRowSamplingFor, rowLogprobs, rowSampling, scalarSampling } from './sampling';
import { GenerationSession, SessionOptions } from './session';
import type { DetailedGenerateOptions, GenerateOutput } from './model-types';
import type { TrainBatch } from './model-types';
export type { TrainBatch } from './model-types';
export type { DetailedGenerateOptions, GenerateOutput } from './model-types';
import type { ModelDtype, ModelInputs, Labels, ForwardOutput, OptimizerOptions, GenerateOptions, CallOptions, TrainStepOptions, LossScalerState, DropoutOverrides, LoadReport } from './model-types';
export type { ModelDtype, ModelInputs, Labels, ForwardOutput, OptimizerOptions, GenerateOptions, CallOptions, TrainStepOptions, LossScalerState, DropoutOverrides, LoadReport } from './model-types';

const DTYPE_TAG: Record<string, SafetensorsDtype> = { float32: 'F32', float16: 'F16', bfloat16: 'BF16', float64: 'F64' };

export class Model {
  /** config.json as it will be saved (labels and architectures for this task). */
  get config(): RawConfig {
    return this.resolved.raw;
  }
  readonly task: NativeTask;
  readonly modelType: string;
  readonly device: string;
  readonly dtype: ModelDtype;
  readonly loadReport: LoadReport;
  /** The format the frozen linear weights are kept in ('int8' | 'nf4'), or null (see FromPretrainedOptions.quantize). */
  readonly quantized: 'int8' | 'nf4' | null;
  private native: NativeModel;
  private resolved: ResolvedConfig;
  /** Calls on one model run one at a time (lib/util/serial.ts). */
  private readonly calls = new SerialQueue();
  private optimizerConfigured = false;
  private peft: PeftController;
  /** Settings a structure change carries over to the new native model. */
  private readonly settings: { dropout: DropoutOverrides; checkpointing: boolean } = { dropout: {}, checkpointing: false };

  /** @internal Use AutoModel.fromPretrained. */
  constructor(native: NativeModel, resolved: ResolvedConfig, device: string, dtype: ModelDtype,
    report: Omit<LoadReport, 'mismatched'> & { mismatched?: string[] }, nameOrPath?: string, quantized: 'int8' | 'nf4' | null = null) {
    this.native = native;
    this.quantized = quantized;
    this.resolved = resolved;
    this.task = resolved.task;
    this.modelType = resolved.modelType;
    this.device = device;
    this.dtype = dtype;
    this.loadReport = { mismatched: [], ...report };
    this.peft = new PeftController(native, resolved, resolved.task, nameOrPath, this.loadReport.newlyInitialized);
  }

  /** Runs `fn` after every call queued before it; a rejection carries the caller's stack. */
  private enqueue<T>(fn: () => Promise<T>): Promise<T> {
    const site = callerSite(this.enqueue);
    return this.calls.run(() => withCallerStack(site, fn));
  }

  private batch(inputs: ModelInputs, what: string, adapter?: string | null): { ids: Matrix; mask: NativeIds | null; types: NativeIds | NativeSeq2SeqInputs | null } {
    check(inputs && typeof inputs === 'object', `${what}: expected { inputIds, attentionMask?, tokenTypeIds? }`, 'inputs');
    const ids = toMatrix(inputs.inputIds, 'inputIds', { min: 0, max: this.resolved.native.vocabSize - 1 });
    let mask: NativeIds | null = null;
    let types: NativeIds | null = null;
    if (inputs.attentionMask !== undefined) {
      const m = toMatrix(inputs.attentionMask, 'attentionMask', { min: 0, max: 1 });
      expectShape(m, ids.shape, 'attentionMask', 'inputIds');
      mask = m.data;
    }
    if (inputs.tokenTypeIds !== undefined) {
      const typeVocab = this.resolved.native.typeVocabSize ?? 0;
      if (typeVocab === 0) throw new NodetuneError('ERR_ARGUMENT', `tokenTypeIds: ${this.modelType} has no token types`, { field: 'tokenTypeIds' });
      const t = toMatrix(inputs.tokenTypeIds, 'tokenTypeIds', { min: 0, max: typeVocab - 1 });
      expectShape(t, ids.shape, 'tokenTypeIds', 'inputIds');
      types = t.data;
    }
    if (this.task === 'seq2seq-lm') return { ids, mask, types: decoderInputs(inputs, ids, this.resolved.native.vocabSize, what, what === 'forward()') };
    if (inputs.decoderInputIds !== undefined || inputs.decoderAttentionMask !== undefined)
      throw new NodetuneError('ERR_ARGUMENT', `${what}: decoderInputIds / decoderAttentionMask are for seq2seq-lm models, this one is ${this.task}`, { field: 'decoderInputIds' });
    const virtual = this.peft.virtualTokens(adapter);
    const maxPos = this.resolved.native.maxPositions - (this.resolved.native.robertaPositions ? (this.resolved.native.padTokenId ?? 1) + 1 : 0) - virtual;
    if (this.resolved.family !== 'llama' && ids.shape[1] > maxPos)
      throw new NodetuneError('ERR_SHAPE', `inputIds: length ${ids.shape[1]} exceeds the model's ${maxPos} positions${virtual ? ` (after ${virtual} virtual tokens)` : ''}`, { field: 'inputIds' });
    return { ids, mask, types };
  }

  /** Logits of the task head ([batch, length, vocab] for causal-lm), or hidden states for a base model. */
  forward(inputs: ModelInputs, options: CallOptions = {}): Promise<ForwardOutput> {
    checkOptionKeys(options, CALL_KEYS, 'forward()');
    const adapter = this.peft.adapterArg(options.adapter, 'forward()');
    const { ids, mask, types } = this.batch(inputs, 'forward()', adapter);
    return this.enqueue(async () => {
      const out = await this.native.forward(ids.data, ids.shape, mask, types, adapter);
      return { logits: out.data, shape: out.shape };
    });
  }

  configureOptimizer(options: OptimizerOptions): void {
    check(options && typeof options === 'object', 'configureOptimizer(options): options must be an object', 'options');
    checkOptionKeys(options, OPTIMIZER_KEYS, 'configureOptimizer()');
    check(options.type === 'adamw' || options.type === 'sgd', `configureOptimizer(): type must be 'adamw' or 'sgd', got ${JSON.stringify(options.type)}`, 'type');
    const positive = (v: unknown, name: string, allowZero = false) =>
      check(typeof v === 'number' && Number.isFinite(v) && (allowZero ? v >= 0 : v > 0), `configureOptimizer(): ${name} must be a ${allowZero ? 'non-negative' : 'positive'} number, got ${JSON.stringify(v)}`, name);
    positive(options.lr, 'lr', true);
    const betas = options.betas ?? [0.9, 0.999];
    check(Array.isArray(betas) && betas.length === 2 && betas.every((b) => typeof b === 'number' && b >= 0 && b < 1),
      `configureOptimizer(): betas must be [beta1, beta2] in [0, 1), got ${JSON.stringify(options.betas)}`, 'betas');
    if (options.eps !== undefined) positive(options.eps, 'eps');
    if (options.weightDecay !== undefined) positive(options.weightDecay, 'weightDecay', true);
    if (options.momentum !== undefined) positive(options.momentum, 'momentum', true);
    this.native.configureOptimizer({
      type: options.type, lr: options.lr, beta1: betas[0], beta2: betas[1], eps: options.eps ?? 1e-8,
      weightDecay: options.weightDecay ?? 0, momentum: options.momentum ?? 0,
    });
    this.optimizerConfigured = true;
  }

  private labels(labels: Labels, ids: Matrix, types: NativeIds | NativeSeq2SeqInputs | null): { data: NativeIds | Float32Array; shape: number[] } {
    const batch = ids.shape[0];
    if (this.task === 'seq2seq-lm') return seq2seqLabels(labels, ids, types as NativeSeq2SeqInputs | null, this.resolved.native.vocabSize);
    if (this.task === 'sequence-classification' && this.resolved.numLabels === 1) {
      // Regression (num_labels 1): one float target per row, mean squared error.
      const values = labels instanceof Float32Array ? labels : Array.isArray(labels) && labels.every((x) => typeof x === 'number') ? Float32Array.from(labels as number[]) : undefined;
      if (!values) throw new NodetuneError('ERR_ARGUMENT', 'labels: a regression head (numLabels 1) takes one number per row (number[] or Float32Array)', { field: 'labels' });
      if (values.length !== batch) throw new NodetuneError('ERR_SHAPE', `labels has ${values.length} entries, inputIds has ${batch} rows`, { field: 'labels' });
      return { data: values, shape: [batch] };
    }
    if (this.task === 'sequence-classification') {
      let data: NativeIds;
      if (labels instanceof Int32Array || labels instanceof BigInt64Array) data = labels;
      else if (Array.isArray(labels) && labels.every((x) => typeof x === 'number')) {
        labels.forEach((x, i) => check(Number.isInteger(x), `labels[${i}] must be an integer class id, got ${x}`, 'labels'));
        data = Int32Array.from(labels as number[]);
      } else throw new NodetuneError('ERR_ARGUMENT', 'labels: sequence-classification labels are class ids, one per row (number[] or Int32Array)', { field: 'labels' });
      if (data.length !== batch) throw new NodetuneError('ERR_SHAPE', `labels has ${data.length} entries, inputIds has ${batch} rows`, { field: 'labels' });
      const n = this.resolved.numLabels;
      for (let i = 0; i < data.length; i++) {
        const x = Number(data[i]!);
        if (n > 1 && (x < 0 || x >= n) && x !== -100) throw new NodetuneError('ERR_ARGUMENT', `labels[${i}] = ${x} is not a class id in [0, ${n})`, { field: 'labels' });
      }
      return { data, shape: [batch] };
    }
    const m = toMatrix(labels, 'labels');
    if (this.task === 'question-answering') expectShape(m, [batch, 2], 'labels', '[batch, 2] (start, end)');
    else expectShape(m, ids.shape, 'labels', 'inputIds');
    // Out-of-range ids would otherwise surface as an index error deep in the native loss.
    if (this.task === 'causal-lm' || this.task === 'masked-lm') expectLabelIds(m, this.resolved.native.vocabSize, 'token');
    else if (this.task === 'token-classification') expectLabelIds(m, this.resolved.numLabels, 'class');
    return m;
  }

  /**
   * Activation checkpointing per transformer block while training: activations are recomputed in backward
   * instead of kept (less memory, about one more forward pass per step). Gradients are unchanged.
   */
  setGradientCheckpointing(enabled: boolean): void {
    check(typeof enabled === 'boolean', 'setGradientCheckpointing(enabled): enabled must be a boolean', 'enabled');
    this.native.setGradientCheckpointing(enabled);
    this.settings.checkpointing = enabled;
  }

  /** The dynamic loss scaler's state: the current scale, good steps since the last change, the growth interval. */
  lossScalerState(): LossScalerState {
    return this.native.lossScalerState();
  }

  /** Restores (or configures) the loss scaler: e.g. { scale: 1024, growthInterval: 100 }. */
  setLossScalerState(state: Partial<LossScalerState>): void {
    check(state && typeof state === 'object', 'setLossScalerState(state): state must be an object', 'state');
    this.native.setLossScalerState(state);
  }

  /** Overrides dropout probabilities for training (HF's config attributes, by role); validated here. */
  setDropout(options: DropoutOverrides): void {
    check(options && typeof options === 'object', 'setDropout(options): options must be an object', 'options');
    for (const [k, v] of Object.entries(options)) {
      check(['embedding', 'attention', 'hidden', 'classifier'].includes(k), `setDropout(): unknown key '${k}' (allowed: embedding, attention, hidden, classifier)`, k);
      check(typeof v === 'number' && v >= 0 && v < 1, `setDropout(): ${k} must be a probability in [0, 1), got ${JSON.stringify(v)}`, k);
    }
    this.native.setDropout(options);
    Object.assign(this.settings.dropout, options);
  }

  /**
   * Writes the optimizer's state (AdamW moments and step counts, SGD momentum buffers) to `file`, so a
   * checkpointed run resumes exactly. LibTorch's serialisation plus the parameter shapes, checked on load.
   */
  saveOptimizerState(file: string): Promise<void> {
    check(typeof file === 'string' && file.length > 0, 'saveOptimizerState(file): file must be a non-empty string', 'file');
    check(this.optimizerConfigured, 'saveOptimizerState(): call configureOptimizer() first', 'optimizer');
    return this.enqueue(() => this.native.saveOptimizerState(path.resolve(file)));
  }

  /** Restores an optimizer state written by saveOptimizerState (same model, same trainable parameters). */
  loadOptimizerState(file: string): Promise<void> {
    check(typeof file === 'string' && file.length > 0, 'loadOptimizerState(file): file must be a non-empty string', 'file');
    check(this.optimizerConfigured, 'loadOptimizerState(): call configureOptimizer() first', 'optimizer');
    if (!fs.existsSync(file)) return Promise.reject(new NodetuneError('ERR_IO', `loadOptimizerState(): ${file} does not exist`, { file }));
    return this.enqueue(() => this.native.loadOptimizerState(path.resolve(file)));
  }

  /**
   * One training step (forward, loss, backward, clipping, optimizer step) in one native call. An array of batches is
   * a gradient-accumulation window (micro-batches of any lengths): forward and backward run per micro-batch into the
   * same gradients, so only one micro-batch's activations are in memory, then one all-reduce (with a communicator),
   * clipping and one optimizer step. Each micro-batch's loss is weighted by its share of the window's loss terms
   * (target tokens; rows for classification), so the loss, gradient norm and update are those of one step on the
   * concatenated batch.
   */
  trainStep(inputs: TrainBatch | TrainBatch[], options: TrainStepOptions = {}): Promise<{ loss: number; gradNorm: number; skipped: boolean }> {
    if (!this.optimizerConfigured) throw new NodetuneError('ERR_STATE', 'trainStep(): call configureOptimizer() first');
    if (this.task === 'base') throw new NodetuneError('ERR_STATE', 'trainStep(): a base model has no loss; load it with a task');
    checkOptionKeys(options, TRAIN_STEP_KEYS, 'trainStep()');
    const list = Array.isArray(inputs) ? inputs : [inputs];
    check(list.length > 0, 'trainStep(): the accumulation window is empty (give at least one batch)', 'inputs');
    const window: NativeMicroBatch[] = list.map((mb, i) => {
      const what = Array.isArray(inputs) ? `trainStep() micro-batch ${i}` : 'trainStep()';
      check(mb && typeof mb === 'object', `${what}: expected { inputIds, attentionMask?, tokenTypeIds?, labels }`, 'inputs');
      try {
        const { ids, mask, types } = this.batch(mb, what);
        const labels = this.labels(mb.labels, ids, types);
        return { ids: ids.data, shape: ids.shape, mask, tokenTypes: types, labels: labels.data, labelsShape: labels.shape };
      } catch (e) {
        if (!(e instanceof NodetuneError) || !Array.isArray(inputs) || e.message.startsWith(what)) throw e;
        throw new NodetuneError(e.code, `${what}: ${e.message}`, e.details);
      }
    });
    if (options.lr !== undefined) check(typeof options.lr === 'number' && options.lr >= 0, `trainStep(): lr must be a non-negative number, got ${options.lr}`, 'lr');
    if (options.maxGradNorm !== undefined)
      check(typeof options.maxGradNorm === 'number' && options.maxGradNorm > 0, `trainStep(): maxGradNorm must be a positive number, got ${options.maxGradNorm}`, 'maxGradNorm');
    if (options.precision !== undefined)
      check(['fp32', 'bf16', 'fp16', 'auto'].includes(options.precision), `trainStep(): precision must be 'fp32', 'bf16', 'fp16' or 'auto', got ${JSON.stringify(options.precision)}`, 'precision');
    const precision = resolvePrecision(options.precision ?? 'fp32', this.device);
    return this.enqueue(async () => {
      const r = await this.native.trainStep(window, options.lr ?? null, options.maxGradNorm ?? null, undefined,
        options.communicator ? options.communicator.handle : null, options.skipNonFinite === true, precision, options.lossScaling === true,
        trainStepThreads(this.device, precision, this.dtype) ?? 0);
      return { loss: r.loss, gradNorm: r.gradNorm, skipped: r.skipped };
    });
  }

  /** The loss and the gradients of the named parameters, without an optimizer step (gradient checks). */
  lossAndGradients(inputs: ModelInputs & { labels: Labels }, names: string[], options: CallOptions = {}): Promise<{ loss: number; grads: (NativeTensor | null)[] }> {
    const adapter = this.peft.adapterArg(options.adapter, 'lossAndGradients()');
    const { ids, mask, types } = this.batch(inputs, 'lossAndGradients()', adapter);
    const labels = this.labels(inputs.labels, ids, types);
    return this.enqueue(() => this.native.lossAndGradients(ids.data, ids.shape, mask, types, labels.data, labels.shape, names, adapter));
  }

  /** causal-lm: prompt + continuation per row (finished rows padded with pad/eos); seq2seq-lm: the generated decoder
   * tokens per row, without the decoder start token, up to and including EOS (rows differ in length). */
  generate(inputIds: IdsInput, options: GenerateOptions): Promise<number[][]> {
    return this.generateDetailed(inputIds, options).then((out) => out.sequences);
  }

  /** generate(), plus the chosen tokens' log-probabilities and the best alternatives with `logprobs` (causal-lm). */
  generateDetailed(inputIds: IdsInput, options: DetailedGenerateOptions): Promise<GenerateOutput> {
    if (this.task !== 'causal-lm' && this.task !== 'seq2seq-lm') throw new NodetuneError('ERR_STATE', `generate(): needs a causal-lm or seq2seq-lm model, this one is ${this.task}`);
    check(options && typeof options === 'object', 'generate(inputIds, options): options must be an object', 'options');
    checkOptionKeys(options, GENERATE_KEYS, 'generate()');
    const adapter = this.peft.adapterArg(options.adapter, 'generate()');
    const ids = this.batch({ inputIds, ...(options.attentionMask !== undefined ? { attentionMask: options.attentionMask } : {}) }, 'generate()', adapter);
    const o = options;
    check(Number.isSafeInteger(o.maxNewTokens) && o.maxNewTokens >= 0, `generate(): maxNewTokens must be a non-negative integer, got ${o.maxNewTokens}`, 'maxNewTokens');
    const { temperature, topK, topP, repetitionPenalty: rep, seed } = scalarSampling(o, 'generate()');
    const cfgEos = typeof this.config.eos_token_id === 'number' ? this.config.eos_token_id : -1;
    const eos = o.eosTokenId === null ? -1 : o.eosTokenId ?? cfgEos;
    check(Number.isSafeInteger(eos), `generate(): eosTokenId must be an integer, got ${o.eosTokenId}`, 'eosTokenId');
    const numBeams = o.numBeams ?? 1;
    check(Number.isSafeInteger(numBeams) && numBeams >= 1, `generate(): numBeams must be a positive integer, got ${o.numBeams}`, 'numBeams');
    const lengthPenalty = o.lengthPenalty ?? 1;
    check(typeof lengthPenalty === 'number' && Number.isFinite(lengthPenalty), `generate(): lengthPenalty must be a number, got ${o.lengthPenalty}`, 'lengthPenalty');
    if (numBeams > 1 && temperature > 0) throw new NodetuneError('ERR_ARGUMENT', 'generate(): beam search is greedy; use temperature 0 with numBeams > 1', { field: 'numBeams' });
    const total = ids.ids.shape[1] + o.maxNewTokens + this.peft.virtualTokens(adapter);
    if (this.resolved.family === 'gpt2' && total > this.resolved.native.maxPositions)
      throw new NodetuneError('ERR_SHAPE', `generate(): ${total} tokens exceed the model's ${this.resolved.native.maxPositions} positions`, { field: 'maxNewTokens' });
    const pad = typeof this.config.pad_token_id === 'number' ? this.config.pad_token_id : -1;
    const rows = rowSampling(o, ids.ids.shape[0]!, this.resolved.native.vocabSize);
    if (numBeams > 1) noRowSamplingFor('beam search (numBeams > 1)', rows);
    if (this.task === 'seq2seq-lm') noRowSamplingFor('a seq2seq-lm model', rows);
    return this.enqueue(async () => {
      const out = await this.native.generate(ids.ids.data, ids.ids.shape, ids.mask, {
        maxNewTokens: o.maxNewTokens, temperature, topK, topP, repetitionPenalty: rep, eosTokenId: eos, padTokenId: pad, seed, numBeams, lengthPenalty, ...rows,
      }, adapter);
      const sequences = generatedRows(out);
      const width = ids.ids.shape[1]!;
      const logprobs = out.logprobs && out.topIds && out.topLogprobs && rows.logprobs !== undefined
        ? rowLogprobs({ logprobs: out.logprobs, topIds: out.topIds, topLogprobs: out.topLogprobs }, sequences.length, rows.logprobs, sequences.map((r) => r.slice(width)), eos)
        : null;
      return { sequences, logprobs };
    });
  }

  /** A generation session over this model (continuous batching; causal-lm decoders): rows join and leave between
   * steps, each with its own sampling options; every step runs through the model's call queue. */
  /** Whether createSession() can run with this adapter (a causal-lm model, no prompt-tuning adapter). */
  canCreateSession(adapter?: string | null): boolean {
    return this.task === 'causal-lm' && this.peft.virtualTokens(adapter) === 0;
  }

  createSession(options: SessionOptions = {}): GenerationSession {
    if (this.task !== 'causal-lm') throw new NodetuneError('ERR_STATE', `createSession(): needs a causal-lm model, this one is ${this.task}`);
    check(options && typeof options === 'object', 'createSession(options): options must be an object', 'options');
    checkOptionKeys(options, CALL_KEYS, 'createSession()');
    const adapter = this.peft.adapterArg(options.adapter, 'createSession()');
    if (this.peft.virtualTokens(adapter) > 0)
      throw new NodetuneError('ERR_STATE', 'createSession(): a prompt-tuning adapter cannot run in a session (use generate())', { field: 'adapter' });
    const eos = typeof this.config.eos_token_id === 'number' ? this.config.eos_token_id : -1;
    const limit = this.resolved.family === 'gpt2' ? this.resolved.native.maxPositions : Infinity;
    return new GenerationSession(this.native, { vocabSize: this.resolved.native.vocabSize, eosTokenId: eos, maxPositions: limit, adapter,
      enqueue: (fn) => this.enqueue(fn) });
  }

  /** Which base parameters train: 'full', 'head', 'bitfit', { lastLayers }, { include, exclude } globs;
   * freshly initialised head weights always train. A configured optimizer is rebuilt over the new set. */
  setTrainable(policy: TrainablePolicy, options: TrainableOptions = {}): void {
    this.peft.setTrainable(policy, options);
  }

  /** Adds a LoRA adapter (the base freezes, except a task head); the first adapter becomes the active one. */
  addLora(options: LoraOptions, name?: string): void {
    this.peft.addLora(options, name);
  }

  /** Adds a bottleneck adapter (Houlsby: after each block's attention and MLP). */
  addAdapter(options: BottleneckOptions, name?: string): void {
    this.peft.addAdapter(options, name);
  }

  /** Adds trainable virtual-token embeddings before the tokens (the base freezes). */
  addPromptTuning(options: PromptTuningOptions, name?: string): Promise<void> {
    return this.enqueue(() => this.peft.addPromptTuning(options, name));
  }

  /** The adapter calls use when they name none (null: the base alone); only its parameters train. */
  setActiveAdapter(name: string | null): void {
    this.peft.setActiveAdapter(name);
  }

  get activeAdapter(): string | null {
    return this.peft.active;
  }

  adapterNames(): string[] {
    return [...this.peft.adapters.keys()];
  }

  deleteAdapter(name: string): void {
    this.peft.deleteAdapter(name);
  }

  /** W += scale * B A for each LoRA target (default: the active adapter). */
  mergeAdapter(name?: string): void {
    this.peft.mergeAdapter(name);
    if (this.quantized)
      process.emitWarning(`mergeAdapter(): the ${this.quantized} base weights the adapter changes were dequantized to ${this.dtype} to take the merge; ` +
        `savePretrained() writes a ${this.dtype} checkpoint (every quantized weight dequantized)`, { code: 'NODETUNE_DEQUANTIZED' });
  }

  /** Bytes held by the quantized linear weights (0 without quantize). */
  quantizedBytes(): number {
    return this.native.quantizedBytes();
  }

  unmergeAdapter(): void {
    this.peft.unmergeAdapter();
  }

  /** Trainable and total parameter counts, percent, by module (PEFT's print_trainable_parameters). */
  parameterSummary(): ParameterSummary {
    return this.peft.parameterSummary();
  }

  /** PEFT's layout: adapter_config.json + adapter_model.safetensors (default: the active adapter). */
  saveAdapter(dir: string, name?: string): Promise<void> {
    return this.enqueue(() => this.peft.saveAdapter(dir, name));
  }

  /** Loads an adapter folder (PEFT LORA / PROMPT_TUNING, nodetune BOTTLENECK) as adapter `name` (default 'default'). */
  loadAdapter(dir: string, name?: string): Promise<void> {
    return this.enqueue(() => this.peft.loadAdapter(dir, name));
  }

  /**
   * Removes transformer layers in place: dropLayers([0, 5]) drops those, dropLayers({ keepLayers }) keeps those;
   * the kept layers are renumbered 0..n-1 and config.json's layer count follows (lib/models/structure.ts).
   * A configured optimizer is reset (call configureOptimizer() again); attached adapters are an ERR_STATE.
   */
  dropLayers(spec: number[] | LayerSelection): Promise<void> {
    return this.enqueue(async () => {
      const plan = planLayers(this.resolved.raw, this.resolved.family, this.resolved.native.prefix, spec, 'dropLayers()');
      if (this.quantized)
        throw new NodetuneError('ERR_STATE', `dropLayers(): the base is quantized (${this.quantized}); load with keepLayers instead`, { field: 'quantize' });
      if (this.peft.adapters.size > 0)
        throw new NodetuneError('ERR_STATE', `dropLayers(): adapters attached (${[...this.peft.adapters.keys()].join(', ')}); delete them first (a merged LoRA: savePretrained() the merged model and load that)`, { field: 'adapters' });
      const next = reducedConfig(this.resolved, plan);
      this.native = shrinkNative(this.native, next, plan, this.device, this.dtype);
      this.resolved = next;
      this.peft = new PeftController(this.native, next, next.task, this.peft.nameOrPath, this.loadReport.newlyInitialized);
      this.optimizerConfigured = false;
      if (Object.keys(this.settings.dropout).length) this.native.setDropout(this.settings.dropout);
      if (this.settings.checkpointing) this.native.setGradientCheckpointing(true);
    });
  }

  /** Names and shapes of the parameters (Hugging Face names); `quantized` marks a weight kept as int8 / NF4. */
  parameters(): { name: string; shape: number[]; dtype: string; trainable: boolean; quantized?: 'int8' | 'nf4' }[] {
    return this.native.parameters();
  }

  /** A CPU copy of one parameter (of an adapter's table when `adapter` is given). */
  getParameter(name: string, adapter?: string): NativeTensor {
    return adapter === undefined ? this.native.getParameter(name) : this.native.getParameter(name, adapter);
  }

  /** Copies values into one parameter. */
  setParameter(name: string, value: NativeTensor): void {
    this.native.setParameter(name, value);
  }

  /** Writes config.json + model.safetensors (shards above maxShardSize bytes) in the Hugging Face layout, atomically per file. */
  savePretrained(dir: string, options: { maxShardSize?: number } = {}): Promise<void> {
    check(typeof dir === 'string' && dir.length > 0, 'savePretrained(dir): dir must be a non-empty string', 'dir');
    const maxShard = options.maxShardSize ?? 5 * 1024 ** 3;
    check(typeof maxShard === 'number' && maxShard > 0, 'savePretrained(): maxShardSize must be a positive number of bytes', 'maxShardSize');
    return this.enqueue(async () => {
      fs.mkdirSync(dir, { recursive: true });
      const prefix = `${this.resolved.native.prefix}.`;
      const tensors = this.native.parameters().map((p) => ({
        param: p.name,
        name: this.task === 'base' && p.name.startsWith(prefix) ? p.name.slice(prefix.length) : p.name,
        dtype: DTYPE_TAG[p.dtype]!,
        shape: p.shape,
      }));
      const shards: (typeof tensors)[] = [[]];
      let size = 0;
      for (const t of tensors) {
        const bytes = t.shape.reduce((a, b) => a * b, 1) * elementSize(t.dtype);
        if (size > 0 && size + bytes > maxShard) shards.push([]), (size = 0);
        shards[shards.length - 1]!.push(t);
        size += bytes;
      }
      const tmpTag = `.tmp-${process.pid}-${Date.now()}`;
      const written: [string, string][] = [];
      const weightMap: Record<string, string> = {};
      let totalSize = 0;
      try {
        for (let i = 0; i < shards.length; i++) {
          const file = shards.length === 1 ? 'model.safetensors' : `model-${String(i + 1).padStart(5, '0')}-of-${String(shards.length).padStart(5, '0')}.safetensors`;
          const header: HeaderTensor[] = shards[i]!.map((t) => ({ name: t.name, dtype: t.dtype, shape: t.shape }));
          const { header: json, dataBytes } = buildHeader(header);
          const tmp = path.join(dir, file + tmpTag);
          await this.native.save(tmp, json, shards[i]!.map((t) => t.param));
          written.push([tmp, path.join(dir, file)]);
          totalSize += dataBytes;
          for (const t of shards[i]!) weightMap[t.name] = file;
        }
        const config = { ...this.config, torch_dtype: this.dtype };
        const configTmp = path.join(dir, 'config.json' + tmpTag);
        fs.writeFileSync(configTmp, JSON.stringify(config, null, 2) + '\n');
        written.push([configTmp, path.join(dir, 'config.json')]);
        if (shards.length > 1) {
          const indexTmp = path.join(dir, 'model.safetensors.index.json' + tmpTag);
          fs.writeFileSync(indexTmp, JSON.stringify({ metadata: { total_size: totalSize }, weight_map: weightMap }, null, 2) + '\n');
          written.push([indexTmp, path.join(dir, 'model.safetensors.index.json')]);
        }
      } catch (e) {
        for (const [tmp] of written) fs.rmSync(tmp, { force: true });
        throw e;
      }
      for (const [tmp, final] of written) fs.renameSync(tmp, final);
      // Remove the other layout's index/single file, so the directory holds one checkpoint.
      if (shards.length > 1) fs.rmSync(path.join(dir, 'model.safetensors'), { force: true });
      else fs.rmSync(path.join(dir, 'model.safetensors.index.json'), { force: true });
    });
  }
}
