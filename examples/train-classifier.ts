/**
 * Fine-tunes a sequence classifier with the Trainer: `node dist/examples/train-classifier.js [modelDir] [outDir]`.
 * Without arguments it uses the tiny Mistral classification fixture of the tests and made-up token data (label =
 * first token mod 3), so it runs anywhere in seconds; the report lands in <outDir>/report.html.
 */
import * as os from 'os';
import * as path from 'path';
import { AutoModel } from '../lib/models';
import { Trainer } from '../lib/train';
import { Rng } from '../lib/data/random';

async function main(): Promise<void> {
  const modelDir = process.argv[2] ?? path.join(__dirname, '..', '..', 'test', 'fixtures', 'models', 'mistral-cls');
  const outDir = process.argv[3] ?? path.join(os.tmpdir(), 'nodetune-example-classifier');
  const model = await AutoModel.fromPretrained(modelDir, { quiet: true });
  const rng = new Rng(0);
  const features = Array.from({ length: 96 }, () => {
    const inputIds = Array.from({ length: 3 + rng.int(5) }, () => 1 + rng.int(31));
    return { inputIds, label: inputIds[0]! % 3 };
  });
  const trainer = new Trainer({
    model, train: features.slice(0, 64), validation: features.slice(64, 80), test: features.slice(80),
    args: { outputDir: outDir, epochs: 6, batchSize: 8, learningRate: 3e-3, lrScheduler: 'cosine', warmupRatio: 0.1,
      evalStrategy: 'epoch', saveStrategy: 'epoch', saveTotalLimit: 2, metricForBestModel: 'accuracy', loadBestAtEnd: true, loggingSteps: 4 },
  });
  trainer.on('log', (e) => console.log(`step ${e.step}  loss ${e.loss.toFixed(4)}  lr ${e.lr.toExponential(2)}  ${e.tokensPerSecond.toFixed(0)} tok/s  eta ${e.etaSeconds.toFixed(1)}s`));
  trainer.on('evaluate', (e) => console.log(`${e.split} @${e.step}: loss ${e.metrics.loss!.toFixed(4)}  accuracy ${e.metrics.accuracy!.toFixed(3)}  macro-F1 ${e.metrics.macroF1!.toFixed(3)}`));
  const result = await trainer.train();
  console.log(`done (${result.reason}) after ${result.globalStep} steps; best accuracy ${result.bestMetric} at ${result.bestCheckpoint}; report: ${result.report}`);
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
