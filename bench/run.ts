/**
 * `npm run bench [-- --quick] [--no-real-size | --only-real-size] [--out FILE]`: every performance figure nodetune claims, measured side by side
 * in one run. Results go to stdout as a table and to FILE (default bench-results.json) as JSON.
 *
 * - the machine's fp32 matmul peak (the yardstick for achieved FLOP/s)
 * - training step (forward + backward + AdamW) for GPT-2- and Llama-shaped models: median step time,
 *   tokens/s, achieved FLOP/s (6 x parameters x tokens), peak RSS, model load time — nodetune, and PyTorch
 *   eager from Python on the same LibTorch when `/usr/bin/python3 -c 'import torch'` works, interleaved
 *   round by round, at PyTorch's default threads and at nodetune's
 * - real-size steps (bench/real-size.ts): Qwen2.5-0.5B and Llama-3.2-1B shapes, LoRA r 16 on every linear layer
 *   in bf16 and fp32, full fine-tuning of the 0.5B shape in bf16 mixed precision, against PyTorch eager; step time,
 *   tokens/s, share of the bf16 (or fp32) matmul peak of this run, peak RSS (`--quick`: the 0.5B LoRA bf16 case)
 * - generation tokens/s with the KV cache, batch 1 and 8
 * - tokenization + collation throughput (bench/tokenize.ts)
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { measureMatmul, runtimeInfo } from '../lib';
import { measureMatmulInFreshProcess } from '../lib/runtime';
import { ompSpinSetByNodetune } from '../lib/threads';
import { launch } from '../lib/distributed';
import { BenchShape, configFor, writeRandomCheckpoint } from './random-checkpoint';
import { benchRealSize } from './real-size';

interface ChildResult {
  loadMs: number;
  params: number;
  times: number[];
  losses: number[];
  peakRssKb: number;
  rssAfterLoadKb: number;
  threads?: number;
  trainable?: number;
}

const root = path.resolve(__dirname, '..', '..');
const quick = process.argv.includes('--quick');
const outIndex = process.argv.indexOf('--out');
const outFile = path.resolve(outIndex >= 0 ? process.argv[outIndex + 1]! : 'bench-results.json');
const PYTHON = process.env.NODETUNE_BENCH_PYTHON ?? '/usr/bin/python3';

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

function randomBatch(batch: number, seq: number, vocab: number, seed: number): number[][] {
  let state = seed >>> 0 || 1;
  const next = () => ((state = (Math.imul(state, 1664525) + 1013904223) >>> 0) % vocab);
  return Array.from({ length: batch }, () => Array.from({ length: seq }, next));
}

// PyTorch's children run with OpenMP's own wait policy: the GOMP_SPINCOUNT that nodetune sets at load (lib/threads.ts)
// is nodetune's setting, not PyTorch's default. OPENBLAS_CORETYPE stays: the same BLAS kernel on both sides.
function childEnv(cmd: string): NodeJS.ProcessEnv {
  if (cmd !== PYTHON || !ompSpinSetByNodetune()) return process.env;
  const env = { ...process.env };
  delete env.GOMP_SPINCOUNT;
  return env;
}

function runChild(cmd: string, args: string[], env: NodeJS.ProcessEnv = childEnv(cmd)): ChildResult {
  const r = spawnSync(cmd, args, { encoding: 'utf8', env, maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`${cmd} ${args[0]} failed (${r.status}): ${r.stderr.slice(-2000)}`);
  const line = r.stdout.trim().split('\n').pop()!;
  return JSON.parse(line) as ChildResult;
}

function pythonTorch(): boolean {
  const r = spawnSync(PYTHON, ['-c', 'import torch'], { encoding: 'utf8' });
  return r.status === 0;
}

async function main(): Promise<void> {
  const info = runtimeInfo();
  const results: Record<string, unknown> = { date: new Date().toISOString(), quick, machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model }, runtime: info };
  const peak = await measureMatmul(1024, quick ? 10 : 40);
  results.matmulPeakGflops = peak;
  const kernel = info.blas.kernel ? `, ${info.blas.kernel} kernel (${info.blas.kernelSetBy === 'user' ? 'OPENBLAS_CORETYPE set by you' : info.blas.kernelSetBy === 'nodetune' ? 'chosen by nodetune' : "OpenBLAS's choice"})` : '';
  console.log(`CPU: ${info.cpu.model || 'unknown'}, ${os.cpus().length} thread(s); AVX-512 ${info.cpu.avx512 ? 'yes' : 'no'}, fast bf16 ${info.cpu.fastBf16 ? 'yes' : 'no'} (AVX512-BF16 ${info.cpu.avx512Bf16 ? 'yes' : 'no'}, AMX ${info.cpu.amxBf16 ? 'yes' : 'no'})`);
  console.log(`fp32 matmul peak: ${peak.toFixed(1)} GFLOP/s (1024x1024, LibTorch + ${info.blas.name}${kernel})`);
  if (info.blas.kernel && info.blas.kernelSetBy === 'nodetune') {
    const own = measureMatmulInFreshProcess({ OPENBLAS_CORETYPE: undefined, NODETUNE_BLAS_KERNEL: 'off' });
    results.matmulOpenblasOwnChoiceGflops = own ?? null;
    console.log(`fp32 matmul with OpenBLAS's own kernel choice (NODETUNE_BLAS_KERNEL=off): ${own === undefined ? 'failed' : `${own.toFixed(1)} GFLOP/s`}`);
  }
  // PyTorch (the comparison) runs in child processes that inherit this environment, so the same OpenBLAS kernel.
  const bf16Peak = await measureMatmul(1024, quick ? 5 : 20, { dtype: 'bfloat16', threads: os.cpus().length });
  results.bf16MatmulPeakGflops = bf16Peak;
  console.log(`bf16 matmul peak: ${bf16Peak.toFixed(1)} GFLOP/s (1024x1024, LibTorch's kernels, ${os.cpus().length} thread(s))`);

  if (process.argv.includes('--only-real-size')) {
    const work = fs.mkdtempSync(path.join(os.tmpdir(), 'nodetune-bench-'));
    try {
      results.realSize = benchRealSize({ quick, fp32Peak: peak, bf16Peak, python: pythonTorch() ? PYTHON : undefined, runChild, median }, work);
    } finally {
      fs.rmSync(work, { recursive: true, force: true });
    }
    fs.writeFileSync(outFile, JSON.stringify(results, null, 2) + '\n');
    console.log(`results: ${outFile}`);
    return;
  }

  const shapes: BenchShape[] = [
    { name: 'gpt2-4x256-v8k', family: 'gpt2', layers: 4, hidden: 256, heads: 8, vocab: 8192, seq: 128 },
    { name: 'llama-4x256-v8k', family: 'llama', layers: 4, hidden: 256, heads: 8, vocab: 8192, seq: 128 },
  ];
  if (!quick) {
    shapes.push({ name: 'gpt2-6x512-v16k', family: 'gpt2', layers: 6, hidden: 512, heads: 8, vocab: 16384, seq: 128 });
    shapes.push({ name: 'llama-6x512-v16k', family: 'llama', layers: 6, hidden: 512, heads: 8, vocab: 16384, seq: 128 });
  }
  const batchSize = 8;
  const rounds = quick ? 1 : 4;
  const steps = quick ? 3 : 4;
  const withPython = pythonTorch();
  if (!withPython) console.log(`PyTorch comparison skipped: ${PYTHON} cannot import torch (apt-get install python3-torch)`);
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'nodetune-bench-'));
  const training: Record<string, unknown>[] = [];
  try {
    for (const shape of shapes) {
      const dir = path.join(work, shape.name);
      await writeRandomCheckpoint(dir, configFor(shape), 0);
      const batchFile = path.join(dir, 'batch.json');
      fs.writeFileSync(batchFile, JSON.stringify({ inputIds: randomBatch(batchSize, shape.seq, shape.vocab, 1) }));
      const childArgs = { dir, batchFile, steps, warmup: 1 };
      const ours: ChildResult[] = [];
      const lora: ChildResult[] = [];
      const loraTargets = shape.family === 'gpt2' ? ['c_attn'] : ['q_proj', 'v_proj'];
      const torchDefault: ChildResult[] = [];
      const torchOurs: ChildResult[] = [];
      for (let r = 0; r < rounds; r++) {
        ours.push(runChild(process.execPath, [path.join(__dirname, 'step-child.js'), JSON.stringify({ ...childArgs, mode: 'train' })]));
        lora.push(runChild(process.execPath, [path.join(__dirname, 'step-child.js'), JSON.stringify({ ...childArgs, mode: 'train', loraTargets })]));
        if (withPython) {
          torchDefault.push(runChild(PYTHON, [path.join(root, 'bench', 'pytorch_step.py'), JSON.stringify(childArgs)]));
          torchOurs.push(runChild(PYTHON, [path.join(root, 'bench', 'pytorch_step.py'), JSON.stringify({ ...childArgs, threads: info.threads.intraOp })]));
        }
      }
      const tokens = batchSize * shape.seq;
      const summarize = (runs: ChildResult[]) => {
        if (runs.length === 0) return undefined;
        const ms = median(runs.flatMap((x) => x.times));
        const params = runs[0]!.params;
        const gflops = (6 * params * tokens) / (ms / 1000) / 1e9;
        return {
          medianStepMs: ms, bestStepMs: Math.min(...runs.flatMap((x) => x.times)), tokensPerSec: tokens / (ms / 1000), achievedGflops: gflops, fractionOfPeak: gflops / peak,
          peakRssMb: Math.max(...runs.map((x) => x.peakRssKb)) / 1024, loadMs: median(runs.map((x) => x.loadMs)),
          params, firstLoss: runs[0]!.losses[0], threads: runs[0]!.threads,
        };
      };
      const row = {
        name: shape.name, method: 'full', batch: batchSize, seq: shape.seq,
        nodetune: summarize(ours), nodetuneLora: { ...summarize(lora)!, targets: loraTargets, trainable: lora[0]!.trainable },
        pytorchDefaultThreads: summarize(torchDefault), pytorchOurThreads: summarize(torchOurs),
      };
      training.push(row);
      const n = row.nodetune!;
      let line = `${shape.name.padEnd(18)} nodetune ${n.medianStepMs.toFixed(0).padStart(5)} ms/step ` +
        `${n.tokensPerSec.toFixed(0).padStart(6)} tok/s ${n.achievedGflops.toFixed(1).padStart(6)} GFLOP/s ` +
        `(${(n.fractionOfPeak * 100).toFixed(0)}% of peak) RSS ${n.peakRssMb.toFixed(0)} MB load ${n.loadMs.toFixed(0)} ms`;
      const l = row.nodetuneLora;
      line += `\n${''.padEnd(18)} nodetune LoRA r8 (${loraTargets.join('+')}) ${l.medianStepMs.toFixed(0)} ms/step, RSS ${l.peakRssMb.toFixed(0)} MB` +
        ` -> LoRA/full step time ${(l.medianStepMs / n.medianStepMs).toFixed(2)} (target <= 0.70), RSS ${l.peakRssMb.toFixed(0)} vs ${n.peakRssMb.toFixed(0)} MB`;
      for (const [label, p] of [['pytorch(default threads)', row.pytorchDefaultThreads], ['pytorch(our threads)', row.pytorchOurThreads]] as const) {
        if (p) line += `\n${''.padEnd(18)} ${label} ${p.medianStepMs.toFixed(0)} ms/step, RSS ${p.peakRssMb.toFixed(0)} MB, ` +
          `threads ${p.threads} -> nodetune/pytorch step time ratio ${(n.medianStepMs / p.medianStepMs).toFixed(2)} (target <= 0.80; ` +
          `best steps ${n.bestStepMs.toFixed(0)} vs ${p.bestStepMs.toFixed(0)} ms: ${(n.bestStepMs / p.bestStepMs).toFixed(2)})`;
      }
      console.log(line);
    }
    results.training = training;

    if (!process.argv.includes('--no-real-size')) {
      results.realSize = benchRealSize({ quick, fp32Peak: peak, bf16Peak, python: withPython ? PYTHON : undefined, runChild, median }, work);
    }

    // Generation with the KV cache on the small Llama shape.
    const gen = shapes[1]!;
    const genDir = path.join(work, gen.name);
    const generation: Record<string, unknown>[] = [];
    for (const b of [1, 8]) {
      const batchFile = path.join(genDir, `prompt-${b}.json`);
      fs.writeFileSync(batchFile, JSON.stringify({ inputIds: randomBatch(b, 16, gen.vocab, 7) }));
      const newTokens = quick ? 16 : 64;
      const res = runChild(process.execPath, [path.join(__dirname, 'step-child.js'), JSON.stringify({ dir: genDir, batchFile, steps: quick ? 1 : 3, warmup: 1, mode: 'generate', newTokens })]);
      const ms = median(res.times);
      const row = { model: gen.name, batch: b, newTokens, medianMs: ms, tokensPerSec: (b * newTokens) / (ms / 1000) };
      generation.push(row);
      console.log(`generate ${gen.name} batch ${b}: ${row.tokensPerSec.toFixed(0)} new tokens/s (${newTokens} tokens, KV cache, greedy)`);
    }
    results.generation = generation;

    // Data parallel on this machine: 2 processes (Gloo over loopback), each with half the rows, vs 1 process.
    const dpShape = shapes[0]!;
    const dpBatch = path.join(work, dpShape.name, 'batch.json');
    const dpArgs = JSON.stringify({ config: configFor(dpShape), batchFile: dpBatch, steps: quick ? 2 : 4, warmup: 1 });
    const dataParallel: Record<string, unknown>[] = [];
    for (const nproc of [1, 2]) {
      // 2 processes on 2 cores: one BLAS thread each, so they do not oversubscribe the cores.
      const env = { ...process.env, ...(nproc > 1 ? { NODETUNE_BLAS_THREADS: String(Math.max(1, Math.floor(os.cpus().length / nproc))) } : {}) };
      const res = await launch({ nproc, args: [path.join(__dirname, 'dist-child.js'), dpArgs], stdio: 'pipe', env });
      const bad = res.find((r) => r.code !== 0);
      if (bad) throw new Error(`data-parallel bench, rank ${bad.rank}: ${bad.stderr.slice(-1000)}`);
      const out = JSON.parse(res[0]!.stdout.trim().split('\n').pop()!) as { times: number[]; reduceTimes: number[]; params: number };
      const ms = median(out.times);
      const row = { model: dpShape.name, processes: nproc, medianStepMs: ms, tokensPerSec: (batchSize * dpShape.seq) / (ms / 1000),
        allReduceMs: nproc > 1 ? median(out.reduceTimes) : 0, gradientMB: (out.params * 4) / 2 ** 20 };
      dataParallel.push(row);
      console.log(`data parallel ${dpShape.name} x${nproc} process(es): ${row.medianStepMs.toFixed(0)} ms/step, ${row.tokensPerSec.toFixed(0)} tok/s` +
        (nproc > 1 ? `, all-reduce of ${row.gradientMB.toFixed(1)} MB: ${row.allReduceMs.toFixed(1)} ms` : ''));
    }
    results.dataParallel = dataParallel;
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }

  // Tokenization + collation (lib/tokenizers, lib/data).
  const tokenizeBench = path.join(__dirname, 'tokenize.js');
  if (fs.existsSync(tokenizeBench)) {
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    const mod = require(tokenizeBench) as { benchTokenize(o: { quick: boolean }): Promise<Record<string, unknown>> };
    results.tokenization = await mod.benchTokenize({ quick });
    console.log('tokenization + collation:', JSON.stringify(results.tokenization));
  }
  // Decoding against its bandwidth ceiling (0.5B Qwen2 shape, bf16), TTFT, 16 rows in one session (bench/decode.ts).
  const decodeBench = path.join(__dirname, 'decode.js');
  if (fs.existsSync(decodeBench)) {
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    const mod = require(decodeBench) as { benchDecode(o: { quick: boolean }): Promise<Record<string, unknown>> };
    results.decode = await mod.benchDecode({ quick });
    console.log('decode:', JSON.stringify(results.decode));
  }
  // Server: streaming clients, batch 1 vs 16 clients with static and continuous batching (loopback; bench/serve.ts).
  const serveBench = path.join(__dirname, 'serve.js');
  if (fs.existsSync(serveBench)) {
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    const mod = require(serveBench) as { benchServer(o: { quick: boolean }): Promise<Record<string, unknown>> };
    results.server = await mod.benchServer({ quick });
    console.log('server:', JSON.stringify(results.server));
  }
  fs.writeFileSync(outFile, JSON.stringify(results, null, 2) + '\n');
  console.log(`results: ${outFile}`);
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
