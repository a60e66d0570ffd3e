/**
 * A worker of the distributed tests (test/80): started by launch() with the torchrun variables.
 *   node dist/test/dist-worker.js <scenario>
 */
import { Communicator, syncParameters } from '../lib/distributed';
import { AutoModel, manualSeed, Tensor } from '../lib';
import { DP_BATCH, DP_CONFIG, DP_STEPS, dpTrainerBatches } from './dist-fixture';
import { Trainer } from '../lib/train';

async function main(): Promise<void> {
  const scenario = process.argv[2];
  const timeoutMs = Number(process.env.TEST_TIMEOUT_MS ?? 5000);
  const started = Date.now();
  try {
    const comm = await Communicator.fromEnv({ timeoutMs });
    const r = comm.rank;
    if (scenario === 'collectives') {
      const a = Tensor.from(new Float32Array([r + 1, 2 * (r + 1), 3]), { shape: [3] });
      const b = Tensor.from(new Float64Array([10 * r]), { shape: [1] });
      await comm.allReduce([a, b]);
      const s = Tensor.from(new Int32Array([r + 1]), { shape: [1] });
      await comm.allReduce([s], 'sum');
      const c = Tensor.from(new Float32Array([r, r]), { shape: [2] });
      await comm.broadcast([c], 1);
      await comm.barrier();
      console.log(JSON.stringify({ rank: r, mean: Array.from(a.data() as Float32Array), mean64: Array.from(b.data() as Float64Array),
        sum: Array.from(s.data() as Int32Array), broadcast: Array.from(c.data() as Float32Array) }));
    } else if (scenario === 'train') {
      manualSeed(100 + r); // different initial weights per rank: syncParameters must make them equal
      const model = await AutoModel.fromConfig(DP_CONFIG);
      await syncParameters(model, comm);
      model.configureOptimizer({ type: 'adamw', lr: 0.01, weightDecay: 0.1 });
      const rows = DP_BATCH.length / comm.worldSize;
      const mine = DP_BATCH.slice(r * rows, (r + 1) * rows);
      const losses: number[] = [];
      for (let i = 0; i < DP_STEPS; i++) losses.push((await model.trainStep({ inputIds: mine, labels: mine }, { maxGradNorm: 1, communicator: comm })).loss);
      if (r === 0) await model.savePretrained(process.env.TEST_OUT_DIR!); // one rank writes
      await comm.barrier();
      console.log(JSON.stringify({ rank: r, losses }));
    } else if (scenario === 'trainer') {
      manualSeed(100 + r);
      const model = await AutoModel.fromConfig(DP_CONFIG);
      await syncParameters(model, comm);
      const trainer = new Trainer({
        model, train: dpTrainerBatches(), communicator: comm,
        args: { outputDir: process.env.TEST_OUT_DIR!, epochs: 2, learningRate: 0.01, optimizer: 'adamw', seed: 3, saveStrategy: 'steps', saveSteps: 2, report: r === 0, loggingSteps: 1,
          gradientAccumulationSteps: Number(process.env.TEST_ACCUMULATION ?? 1) },
      });
      const result = await trainer.train();
      console.log(JSON.stringify({ rank: r, losses: result.losses, steps: result.globalStep }));
    } else if (scenario === 'die') {
      if (r === 1) process.exit(3); // dies right after joining
      await new Promise((res) => setTimeout(res, 300));
      await comm.allReduce([Tensor.from(new Float32Array(1000), { shape: [1000] })]);
      console.log(JSON.stringify({ rank: r, unexpected: 'all-reduce completed' }));
    }
  } catch (e) {
    const err = e as Error & { code?: string };
    console.log(JSON.stringify({ error: err.code, message: err.message, ms: Date.now() - started }));
    process.exitCode = 1;
  }
}

void main();
