/**
 * The Trainer: epochs or max steps over micro-batches, one native trainStep per optimizer step with the lr from the
 * schedule, validation every N steps or each epoch, early stopping and best-checkpoint restore, atomic checkpoints,
 * JSONL metrics, an HTML report, typed events (EventEmitter and async iterator) and an AbortSignal.
 */
import { checkOptionKeys } from '../util/options';
import { TRAINER_KEYS } from '../util/option-keys';
import * as path from 'path';
import { NodetuneError } from '../errors';
import type { Batch } from '../data/batch';
import type { TrainBatch } from '../models';
import { manualSeed } from '../rng';
import type { Communicator } from '../distributed/communicator';
import { ResolvedArgs, TrainingArgs, resolveArgs } from './args';
import { LogRecord, TrainerState, rotateCheckpoints, SaveHooks } from './checkpoint';
import { EarlyStopping } from './early-stopping';
import { EvaluateEvent, TrainerEmitter } from './events';
import { EpochData, ModelTask, TrainData, countTokens, modelInputs } from './data';
import { JsonlLogger } from './logger';
import { writeReport } from './report';
import { TensorBoardWriter } from './tensorboard';
import type { DecodingTokenizer } from './generate-eval';
import { mlmTrainData } from './mlm';
import { ReduceLROnPlateau, Schedule } from './schedules';
import type { Prediction, TrainerModel, TrainerOptions, TrainResult } from './trainer-types';
import { EvalContext, evaluateData, monitoredValue, predictData } from './trainer-eval';
import { loadWeights, restoreCheckpoint, savesState, writeCheckpoint } from './trainer-checkpoint';
import { applyModelArgs, planRun } from './trainer-setup';

export type { Prediction, TrainerModel, TrainerOptions, TrainResult } from './trainer-types';

/** The loop (this file), evaluation (trainer-eval.ts) and checkpoints (trainer-checkpoint.ts). */
export class Trainer extends TrainerEmitter {
  readonly model: TrainerModel;
  readonly args: ResolvedArgs;
  private readonly userArgs: TrainingArgs;
  private readonly task: ModelTask;
  private readonly padTokenId: number;
  private readonly decoder: DecodingTokenizer | null;
  private readonly data: { train: EpochData; validation: EpochData | null; test: EpochData | null };
  private readonly saveHooks: SaveHooks;
  private readonly logger: JsonlLogger;
  private running = false;
  private tensorboard: TensorBoardWriter | null = null;
  // run state
  private globalStep = 0;
  private epochIndex = 0;
  private batchInEpoch = 0;
  private history: LogRecord[] = [];
  private losses: number[] = [];
  private schedule!: Schedule;
  private plateau: ReduceLROnPlateau | null = null;
  private tracker!: EarlyStopping;
  private bestCheckpoint: string | null = null;
  private stopReason: 'completed' | 'earlyStop' | 'aborted' = 'completed';
  private readonly communicator: Communicator | null;
  /** Whether the model embeds token types (config.json's type_vocab_size > 0). */
  private readonly tokenTypes: boolean;
  /** Updates dropped for a NaN/Inf loss or gradient (onNonFinite: 'skip'). */
  private skippedSteps = 0;

  /** Rank 0, or the only process: the one that writes logs, checkpoints and reports. */
  private get isMain(): boolean {
    return this.communicator === null || this.communicator.rank === 0;
  }

  constructor(options: TrainerOptions) {
    super();
    if (!options || typeof options !== 'object') throw new NodetuneError('ERR_ARGUMENT', 'new Trainer({ model, train, args, ... }): options must be an object', { field: 'options' });
    checkOptionKeys(options, TRAINER_KEYS, 'new Trainer()');
    const m = options.model;
    for (const fn of ['forward', 'trainStep', 'configureOptimizer', 'savePretrained', 'parameters', 'getParameter', 'setParameter'] as const)
      if (!m || typeof m[fn] !== 'function') throw new NodetuneError('ERR_ARGUMENT', `new Trainer(): model must be a loaded Model (missing ${fn}())`, { field: 'model' });
    if (m.task === 'base') throw new NodetuneError('ERR_STATE', 'new Trainer(): a base model has no loss to train; load it with a task', { field: 'model' });
    this.model = m;
    this.task = m.task as ModelTask;
    this.userArgs = options.args;
    this.args = resolveArgs(options.args, options.validation !== undefined);
    this.decoder = options.tokenizer && typeof options.tokenizer.decode === 'function' ? options.tokenizer as DecodingTokenizer : null;
    if (this.args.predictWithGenerate && (this.decoder === null || typeof m.generate !== 'function'))
      throw new NodetuneError('ERR_ARGUMENT', `TrainingArgs.predictWithGenerate: needs ${this.decoder === null ? 'a tokenizer (to decode the generated text)' : 'a model with generate()'}`, { field: 'predictWithGenerate' });
    const cfgPad = m.config.pad_token_id;
    this.padTokenId = typeof cfgPad === 'number' ? cfgPad : options.tokenizer ? options.tokenizer.requireTokenId('pad', 'collating training features') : 0;
    const mlm = this.task === 'masked-lm' && options.mlm !== false ? { mlm: mlmTrainData(options.mlm, options.tokenizer) } : {};
    const dataOpts = { batchSize: this.args.batchSize, padTokenId: this.padTokenId, seed: this.args.seed, ...mlm };
    this.communicator = options.communicator ?? null;
    this.tokenTypes = typeof m.config.type_vocab_size === 'number' && m.config.type_vocab_size > 0;
    const shard = this.communicator ? { rank: this.communicator.rank, worldSize: this.communicator.worldSize } : {};
    this.data = {
      train: new EpochData('train', options.train, { ...dataOpts, shuffle: this.args.shuffle, ...shard }),
      validation: options.validation === undefined ? null : new EpochData('validation', options.validation, { ...dataOpts, shuffle: false }),
      test: options.test === undefined ? null : new EpochData('test', options.test, { ...dataOpts, shuffle: false }),
    };
    this.saveHooks = options.saveHooks ?? {};
    this.logger = new JsonlLogger(path.join(this.args.outputDir, 'metrics.jsonl'));
  }

  /** Mean loss and the task's metrics on a split. */
  async evaluate(split: 'validation' | 'test' = 'validation'): Promise<{ metrics: Record<string, number>; confusion?: number[][] }> {
    const data = this.data[split];
    if (!data) throw new NodetuneError('ERR_STATE', `evaluate('${split}'): no ${split} data were given to the Trainer`, { field: split });
    this.send('evaluateStart', { step: this.globalStep, split });
    return evaluateData(this.evalContext(), data, split);
  }

  /** Logits and argmax predictions for data without labels. */
  async predict(data: TrainData): Promise<Prediction> {
    return predictData(this.evalContext(), data);
  }

  private evalContext(): EvalContext {
    return { model: this.model, task: this.task, args: this.args, decoder: this.decoder, padTokenId: this.padTokenId, tokenTypes: this.tokenTypes };
  }

  private lrAt(step: number): number {
    const base = this.args.learningRate;
    const scale = this.plateau && base > 0 ? this.plateau.lr / base : 1;
    return this.schedule.lr(step) * scale;
  }

  private epochFloat(): number {
    const n = this.data.train.length;
    return n ? this.epochIndex + this.batchInEpoch / n : this.epochIndex;
  }

  private record(r: LogRecord): void {
    this.history.push(r);
    if (!this.isMain) return;
    this.logger.append(r);
    if (this.tensorboard) {
      const scalars: Record<string, number | null | undefined> = {};
      for (const [k, v] of Object.entries(r)) {
        if (k === 'step' || typeof v !== 'number') continue;
        scalars[k.startsWith('eval_') ? `eval/${k.slice(5)}` : k.startsWith('test_') ? `test/${k.slice(5)}` : `train/${k}`] = v;
      }
      this.tensorboard.scalars(r.step, scalars);
    }
  }

  private state(): TrainerState {
    return {
      version: 1, globalStep: this.globalStep, epoch: this.epochFloat(), epochIndex: this.epochIndex, batchInEpoch: this.batchInEpoch,
      seed: this.args.seed, totalSteps: this.schedule.totalSteps, bestMetric: this.tracker.best, bestCheckpoint: this.bestCheckpoint,
      logHistory: this.history, plateau: this.plateau ? this.plateau.toJSON() : null, earlyStopping: this.tracker.toJSON(),
      optimizer: { type: this.args.optimizer, momentum: this.args.momentum, stateSaved: savesState(this.model) },
      worldSize: this.communicator ? this.communicator.worldSize : 1,
      ...(typeof this.model.lossScalerState === 'function' ? { lossScaler: this.model.lossScalerState() } : {}),
      args: { ...(this.userArgs as unknown as Record<string, unknown>) },
    };
  }

  private async save(): Promise<void> {
    const dir = await writeCheckpoint(this.model, this.args.outputDir, this.globalStep, this.isMain ? this.state() : null, this.saveHooks);
    if (this.tracker.bestStep === this.globalStep) this.bestCheckpoint = dir;
    const deleted = this.isMain && this.args.saveTotalLimit !== null ? rotateCheckpoints(this.args.outputDir, this.args.saveTotalLimit, this.bestCheckpoint) : [];
    if (this.communicator) await this.communicator.barrier();
    this.send('checkpoint', { step: this.globalStep, dir, deleted });
  }

  /** Validation during training: log, plateau, best tracking, early stopping. Returns true when training should stop. */
  private async validate(): Promise<boolean> {
    const { metrics, confusion } = await this.evaluate('validation');
    const rec: LogRecord = { step: this.globalStep, epoch: this.epochFloat() };
    for (const [k, v] of Object.entries(metrics)) rec[`eval_${k}`] = v;
    this.record(rec);
    const ev: EvaluateEvent = { step: this.globalStep, epoch: this.epochFloat(), split: 'validation', metrics };
    if (confusion) ev.confusion = confusion;
    this.send('evaluate', ev);
    const value = monitoredValue(this.args.metricForBestModel, metrics);
    this.plateau?.step(value);
    const { stop } = this.tracker.update(value, this.globalStep);
    if (stop && this.args.earlyStoppingPatience !== null) {
      this.send('earlyStop', { step: this.globalStep, metric: this.args.metricForBestModel, best: this.tracker.best!, bestStep: this.tracker.bestStep! });
      return true;
    }
    return false;
  }

  private setup(): void {
    const a = this.args;
    // Like transformers' set_seed: dropout masks repeat for the same seed (resume restores the saved state).
    manualSeed(a.seed);
    this.skippedSteps = 0;
    applyModelArgs(this.model, a);
    // a second train() on the same Trainer starts a new run from the model's current weights
    this.globalStep = 0, this.epochIndex = 0, this.batchInEpoch = 0;
    this.history = [], this.losses = [], this.bestCheckpoint = null, this.stopReason = 'completed';
    ({ schedule: this.schedule, plateau: this.plateau, tracker: this.tracker } = planRun(a, this.data.train.length));
    this.model.configureOptimizer({ type: a.optimizer, lr: a.learningRate, betas: [a.adamBeta1, a.adamBeta2], eps: a.adamEpsilon, weightDecay: a.weightDecay, momentum: a.momentum });
  }

  private async resume(from: string): Promise<void> {
    const a = this.args;
    const s = await restoreCheckpoint(this.model, this.task, a, from, this.communicator ? this.communicator.worldSize : 1, this.schedule.totalSteps);
    this.globalStep = s.globalStep;
    this.epochIndex = s.epochIndex;
    this.batchInEpoch = s.batchInEpoch;
    this.history = s.logHistory;
    this.bestCheckpoint = s.bestCheckpoint;
    if (s.plateau && this.plateau) this.plateau = ReduceLROnPlateau.fromJSON(s.plateau as never, { mode: a.greaterIsBetter ? 'max' : 'min', ...a.reduceOnPlateau });
    if (s.earlyStopping) this.tracker = EarlyStopping.fromJSON(s.earlyStopping as never, { patience: this.tracker.patience, minDelta: this.tracker.minDelta, mode: this.tracker.mode });
  }

  /** Runs the training; resolves when it completes, stops early or is aborted (after a checkpoint). */
  async train(options: { signal?: AbortSignal } = {}): Promise<TrainResult> {
    if (this.running) throw new NodetuneError('ERR_STATE', 'train(): this Trainer is already training');
    this.running = true;
    try {
      return await this.run(options.signal);
    } catch (e) {
      this.failIterators(e as Error);
      throw e;
    } finally {
      this.running = false;
    }
  }

  private async run(signal: AbortSignal | undefined): Promise<TrainResult> {
    const a = this.args;
    this.setup();
    if (a.resumeFrom !== null) await this.resume(a.resumeFrom);
    if (this.isMain) this.logger.reset(this.history);
    if (a.tensorboard && this.isMain) this.tensorboard = new TensorBoardWriter(path.join(a.outputDir, 'tensorboard'));
    const total = this.schedule.totalSteps;
    const started = Date.now();
    const startStep = this.globalStep;
    let tokens = 0;
    let windowLosses: number[] = [];
    let stop = false;

    const step = async (window: Batch[], first: number): Promise<void> => {
      const where = `epoch ${this.epochIndex}, micro-batch${window.length > 1 ? 'es' : ''} ${first}${window.length > 1 ? `-${first + window.length - 1}` : ''}`;
      // The window goes to the model as its micro-batches: one optimizer step, one micro-batch in memory at a time.
      const micro = window.map((b, k): TrainBatch => {
        const inputs = modelInputs(b, this.task, this.tokenTypes);
        if (inputs.labels === null) throw new NodetuneError('ERR_DATA', `train: epoch ${this.epochIndex}, micro-batch ${first + k} has no labels`, { field: 'labels' });
        return { ...inputs, labels: inputs.labels };
      });
      const lr = this.lrAt(this.globalStep);
      const r = await this.model.trainStep(micro.length === 1 ? micro[0]! : micro, { lr, ...(a.maxGradNorm !== null ? { maxGradNorm: a.maxGradNorm } : {}),
        ...(this.communicator ? { communicator: this.communicator } : {}), ...(a.onNonFinite === 'skip' ? { skipNonFinite: true } : {}),
        ...(a.precision !== 'fp32' ? { precision: a.precision } : {}) });
      const gradNorm = typeof r.gradNorm === 'number' ? r.gradNorm : null;
      const n = this.globalStep + 1;
      if (r.skipped === true) this.skippedSteps += 1;
      else if (!Number.isFinite(r.loss) || (gradNorm !== null && !Number.isFinite(gradNorm)))
        throw new NodetuneError('ERR_STATE', `training diverged at step ${n} (${where}): the ${Number.isFinite(r.loss) ? `gradient norm is ${gradNorm}` : `loss is ${r.loss}`}; ` +
          'training stops rather than continue from non-finite weights (lower learningRate, set maxGradNorm, or resume from the last checkpoint)', { step: n });
      this.globalStep = n;
      this.losses.push(r.loss);
      windowLosses.push(r.loss);
      const windowTokens = window.reduce((n, b) => n + countTokens(b), 0);
      tokens += windowTokens;
      const seconds = Math.max((Date.now() - started) / 1000, 1e-6);
      const tokensPerSecond = tokens / seconds;
      const etaSeconds = ((total - n) * seconds) / (n - startStep);
      this.send('step', { step: n, epoch: this.epochFloat(), loss: r.loss, lr, gradNorm, tokens: windowTokens, tokensPerSecond, etaSeconds });
      if (n % a.loggingSteps === 0) {
        const loss = windowLosses.reduce((x, y) => x + y, 0) / windowLosses.length;
        windowLosses = [];
        this.record({ step: n, epoch: this.epochFloat(), loss, lr, gradNorm, tokensPerSecond, etaSeconds });
        this.send('log', { step: n, epoch: this.epochFloat(), loss, lr, gradNorm, tokensPerSecond, etaSeconds });
      }
      if (a.evalStrategy === 'steps' && n % a.evalSteps === 0 && (await this.validate())) (stop = true), (this.stopReason = 'earlyStop');
      if (signal?.aborted) {
        this.stopReason = 'aborted';
        stop = true;
        await this.save();
        return;
      }
      if (a.saveStrategy === 'steps' && n % a.saveSteps === 0) await this.save();
      if (n >= total) stop = true;
    };

    if (this.globalStep >= total) stop = true;
    while (!stop) {
      const skip = this.batchInEpoch;
      let window: Batch[] = [];
      let first = skip;
      let seen = 0;
      for await (const b of this.data.train.epoch(this.epochIndex, skip)) {
        window.push(b);
        seen += 1;
        this.batchInEpoch += 1;
        if (window.length === a.gradientAccumulationSteps) {
          await step(window, first);
          window = [];
          first = this.batchInEpoch;
          if (stop) break;
        }
      }
      if (!stop && window.length > 0) await step(window, first);
      if (seen === 0 && skip === 0) throw new NodetuneError('ERR_DATA', `train: epoch ${this.epochIndex} produced no batches`, { field: 'train' });
      if (this.stopReason !== 'completed') break;
      // the end of an epoch (or of the run, mid-epoch at maxSteps)
      const epochDone = this.data.train.length === null || this.batchInEpoch >= this.data.train.length;
      if (epochDone) {
        this.epochIndex += 1;
        this.batchInEpoch = 0;
      }
      if (a.evalStrategy === 'epoch' && (await this.validate())) (stop = true), (this.stopReason = 'earlyStop');
      if (a.saveStrategy === 'epoch') await this.save();
      if (signal?.aborted && this.stopReason === 'completed') (this.stopReason = 'aborted'), (stop = true), await this.save();
      if (this.globalStep >= total) stop = true;
    }
    return this.finish();
  }

  private async finish(): Promise<TrainResult> {
    const a = this.args;
    let restoredBest = false;
    if (a.loadBestAtEnd && this.bestCheckpoint !== null && this.stopReason !== 'aborted') {
      await loadWeights(this.model, this.task, this.bestCheckpoint);
      restoredBest = true;
    }
    let testMetrics: Record<string, number> | null = null;
    if (this.data.test && this.stopReason !== 'aborted') {
      const { metrics, confusion } = await this.evaluate('test');
      testMetrics = metrics;
      const rec: LogRecord = { step: this.globalStep, epoch: this.epochFloat() };
      for (const [k, v] of Object.entries(metrics)) rec[`test_${k}`] = v;
      this.record(rec);
      const ev: EvaluateEvent = { step: this.globalStep, epoch: this.epochFloat(), split: 'test', metrics };
      if (confusion) ev.confusion = confusion;
      this.send('evaluate', ev);
    }
    let report: string | null = null;
    if (a.report && this.isMain) {
      const summary: Record<string, string | number | null> = {
        task: this.task, steps: this.globalStep, epochs: Number(this.epochFloat().toFixed(3)), stopped: this.stopReason,
        optimizer: a.optimizer, 'learning rate': a.learningRate, schedule: a.lrScheduler, [`best ${a.metricForBestModel}`]: this.tracker.best,
        'best checkpoint': this.bestCheckpoint && path.basename(this.bestCheckpoint),
      };
      if (testMetrics) for (const [k, v] of Object.entries(testMetrics)) summary[`test ${k}`] = v;
      report = writeReport(path.join(a.outputDir, 'report.html'), this.history, { title: `nodetune training report (${this.task})`, summary,
        best: this.tracker.bestStep === null ? null : { metric: a.metricForBestModel.replace(/^eval_/, ''), step: this.tracker.bestStep } }).html;
    }
    const result: TrainResult = {
      globalStep: this.globalStep, epoch: this.epochFloat(), reason: this.stopReason, losses: this.losses,
      bestMetric: this.tracker.best, bestCheckpoint: this.bestCheckpoint, testMetrics, report, skippedSteps: this.skippedSteps,
    };
    this.send('end', { step: this.globalStep, epoch: this.epochFloat(), reason: this.stopReason, bestMetric: this.tracker.best,
      bestCheckpoint: this.bestCheckpoint, restoredBest, testMetrics, report });
    return result;
  }
}
