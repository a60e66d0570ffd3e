/**
 * `nodetune generate`: text from a causal LM (the text-generation pipeline: the prompt's continuation) or from an
 * encoder-decoder such as T5 (text2text-generation: the output for the source), plus an optional adapter.
 */
import { parseCliArgs } from './args';
import { NodetuneError } from '../errors';
import { pipeline } from '../pipelines';
import { intOption, numOption, pipelineTask, required } from './model-task';
import { UsageError } from './usage';

export const GENERATE_HELP = `Usage: nodetune generate --model DIR --prompt TEXT [options]

Continues a prompt with a causal LM (greedy unless --temperature is above 0) and prints prompt + continuation;
with an encoder-decoder (T5, mT5: config.json's *ForConditionalGeneration) prints the text generated for the
prompt as the source (greedy, beam search with --num-beams, or sampling).

Options:
  --model DIR             model folder or cached repo id (config.json, safetensors, tokenizer)   (required)
  --prompt TEXT           the prompt (repeatable: one continuation per prompt)                    (required)
  --adapter DIR           a LoRA / adapter / prompt-tuning folder (PEFT layout) applied on top
  --max-new-tokens N      tokens to generate (default 32)
  --temperature T         0 = greedy (default); above 0 samples
  --top-k N, --top-p P    sampling filters
  --seed N                seed for sampling
  --num-beams N           encoder-decoders: beam search with N beams (default 1)
  --json                  print one JSON object per prompt (text, tokens, finish reason)

Examples:
  nodetune generate --model ./runs/sotu/model --prompt "The state of the Union" --max-new-tokens 40
  nodetune generate --model base --adapter runs/chat/adapter --prompt "Question: why?" --temperature 0.8 --seed 1
  nodetune generate --model runs/t5/model --prompt "question: is the sky blue?" --num-beams 4`;

export async function generate(argv: string[], out: (s: string) => void): Promise<number> {
  const { values } = parseCliArgs({
    args: argv, strict: true, options: {
      model: { type: 'string' }, prompt: { type: 'string', multiple: true }, adapter: { type: 'string' }, 'max-new-tokens': { type: 'string' },
      temperature: { type: 'string' }, 'top-k': { type: 'string' }, 'top-p': { type: 'string' }, seed: { type: 'string' }, json: { type: 'boolean' },
      'num-beams': { type: 'string' },
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
  const adapter = values.adapter ? { adapter: values.adapter } : {};
  if (seq2seq(model)) {
    const t2t = await pipeline('text2text-generation', model, adapter);
    const numBeams = intOption('num-beams', values['num-beams'], 1);
    for (const p of prompts) {
      const [r] = await t2t(p, { ...opts, numBeams }) as [{ generated_text: string }];
      out(values.json ? JSON.stringify({ prompt: p, text: r.generated_text }) : r.generated_text);
    }
    return 0;
  }
  if (values['num-beams'] !== undefined) throw new UsageError('--num-beams applies to encoder-decoder models (T5, mT5); a causal LM generates greedily or by sampling');
  const gen = await pipeline('text-generation', model, adapter);
  for (const p of prompts) {
    const g = await gen(p, opts);
    out(values.json ? JSON.stringify({ prompt: p, text: g.text, promptTokens: g.promptTokens, completionTokens: g.completionTokens, finishReason: g.finishReason }) : `${p}${g.text}`);
  }
  return 0;
}

/** Whether config.json names an encoder-decoder (a model whose architectures name no task is tried as a causal LM). */
function seq2seq(model: string): boolean {
  try {
    return pipelineTask(model, undefined) === 'text2text-generation';
  } catch (e) {
    if (e instanceof NodetuneError && e.code === 'ERR_CONFIG') return false;
    throw e;
  }
}
