/** The Trainer's evaluation: mean loss and the task's metrics on a split, predictions, the monitored metric. */
import { NodetuneError } from '../errors';
import type { ForwardOutput } from '../models';
import type { ResolvedArgs } from './args';
import { EpochData, ModelTask, TrainData, modelInputs } from './data';
import { MetricAccumulator, argmax, bestSpan } from './evaluate';
import { generationEval, seq2seqLoss } from './generate-eval';
import type { DecodingTokenizer } from './generate-eval';
import type { Prediction, TrainerModel } from './trainer-types';

/** What evaluation needs of a Trainer. */
export interface EvalContext {
  model: TrainerModel;
  task: ModelTask;
  args: ResolvedArgs;
  decoder: DecodingTokenizer | null;
  padTokenId: number;
  tokenTypes: boolean;
}

/** Mean loss and the task's metrics on one split's data (Trainer.evaluate). */
export async function evaluateData(ctx: EvalContext, data: EpochData, split: 'validation' | 'test'): Promise<{ metrics: Record<string, number>; confusion?: number[][] }> {
  const { model, task, args } = ctx;
  const id2label = (model.config.id2label as Record<string, string> | undefined) ?? null;
  const numLabels = id2label ? Object.keys(id2label).length : typeof model.config.num_labels === 'number' ? model.config.num_labels : undefined;
  const acc = new MetricAccumulator(task, id2label, numLabels ?? 0);
  let i = 0;
  const gen = async (metrics: Record<string, number>): Promise<Record<string, number>> => !args.predictWithGenerate ? metrics : {
    ...metrics, ...(await generationEval(model, ctx.decoder!, data.epoch(0, 0, false),
      { maxNewTokens: args.generationMaxNewTokens, numBeams: args.generationNumBeams, padTokenId: ctx.padTokenId, where: `evaluate('${split}')` })),
  };
  if (task === 'seq2seq-lm') {
    let lossSum = 0, count = 0, correct = 0;
    for await (const batch of data.epoch(0, 0, false)) {
      const r = await seq2seqLoss(model, batch, `evaluate('${split}') batch ${i++}`);
      lossSum += r.lossSum, count += r.count, correct += r.correct;
    }
    if (count === 0) throw new NodetuneError('ERR_DATA', `evaluate('${split}'): no target tokens`, { field: 'labels' });
    return { metrics: await gen({ loss: lossSum / count, perplexity: Math.exp(lossSum / count), tokenAccuracy: correct / count }) };
  }
  for await (const batch of data.epoch(0, 0, false)) {
    const inputs = modelInputs(batch, task, ctx.tokenTypes);
    const out = await model.forward({ inputIds: inputs.inputIds, attentionMask: inputs.attentionMask, ...(inputs.tokenTypeIds ? { tokenTypeIds: inputs.tokenTypeIds } : {}) });
    acc.add(batch, out.logits, out.shape, `evaluate('${split}') batch ${i++}`);
  }
  const result = acc.result();
  return { ...result, metrics: await gen(result.metrics) };
}

/** Logits and argmax predictions for data without labels (Trainer.predict). */
export async function predictData(ctx: EvalContext, data: TrainData): Promise<Prediction> {
  const { model, task } = ctx;
  const src = new EpochData('predict', data, { batchSize: ctx.args.batchSize, padTokenId: ctx.padTokenId, seed: 0, shuffle: false });
  const outputs: ForwardOutput[] = [];
  const predictions: number[][] = [];
  for await (const batch of src.epoch(0, 0, false)) {
    const inputs = modelInputs(batch, task, ctx.tokenTypes);
    const out = await model.forward({ inputIds: inputs.inputIds, attentionMask: inputs.attentionMask, ...(inputs.tokenTypeIds ? { tokenTypeIds: inputs.tokenTypeIds } : {}) });
    outputs.push(out);
    const [b, t] = batch.shape;
    const n = out.shape[out.shape.length - 1]!;
    for (let i = 0; i < b; i++) {
      if (task === 'sequence-classification') predictions.push([argmax(out.logits, i * n, n)]);
      else if (task === 'question-answering') {
        const start = new Float32Array(t), end = new Float32Array(t);
        for (let p = 0; p < t; p++) (start[p] = out.logits[(i * t + p) * 2]!), (end[p] = out.logits[(i * t + p) * 2 + 1]!);
        predictions.push(bestSpan(start, end));
      } else predictions.push(Array.from({ length: t }, (_, p) => argmax(out.logits, (i * t + p) * n, n)));
    }
  }
  return { outputs, predictions };
}

/** The value of TrainingArgs.metricForBestModel among a validation's metrics. */
export function monitoredValue(metricForBestModel: string, metrics: Record<string, number>): number {
  const name = metricForBestModel.replace(/^eval_/, '');
  const v = metrics[name];
  if (v === undefined)
    throw new NodetuneError('ERR_CONFIG', `TrainingArgs.metricForBestModel: '${name}' is not among this task's metrics (${Object.keys(metrics).join(', ')})`, { field: 'metricForBestModel' });
  return v;
}
