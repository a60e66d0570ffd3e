/** `nodetune merge`: a LoRA / bottleneck adapter folded into its base model, saved as a plain checkpoint. */
import * as fs from 'fs';
import * as path from 'path';
import { parseCliArgs } from './args';
import { NodetuneError } from '../errors';
import { AutoModel } from '../models';
import { LabelMap } from '../data';
import { readAdapterConfig } from '../peft/files';
import { adapterLabels, adapterTask } from '../peft/adapter-info';
import { resolveTokenizerDir } from '../tokenizers';
import { copyTokenizerFiles } from './run-train';
import { required } from './model-task';

export const MERGE_HELP = `Usage: nodetune merge --model BASE --adapter DIR --output DIR [--labels a,b,...]

Loads the base model with the adapter's task (adapter_config.json's task_type), applies the adapter, folds its
weights into the base weights and writes a plain checkpoint (config.json + model.safetensors + the tokenizer)
that loads without the adapter. Prompt-tuning adapters cannot be merged (they add inputs, not weights).
A classification adapter written by \`nodetune train\` carries its label names (labels.json beside it).
A base saved quantized by bitsandbytes (4-bit / 8-bit) is dequantized: the merged checkpoint is bfloat16, and the
command says so.

Options:
  --model BASE       the base model folder or cached repo id the adapter was trained on   (required)
  --adapter DIR      the adapter folder (adapter_config.json + adapter_model.safetensors)  (required)
  --output DIR       where the merged checkpoint goes                                       (required)
  --labels a,b,...   label names in id order (default: labels.json in the adapter folder)

Examples:
  nodetune merge --model base --adapter runs/spam/adapter --output runs/spam/merged
  nodetune merge --model base --adapter runs/chat/adapter --output merged && nodetune generate --model merged --prompt "Hi"`;


export async function merge(argv: string[], out: (s: string) => void): Promise<number> {
  const { values } = parseCliArgs({
    args: argv, strict: true,
    options: { model: { type: 'string' }, adapter: { type: 'string' }, output: { type: 'string' }, labels: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help) {
    out(MERGE_HELP);
    return 0;
  }
  const usage = 'nodetune merge --model BASE --adapter DIR --output DIR';
  const base = required('model', values.model, usage);
  const adapter = required('adapter', values.adapter, usage);
  const output = required('output', values.output, usage);
  const cfg = readAdapterConfig(adapter);
  if (cfg.peft_type === 'PROMPT_TUNING') throw new NodetuneError('ERR_STATE', `${adapter}: a prompt-tuning adapter adds virtual tokens, not weights; it cannot be merged (load it with --adapter instead)`, { file: adapter });
  const task = adapterTask(adapter);
  const labels = values.labels !== undefined ? values.labels.split(',').map((s) => s.trim()) : adapterLabels(adapter);
  const model = await AutoModel.fromPretrained(base, { task, quiet: true, ...(labels ? { numLabels: labels.length } : {}) });
  await model.loadAdapter(adapter);
  model.mergeAdapter();
  if (labels) Object.assign(model.config, new LabelMap(labels).toConfig());
  await model.savePretrained(output);
  copyTokenizerFiles(resolveTokenizerDir(fs.existsSync(path.join(adapter, 'tokenizer.json')) ? adapter : base), output);
  const note = model.quantized ? `; the ${model.quantized} base was dequantized: the checkpoint is ${model.dtype}` : '';
  out(`merged model written to ${output} (${task}: base ${base} + adapter ${adapter}; the base is unchanged${note})`);
  return 0;
}
