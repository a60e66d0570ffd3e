/** `nodetune train CONFIG.yaml [--key.path value ...]`. */
import { loadConfig, parseOverrides } from './config/load';
import { NodetuneError } from '../errors';
import { runTraining } from './run-train';
import { UsageError } from './usage';

export const TRAIN_HELP = `Usage: nodetune train CONFIG.yaml [--key.path value ...]

Fine-tunes a model as the YAML config says: model (a folder or a cached repo id), task, data (files, columns,
cleaning, augmentation, split), method (full / partial / lora / adapter / prompt), training hyperparameters
(TrainingArgs), output folder. Any key can be overridden on the command line with its dotted path. Prints
metrics before and after on the validation and test data, where the model or adapter was written, and the
path of the HTML report. Progress: a bar on a terminal, plain log lines otherwise. See docs/CLI.md for the schema.

Options:
  --key.path VALUE   override a config key (the value is read as YAML: 3, 1e-4, true, [a, b])
  --quiet            no progress output, only the summary
  -h, --help         this help

Examples:
  nodetune train examples/sentiment.yaml
  nodetune train examples/sentiment.yaml --training.epochs 1 --method.r 4 --output runs/quick
  nodetune train examples/instruction.yaml --model ~/models/my-llama`;

export async function train(argv: string[], out: (s: string) => void): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    out(TRAIN_HELP);
    return 0;
  }
  const quiet = argv.includes('--quiet');
  const [file, ...rest] = argv.filter((a) => a !== '--quiet');
  if (file === undefined || file.startsWith('--')) throw new UsageError('a config file is required: nodetune train CONFIG.yaml [--key.path value ...]');
  let config;
  try {
    config = loadConfig(file, parseOverrides(rest, file));
  } catch (e) {
    // A missing config file, bad YAML or a config that breaks the schema is bad usage (exit 2), like a bad option.
    if (e instanceof NodetuneError && (e.code === 'ERR_CONFIG' || e.code === 'ERR_IO')) throw new UsageError(e.message);
    throw e;
  }
  const result = await runTraining(config, quiet ? { quiet: true } : {});
  out(result.summary);
  return 0;
}
