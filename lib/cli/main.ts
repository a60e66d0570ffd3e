#!/usr/bin/env node
/**
 * The `nodetune` command. Exit codes: 0 ok, 1 failed, 2 bad usage.
 */
import { parseCliArgs } from './args';
import { NodetuneError } from '../errors';
import { doctorReport, formatDoctor } from './doctor';
import { UsageError } from './usage';
import { didYouMean } from '../util/suggest';
import { evaluate, generate, launchCmd, merge, predict, scan, tokenize, train } from './commands';

export { UsageError };

const HELP = `Usage: nodetune <command> [options]

Commands:
  train       fine-tune a model as a YAML config says (full, partial, LoRA, adapter, prompt tuning)
  launch      data-parallel training: N local \`nodetune train\` workers (torchrun variables, c10d/Gloo)
  eval        metrics of a model (and adapter) on a labelled file
  predict     JSONL in, JSONL out: each line through the model's pipeline
  generate    continue a prompt with a causal LM
  merge       fold an adapter into its base model: a plain checkpoint
  tokenize    corpus statistics under a tokenizer: tokens, lengths, truncation rate
  scan        the PII that cleaning would find and the train/validation/test leakage, writing nothing
  doctor      what nodetune runs on: LibTorch, CUDA devices, BLAS, threads, and what to fix
  serve       an HTTP server (OpenAI-style completions, chat, classify, metrics) on a model directory

Run \`nodetune <command> --help\` for a command's options; \`nodetune --version\` (-v) prints the version.`;

const DOCTOR_HELP = `Usage: nodetune doctor [--json] [--matmul]

Prints the LibTorch version and library, CUDA availability and device names, the CPU's extensions (AVX2,
AVX-512, AVX512-BF16, AMX: whether bf16 is fast), the BLAS in use and its kernel (OpenBLAS: chosen by nodetune
for this CPU unless OPENBLAS_CORETYPE is set), thread counts, which addon build was loaded, and warnings with
their cure (the slow reference BLAS, an OPENBLAS_CORETYPE that OpenBLAS did not take, ...).

Options:
  --json      print the report as JSON
  --matmul    also measure matrix-product speed (GFLOP/s): fp32 as this process runs it, bf16 on all
              hardware threads, and fp32 with the recommended OpenBLAS kernel when another one runs here
              (a warning with the cure when that is much faster)

Examples:
  nodetune doctor
  nodetune doctor --matmul --json`;

async function doctor(argv: string[], out: (s: string) => void): Promise<number> {
  const { values } = parseCliArgs({
    args: argv,
    options: { json: { type: 'boolean' }, matmul: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
    strict: true,
  });
  if (values.help) {
    out(DOCTOR_HELP);
    return 0;
  }
  const report = await doctorReport({ matmul: values.matmul === true });
  out(values.json ? JSON.stringify(report, null, 2) : formatDoctor(report));
  return 0;
}

/** Loaded on use, so other commands don't pay for the HTTP framework. */
async function serve(argv: string[], out: (s: string) => void): Promise<number> {
  return (await import('./serve')).serve(argv, out);
}

const COMMANDS: Record<string, (argv: string[], out: (s: string) => void) => Promise<number>> = { train, launch: launchCmd, eval: evaluate, predict, generate, merge, tokenize, scan, doctor, serve };

export async function main(argv: string[], out: (s: string) => void = console.log, err: (s: string) => void = console.error): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    out(HELP);
    return command === undefined ? 2 : 0;
  }
  if (command === '--version' || command === '-v' || command === 'version') {
    out(`nodetune ${(require('../../../package.json') as { version: string }).version}`);
    return 0;
  }
  const run = COMMANDS[command];
  if (!run) {
    err(`nodetune: unknown command '${command}'${didYouMean(command, Object.keys(COMMANDS))}. Commands: ${Object.keys(COMMANDS).join(', ')}.\n\n${HELP}`);
    return 2;
  }
  try {
    return await run(rest, out);
  } catch (e) {
    const error = e as Error & { code?: string };
    if (error.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' || error.code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE' ||
        error.code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL' || e instanceof UsageError) {
      err(`nodetune ${command}: ${error.message}`);
      return 2;
    }
    err(e instanceof NodetuneError ? `nodetune ${command}: ${error.code}: ${error.message}` : `nodetune ${command}: ${error.stack ?? String(e)}`);
    return 1;
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (e) => {
      console.error(e);
      process.exitCode = 1;
    },
  );
}
