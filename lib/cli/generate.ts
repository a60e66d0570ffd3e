/** `nodetune generate`: text from a causal LM (plus an optional adapter) through the text-generation pipeline. */
import { parseArgs } from 'util';
import { pipeline } from '../pipelines';
import { intOption, numOption, required } from './model-task';

export const GENERATE_HELP = `Usage: nodetune generate --model DIR --prompt TEXT [options]

Continues a prompt with a causal LM (greedy unless --temperature is above 0) and prints the continuation.

Options:
  --model DIR             model folder or cached repo id (config.json, safetensors, tokenizer)   (required)
  --prompt TEXT           the prompt (repeatable: one continuation per prompt)                    (required)
  --adapter DIR           a LoRA / adapter / prompt-tuning folder (PEFT layout) applied on top
  --max-new-tokens N      tokens to generate (default 32)
  --temperature T         0 = greedy (default); above 0 samples
  --top-k N, --top-p P    sampling filters
  --seed N                seed for sampling
  --json                  print one JSON object per prompt (text, tokens, finish reason)

Examples:
  nodetune generate --model ./runs/sotu/model --prompt "The state of the Union" --max-new-tokens 40
  nodetune generate --model base --adapter runs/chat/adapter --prompt "Question: why?" --temperature 0.8 --seed 1`;

export async function generate(argv: string[], out: (s: string) => void): Promise<number> {
  const { values } = parseArgs({
    args: argv, strict: true, options: {
      model: { type: 'string' }, prompt: { type: 'string', multiple: true }, adapter: { type: 'string' }, 'max-new-tokens': { type: 'string' },
      temperature: { type: 'string' }, 'top-k': { type: 'string' }, 'top-p': { type: 'string' }, seed: { type: 'string' }, json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    out(GENERATE_HELP);
    return 0;
  }
  const model = required('model', values.model, 'nodetune generate --model DIR --prompt TEXT');
  const prompts = values.prompt ?? [];
  if (prompts.length === 0) required('prompt', undefined, 'nodetune generate --model DIR --prompt TEXT');
  const topK = values['top-k'] !== undefined ? intOption('top-k', values['top-k'], 0) : undefined;
  const topP = numOption('top-p', values['top-p']);
  const temperature = numOption('temperature', values.temperature);
  const seed = values.seed !== undefined ? intOption('seed', values.seed, 0, 0) : undefined;
  const opts = {
    maxNewTokens: intOption('max-new-tokens', values['max-new-tokens'], 32),
    ...(temperature !== undefined ? { temperature } : {}), ...(topK !== undefined ? { topK } : {}), ...(topP !== undefined ? { topP } : {}),
    ...(seed !== undefined ? { seed } : {}),
  };
  const gen = await pipeline('text-generation', model, values.adapter ? { adapter: values.adapter } : {});
  for (const p of prompts) {
    const g = await gen(p, opts);
    out(values.json ? JSON.stringify({ prompt: p, text: g.text, promptTokens: g.promptTokens, completionTokens: g.completionTokens, finishReason: g.finishReason }) : `${p}${g.text}`);
  }
  return 0;
}
