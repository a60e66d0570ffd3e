/** Shared by the data-source tests (test/31.data-sources-*): labelled rows, the CLI in-process, secrets in a run folder. */
import * as fs from 'fs';
import * as path from 'path';
import { main } from '../lib/cli/main';

const WORDS = 'the cat dog sat on mat day night sun moon tree house big small red blue'.split(' ');

/** Rows a tiny word-level model can learn: sentiment "pos" iff the sentence has "good" (else it has "bad"). */
export function reviewRows(n: number): Array<{ sentence: string; sentiment: 'pos' | 'neg' }> {
  return Array.from({ length: n }, (_, i) => {
    const words = Array.from({ length: 4 + (i % 4) }, (_, k) => WORDS[(i * 7 + k * 3) % WORDS.length]!);
    const pos = i % 2 === 0;
    words.splice(i % words.length, 0, pos ? 'good' : 'bad');
    return { sentence: words.join(' '), sentiment: pos ? 'pos' : 'neg' };
  });
}

export interface CliRun {
  code: number;
  out: string;
  err: string;
}

/** `nodetune ARGV...` in this process. */
export async function runCli(argv: string[]): Promise<CliRun> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(argv, (s) => out.push(s), (s) => err.push(s));
  return { code, out: out.join('\n'), err: err.join('\n') };
}

/** Every file under `dir` whose bytes contain one of `needles` (a secret written to a run folder). */
export function filesContaining(dir: string, needles: string[]): string[] {
  const hits: string[] = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) hits.push(...filesContaining(p, needles));
    else if (e.isFile() && needles.some((n) => fs.readFileSync(p).includes(Buffer.from(n, 'utf8')))) hits.push(p);
  }
  return hits;
}

/** A classification config training a LoRA on `model` for a few steps from the data section given (YAML). */
export function trainConfig(model: string, data: string, output: string): string {
  return `model: ${model}
task: classification
seed: 3
data:
${data}
  columns: { text: sentence, label: sentiment }
method: { kind: lora, r: 4, alpha: 8, targetModules: all-linear }
training: { epochs: 4, batchSize: 8, learningRate: 0.02 }
output: ${output}
`;
}
