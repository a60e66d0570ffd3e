/** `nodetune train CONFIG.yaml [--key.path value ...]`. */
import { loadConfig, parseOverrides } from './config/load';
import { NodetuneError } from '../errors';
import { runTraining } from './run-train';
import type { TrainConfig } from './config/schema';
import { UsageError } from './usage';
import { checkOutputFolder } from './output-folder';
import { isDistributed } from '../distributed/env';

export const TRAIN_HELP = `Usage: nodetune train CONFIG.yaml [--key.path value ...]

Fine-tunes a model as the YAML config says: model (a folder or a cached repo id), task, data (files, columns,
cleaning, augmentation, split), method (full / partial / lora / adapter / prompt), training hyperparameters
(TrainingArgs), output folder. Any key can be overridden on the command line with its dotted path. Prints
metrics before and after on the validation and test data, where the model or adapter was written, and the
path of the HTML report. Progress: a bar on a terminal, plain log lines otherwise. See docs/CLI.md for the schema.

Options:
  --model DIR        the model folder (or cached repo id) instead of the config's \`model\`
  --output DIR       the run folder instead of the config's \`output\`
  --task TASK        the task (classification or text-classification, qa or question-answering, ...)
  --data.train FILE  training data (also --data.validation, --data.test, --data.format, --data.limit, ...)
  --method.kind K    full, partial, lora, adapter or prompt (also --method.r, --method.alpha, ...)
  --training.KEY V   a TrainingArgs field: --training.epochs 1, --training.learningRate 1e-4, ...
  --key.path VALUE   override any config key (the value is read as YAML: 3, 1e-4, true, [a, b])
  --overwrite        write into an output folder that is not empty (refused otherwise; files of the same
                     name are replaced; a run with training.resumeFrom may always write there)
  --quiet            no progress output, only the summary
  -h, --help         this help

Examples:
  nodetune train examples/sentiment.yaml
  nodetune train examples/sentiment.yaml --training.epochs 1 --method.r 4 --output runs/quick
  nodetune train examples/instruction.yaml --model ~/models/my-llama`;

/** CONFIG.yaml, the overrides and the flags of `train` (and `launch`), the config loaded and checked: exit 2 when it is bad. */
export function trainArguments(argv: string[]): { config: TrainConfig; quiet: boolean; overwrite: boolean } {
  const quiet = argv.includes('--quiet');
  const overwrite = argv.includes('--overwrite');
  const [file, ...rest] = argv.filter((a) => a !== '--quiet' && a !== '--overwrite');
  if (file === undefined || file.startsWith('--')) throw new UsageError('a config file is required: nodetune train CONFIG.yaml [--key.path value ...]');
  try {
    return { config: loadConfig(file, parseOverrides(rest, file)), quiet, overwrite };
  } catch (e) {
    // A missing config file, bad YAML or a config that breaks the schema is bad usage (exit 2), like a bad option.
    if (e instanceof NodetuneError && (e.code === 'ERR_CONFIG' || e.code === 'ERR_IO')) throw new UsageError(e.message);
    throw e;
  }
}

export async function train(argv: string[], out: (s: string) => void): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    out(TRAIN_HELP);
    return 0;
  }
  const { config, quiet, overwrite } = trainArguments(argv);
  // Workers of a data-parallel run share the folder: `launch` checked it before starting them.
  if (!isDistributed()) checkOutputFolder(config, overwrite);
  const result = await runTraining(config, quiet ? { quiet: true } : {});
  out(result.summary);
  return 0;
}
