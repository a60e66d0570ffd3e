import { expect } from 'chai';
import { spawn } from 'child_process';
import * as path from 'path';
import * as fs from 'fs';
import { AutoModel, manualSeed } from '../lib';
import { freePort, launch, shardIndices, readDistEnv } from '../lib/distributed';
import { DP_BATCH, DP_CONFIG, DP_STEPS, dpTrainerBatches } from './dist-fixture';
import { Trainer } from '../lib/train';
import { expectClose, rejects, tempDir, throws } from './helpers';
import { maxDiff, snapshot } from './train-helpers';

/** One rank of a world, started by hand (no launcher stopping it when a peer fails). */
function rank(r: number, world: number, port: number, scenario: string, timeoutMs: number): Promise<{ code: number | null; stdout: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [worker, scenario], {
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, MASTER_ADDR: '127.0.0.1', MASTER_PORT: String(port), RANK: String(r), WORLD_SIZE: String(world), TEST_TIMEOUT_MS: String(timeoutMs) },
    });
    let stdout = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.on('close', (code) => resolve({ code, stdout }));
  });
}

const worker = path.join(__dirname, 'dist-worker.js');
const lastJson = (s: string) => JSON.parse(s.trim().split('\n').pop()!) as Record<string, unknown>;

describe('80 distributed: c10d rendezvous and collectives between processes (Gloo, loopback)', () => {
  it('two ranks all-reduce (mean and sum, several dtypes), broadcast and meet at a barrier', async () => {
    const results = await launch({ nproc: 2, args: [worker, 'collectives'], stdio: 'pipe' });
    for (const r of results) expect(r.code, r.stderr + r.stdout).to.equal(0);
    const [r0, r1] = results.map((r) => lastJson(r.stdout));
    for (const out of [r0!, r1!]) {
      expect(out.mean).to.deep.equal([1.5, 3, 3]);
      expect(out.mean64).to.deep.equal([5]);
      expect(out.sum).to.deep.equal([3]);
      expect(out.broadcast).to.deep.equal([1, 1]);
    }
  });

  it('data parallel: 2 processes x 2 rows equal 1 process x 4 rows (weights within 1e-5); one checkpoint written', async function () {
    this.timeout(120000);
    const out = tempDir('nodetune-dp-');
    const weights = `${out}/rank0`;
    const results = await launch({ nproc: 2, args: [worker, 'train'], stdio: 'pipe', env: { ...process.env, TEST_OUT_DIR: weights } });
    for (const r of results) expect(r.code, r.stderr + r.stdout).to.equal(0);
    const [l0, l1] = results.map((r) => lastJson(r.stdout).losses as number[]);
    expect(l0).to.deep.equal(l1); // the reported loss is the group's mean
    expect(fs.readdirSync(out)).to.deep.equal(['rank0']);

    manualSeed(100); // rank 0's initial weights
    const single = await AutoModel.fromConfig(DP_CONFIG);
    single.configureOptimizer({ type: 'adamw', lr: 0.01, weightDecay: 0.1 });
    const losses: number[] = [];
    for (let i = 0; i < DP_STEPS; i++) losses.push((await single.trainStep({ inputIds: DP_BATCH, labels: DP_BATCH }, { maxGradNorm: 1 })).loss);
    l0!.forEach((l, i) => expect(l).to.be.closeTo(losses[i]!, 1e-5));
    const parallel = await AutoModel.fromPretrained(weights, { quiet: true });
    let worst = 0;
    for (const p of single.parameters()) {
      const a = single.getParameter(p.name).data() as Float32Array;
      const b = parallel.getParameter(p.name).data() as Float32Array;
      for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
    }
    expect(worst).to.be.lessThan(1e-5);
  });

  it('the Trainer, data parallel: shards per rank, rank 0 alone writes; equals one process accumulating 2 micro-batches', async function () {
    this.timeout(120000);
    const out = tempDir('nodetune-dp-trainer-');
    const results = await launch({ nproc: 2, args: [worker, 'trainer'], stdio: 'pipe', env: { ...process.env, TEST_OUT_DIR: out } });
    for (const r of results) expect(r.code, r.stderr + r.stdout).to.equal(0);
    const [r0, r1] = results.map((r) => lastJson(r.stdout));
    expect(r0!.steps).to.equal(4); // 4 micro-batches / 2 ranks x 2 epochs
    expect(r0!.losses).to.deep.equal(r1!.losses);
    expect(fs.readdirSync(out).filter((f) => f.startsWith('checkpoint-')).sort()).to.deep.equal(['checkpoint-2', 'checkpoint-4']);
    expect(fs.readdirSync(out).filter((f) => f.startsWith('.tmp'))).to.deep.equal([]);
    const logged = fs.readFileSync(`${out}/metrics.jsonl`, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { step: number });
    expect(logged.map((l) => l.step)).to.deep.equal([1, 2, 3, 4]); // written once, by rank 0

    manualSeed(100);
    const single = await AutoModel.fromConfig(DP_CONFIG);
    const one = await new Trainer({
      model: single, train: dpTrainerBatches(),
      args: { outputDir: tempDir(), epochs: 2, learningRate: 0.01, optimizer: 'adamw', seed: 3, gradientAccumulationSteps: 2, report: false },
    }).train();
    (r0!.losses as number[]).forEach((l, i) => expect(l).to.be.closeTo(one.losses[i]!, 1e-5));
    const parallel = await AutoModel.fromPretrained(`${out}/checkpoint-4`, { quiet: true });
    let worst = 0;
    for (const p of single.parameters()) {
      const a = single.getParameter(p.name).data() as Float32Array;
      const b = parallel.getParameter(p.name).data() as Float32Array;
      for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
    }
    expect(worst).to.be.lessThan(1e-5);
    // A checkpoint of 2 ranks cannot be resumed by 1 process (the shards would differ).
    const e = await rejects(new Trainer({ model: await AutoModel.fromConfig(DP_CONFIG), train: dpTrainerBatches(),
      args: { outputDir: out, epochs: 2, learningRate: 0.01, optimizer: 'adamw', seed: 3, resumeFrom: `${out}/checkpoint-2` } }).train());
    expect(e.code).to.equal('ERR_STATE');
    expect(e.message).to.include('2 process(es); this run has 1');
  });

  it('the Trainer, data parallel with accumulation: windows of 2 micro-batches per rank equal one process accumulating all 4', async function () {
    this.timeout(120000);
    const out = tempDir('nodetune-dp-accumulate-');
    const results = await launch({ nproc: 2, args: [worker, 'trainer'], stdio: 'pipe', env: { ...process.env, TEST_OUT_DIR: out, TEST_ACCUMULATION: '2' } });
    for (const r of results) expect(r.code, r.stderr + r.stdout).to.equal(0);
    const [r0, r1] = results.map((r) => lastJson(r.stdout));
    expect(r0!.steps).to.equal(2); // 2 micro-batches per rank and epoch, one window
    expect(r0!.losses).to.deep.equal(r1!.losses);
    manualSeed(100);
    const single = await AutoModel.fromConfig(DP_CONFIG);
    const one = await new Trainer({ model: single, train: dpTrainerBatches(),
      args: { outputDir: tempDir(), epochs: 2, learningRate: 0.01, optimizer: 'adamw', seed: 3, gradientAccumulationSteps: 4, report: false } }).train();
    expectClose(r0!.losses as number[], one.losses, { rtol: 1e-5 }, 'losses');
    const parallel = await AutoModel.fromPretrained(`${out}/checkpoint-2`, { quiet: true });
    expect(maxDiff(snapshot(single), snapshot(parallel))).to.be.lessThan(1e-5);
  });

  it('a rank that never joins: the others fail with ERR_DIST naming it, within the timeout', async () => {
    const r0 = await rank(0, 3, await freePort(), 'collectives', 1500);
    const out = lastJson(r0.stdout);
    expect(r0.code).to.equal(1);
    expect(out.error).to.equal('ERR_DIST');
    expect(out.message).to.include('rank(s) 1, 2 did not join within 1500 ms');
    expect(out.ms as number).to.be.lessThan(6000);
  });

  it('a rank that dies mid-run: the survivor fails with ERR_DIST within the timeout, no hang', async () => {
    const port = await freePort();
    const [r0, r1] = await Promise.all([rank(0, 2, port, 'die', 3000), rank(1, 2, port, 'die', 3000)]);
    expect(r1!.code).to.equal(3);
    const out = lastJson(r0!.stdout);
    expect(r0!.code).to.equal(1);
    expect(out.error).to.equal('ERR_DIST');
    expect(out.message).to.include('rank 0 of 2: all-reduce failed');
    expect(out.ms as number).to.be.lessThan(15000);
  });

  it('launch() stops the other workers when one fails', async () => {
    const results = await launch({ nproc: 2, args: [worker, 'die'], stdio: 'pipe', graceMs: 10000, env: { ...process.env, TEST_TIMEOUT_MS: '30000' } });
    expect(results[1]!.code).to.equal(3);
    expect(results[0]!.code === 1 || results[0]!.signal === 'SIGTERM', JSON.stringify(results[0])).to.equal(true);
  });

  it('shards: disjoint per rank, together every example, reshuffled per epoch, the same on every rank', () => {
    for (const count of [10, 11, 1]) {
      const shards = [0, 1, 2].map((rank) => shardIndices(count, { rank, worldSize: 3, epoch: 1, seed: 7 }));
      const sizes = shards.map((s) => s.length);
      expect(new Set(sizes).size).to.equal(1);
      expect(new Set(shards.flat()).size).to.equal(count);
    }
    const e1 = shardIndices(20, { rank: 0, worldSize: 2, epoch: 1, seed: 7 });
    expect(shardIndices(20, { rank: 0, worldSize: 2, epoch: 1, seed: 7 })).to.deep.equal(e1);
    expect(shardIndices(20, { rank: 0, worldSize: 2, epoch: 2, seed: 7 })).to.not.deep.equal(e1);
  });

  it('the torchrun environment is validated with the variable named', () => {
    expect(readDistEnv({ MASTER_ADDR: 'h', MASTER_PORT: '29500', RANK: '1', WORLD_SIZE: '2' })).to.deep.equal({ masterAddr: 'h', masterPort: 29500, rank: 1, worldSize: 2, localRank: 1 });
    expect(throws(() => readDistEnv({ MASTER_ADDR: 'h', MASTER_PORT: '29500', RANK: '2', WORLD_SIZE: '2' })).message).to.include('RANK=2');
    expect(throws(() => readDistEnv({ MASTER_PORT: '29500', RANK: '0', WORLD_SIZE: '2' })).message).to.include('MASTER_ADDR');
    expect(throws(() => readDistEnv({ MASTER_ADDR: 'h', MASTER_PORT: 'x', RANK: '0', WORLD_SIZE: '2' })).code).to.equal('ERR_CONFIG');
  });
});
