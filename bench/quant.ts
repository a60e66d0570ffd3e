/**
 * A quantized frozen base against a bfloat16 one: LoRA step time, peak RSS and greedy decode tokens/s for the
 * Qwen2.5-0.5B and Llama-3.2-1B shapes (random weights, saved once to a cache folder as bfloat16), each case in
 * its own process (so each peak RSS is that case's alone), bases interleaved round by round.
 *   node dist/bench/quant.js [--shapes 0.5b,1b] [--bases bf16,int8,nf4,int8+head,nf4+head] [--steps 3] [--seq 64] [--tokens 16] [--rounds 1]
 */
import { asChild, runChild, peakRssKb } from './child';
import { AutoModel } from '../lib/models';
import { checkpoint } from './quant-shapes';

// int8+head / nf4+head: quantizeLmHead too (the tied head multiplies by a quantized copy of the embeddings).
type Base = 'bf16' | 'int8' | 'nf4' | 'int8+head' | 'nf4+head';
interface Result { base: Base; loadS: number; afterLoadKb: number; peakKb: number; stepMs: number; decodeTps: number; quantizedMb: number }

async function child(base: Base, args: string[]): Promise<void> {
  const [dir, steps, seq, tokens] = [args[0]!, Number(args[1]), Number(args[2]), Number(args[3])];
  const t0 = process.hrtime.bigint();
  const format = base.replace('+head', '') as 'int8' | 'nf4';
  const model = await AutoModel.fromPretrained(dir, { dtype: 'bfloat16', quiet: true, ...(base === 'bf16' ? {} : { quantize: format, quantizeLmHead: base.endsWith('+head') }) });
  const loadS = Number(process.hrtime.bigint() - t0) / 1e9;
  const afterLoadKb = peakRssKb();
  const vocab = Number(model.config.vocab_size);
  // Decode: greedy, batch 1, after an 8-token prompt (the first step, the prompt's, is excluded from the rate).
  const prompt = [[1, 17, 230, 4242, 77, 9001 % vocab, 321, 45]];
  await model.generate(prompt, { maxNewTokens: 1 });
  const d0 = process.hrtime.bigint();
  await model.generate(prompt, { maxNewTokens: tokens + 1 });
  const decodeTps = tokens / (Number(process.hrtime.bigint() - d0) / 1e9);
  model.addLora({ r: 8, alpha: 16, targetModules: ['q_proj', 'v_proj'], seed: 1 });
  model.configureOptimizer({ type: 'adamw', lr: 1e-4 });
  const ids = [Array.from({ length: seq }, (_, t) => (t * 7919 + 13) % vocab)];
  const times: number[] = [];
  for (let i = 0; i < steps; i++) {
    const s = process.hrtime.bigint();
    await model.trainStep({ inputIds: ids, labels: ids });
    times.push(Number(process.hrtime.bigint() - s) / 1e6);
  }
  const stepMs = times.sort((a, b) => a - b)[Math.floor(times.length / 2)]!;
  const result: Result = { base, loadS, afterLoadKb, peakKb: peakRssKb(), stepMs, decodeTps, quantizedMb: model.quantizedBytes() / 1e6 };
  process.stdout.write(JSON.stringify(result) + '\n');
}

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && process.argv[i + 1] ? process.argv[i + 1]! : fallback;
}

async function main(): Promise<void> {
  const shapes = arg('shapes', '0.5b,1b').split(',');
  const [steps, seq, tokens, rounds] = [arg('steps', '3'), arg('seq', '64'), arg('tokens', '16'), Number(arg('rounds', '1'))];
  for (const shape of shapes) {
    const dir = await checkpoint(shape);
    const results = new Map<Base, Result[]>();
    for (let r = 0; r < rounds; r++)
      for (const base of arg('bases', 'bf16,int8,nf4,int8+head,nf4+head').split(',') as Base[]) {
        const res = runChild<Result>(__filename, base, [dir, steps, seq, tokens]);
        results.set(base, [...(results.get(base) ?? []), res]);
      }
    const bf = results.get('bf16')![0]!;
    console.log(`\n${shape} (LoRA r8 q_proj+v_proj, batch 1 x ${seq}, bfloat16 compute; decode: greedy, batch 1, ${tokens} tokens)`);
    console.log('| base | load | quantized weights | peak RSS | vs bf16 | LoRA step | vs bf16 | decode tok/s | vs bf16 |');
    console.log('|---|---|---|---|---|---|---|---|---|');
    for (const [base, list] of results)
      for (const x of list)
        console.log(`| ${base} | ${x.loadS.toFixed(1)} s | ${x.quantizedMb.toFixed(0)} MB | ${(x.peakKb / 1024).toFixed(0)} MiB | ${(x.peakKb / bf.peakKb).toFixed(2)} | ` +
          `${x.stepMs.toFixed(0)} ms | ${(x.stepMs / bf.stepMs).toFixed(2)} | ${x.decodeTps.toFixed(2)} | ${(x.decodeTps / bf.decodeTps).toFixed(2)} |`);
  }
}

if (!asChild((base, args) => child(base as Base, args))) main().catch((e) => { console.error(e); process.exitCode = 1; });
