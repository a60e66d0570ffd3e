/**
 * int8 decoding against bfloat16 in one process: the bfloat16 base and the int8 base (bf16 head, and with
 * quantizeLmHead) of one shape are loaded once, then greedy batch-1 decoding is timed round by round in rotating
 * order, each int8 base once with each decoding kernel named (nn/int8_decode.h), so every variant sees the same
 * load on a shared machine. Prints each round and the medians, with ratios to bf16 and the load average. --env
 * 'A=1;A=2' repeats every variant under each set of environment variables (read by the kernels at each product).
 *   node dist/bench/quant-decode.js [--shape 0.5b] [--kernels auto,exact-avx2] [--rounds 6] [--tokens 16] [--env 'K=V,K2=V2;K=W']
 */
import * as os from 'os';
import { AutoModel, Model } from '../lib/models';
import { native } from '../lib/native';
import { checkpoint } from './quant-shapes';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && process.argv[i + 1] ? process.argv[i + 1]! : fallback;
}

interface Variant { name: string; base: string; model: Model; kernel?: string; env?: Record<string, string> }

/** Greedy decode tokens/s after an 8-token prompt (its step included, the same for every variant). */
async function decodeTps(model: Model, tokens: number, vocab: number): Promise<number> {
  const prompt = [[1, 17, 230, 4242, 77, 9001 % vocab, 321, 45]];
  const t0 = process.hrtime.bigint();
  await model.generate(prompt, { maxNewTokens: tokens });
  return tokens / (Number(process.hrtime.bigint() - t0) / 1e9);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

async function main(): Promise<void> {
  const shape = arg('shape', '0.5b');
  const [rounds, tokens] = [Number(arg('rounds', '6')), Number(arg('tokens', '16'))];
  const kernels = arg('kernels', 'auto,exact-avx2').split(',').filter((k) => k === 'auto' || native().int8DecodeKernels().includes(k));
  const envs = arg('env', '').split(';').filter(Boolean).map((e) => Object.fromEntries(e.split(',').map((kv) => kv.split('=') as [string, string])));
  const dir = await checkpoint(shape);
  const bf16 = await AutoModel.fromPretrained(dir, { dtype: 'bfloat16', quiet: true });
  const int8 = await AutoModel.fromPretrained(dir, { dtype: 'bfloat16', quiet: true, quantize: 'int8' });
  const head = await AutoModel.fromPretrained(dir, { dtype: 'bfloat16', quiet: true, quantize: 'int8', quantizeLmHead: true });
  const vocab = Number(bf16.config.vocab_size);
  const variants: Variant[] = [];
  for (const env of envs.length ? envs : [{}]) {
    const tag = Object.entries(env).map(([k, v]) => ` ${k}=${v}`).join('');
    variants.push({ name: `bf16${tag}`, base: `bf16${tag}`, model: bf16, env });
    for (const kernel of kernels) {
      variants.push({ name: `int8 ${kernel}${tag}`, base: `bf16${tag}`, model: int8, kernel, env });
      variants.push({ name: `int8+head ${kernel}${tag}`, base: `bf16${tag}`, model: head, kernel, env });
    }
  }
  for (const v of variants) {
    Object.assign(process.env, v.env);
    if (v.kernel) native().setInt8DecodeKernel(v.kernel);
    await decodeTps(v.model, 2, vocab);  // warm-up
  }
  const tps = new Map<string, number[]>(variants.map((v) => [v.name, []]));
  console.log(`${shape}, greedy batch 1, ${tokens} tokens a run, ${rounds} rounds in rotating order; load average before: ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  for (let r = 0; r < rounds; r++) {
    const line: string[] = [];
    for (let i = 0; i < variants.length; i++) {
      const v = variants[(i + r) % variants.length]!;
      Object.assign(process.env, v.env);
      if (v.kernel) native().setInt8DecodeKernel(v.kernel);
      const t = await decodeTps(v.model, tokens, vocab);
      tps.get(v.name)!.push(t);
      line.push(`${v.name} ${t.toFixed(2)}`);
    }
    console.log(`round ${r + 1}: ${line.join(', ')}`);
  }
  native().setInt8DecodeKernel('auto');
  console.log(`load average after: ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  console.log('| variant | decode tok/s (median) | vs bf16 |\n|---|---|---|');
  for (const v of variants) {
    const base = median(tps.get(v.base)!);
    console.log(`| ${v.name} | ${median(tps.get(v.name)!).toFixed(2)} | ${(median(tps.get(v.name)!) / base).toFixed(2)} |`);
  }
}

main().catch((e) => { console.error(e); process.exitCode = 1; });
