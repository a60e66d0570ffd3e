/**
 * Models every machine has, so the example configs run as shipped: built on first use from what npm installed and
 * cached in $NODETUNE_CACHE or ~/.cache/nodetune. A config names them as `model:`; nothing is downloaded.
 *   nodetune-demo/gpt2     the demo's base: a small GPT-2-shaped causal LM pretrained on State of the Union addresses
 *                          (lib/cli/demo-base.ts; about a minute the first time, shared with `npm run demo`)
 *   nodetune-demo/encoder  a small BERT-shaped encoder with GPT-2's tokenizer, freshly initialised (not pretrained:
 *                          for the tasks a decoder cannot do here, such as extractive QA)
 * NODETUNE_DEMO_QUICK=1 builds seconds-long variants (a few pretraining steps) for smoke tests.
 */
import { createHash } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { AutoModel } from '../models';
import { AutoTokenizer } from '../tokenizers';
import { FULL_RECIPE, QUICK_RECIPE, cacheRoot, gpt2TokenizerDir, pretrainBase } from './demo-base';
import { copyTokenizerFiles } from './run-train';

export const DEMO_GPT2 = 'nodetune-demo/gpt2';
export const DEMO_ENCODER = 'nodetune-demo/encoder';

function quick(): boolean {
  return process.env.NODETUNE_DEMO_QUICK === '1';
}

async function ensureEncoder(log: (s: string) => void): Promise<string> {
  const tokDir = gpt2TokenizerDir();
  const tokenizer = await AutoTokenizer.fromPretrained(tokDir);
  const config = {
    model_type: 'bert', architectures: ['BertModel'], vocab_size: tokenizer.vocabSize, hidden_size: 128, num_hidden_layers: 2,
    num_attention_heads: 4, intermediate_size: 512, max_position_embeddings: 512, type_vocab_size: 2, pad_token_id: tokenizer.eosTokenId,
  };
  const hash = createHash('sha256').update(JSON.stringify({ v: 1, config })).digest('hex').slice(0, 12);
  const dir = path.join(cacheRoot(), `demo-encoder-${hash}`);
  if (fs.existsSync(path.join(dir, 'nodetune-demo.json'))) return dir;
  log(`${DEMO_ENCODER}: building a small BERT-shaped encoder (2 layers, 128 wide, GPT-2's tokenizer, fresh weights) in ${dir}`);
  const model = await AutoModel.fromConfig(config, { seed: 1 });
  const tmp = `${dir}.tmp-${process.pid}`;
  await model.savePretrained(tmp);
  copyTokenizerFiles(tokDir, tmp);
  fs.writeFileSync(path.join(tmp, 'nodetune-demo.json'), JSON.stringify({
    what: 'a small BERT-shaped encoder with freshly initialised weights (not pretrained), built by nodetune for the example configs', config,
  }, null, 2) + '\n');
  fs.rmSync(dir, { recursive: true, force: true });
  fs.renameSync(tmp, dir);
  return dir;
}

/** The folder of a demo model (built and cached on first use); any other name is returned unchanged. `progress`: show the
 * pretraining's progress. */
export async function resolveDemoModel(name: string, log: (s: string) => void, progress = true): Promise<string> {
  if (name === DEMO_ENCODER) return ensureEncoder(log);
  if (name !== DEMO_GPT2) return name;
  const recipe = quick() ? QUICK_RECIPE : FULL_RECIPE;
  const r = await pretrainBase(recipe, (s) => log(`${DEMO_GPT2}:${s}`), progress);
  if (!r.cached) log(`${DEMO_GPT2}: pretrained in ${r.seconds.toFixed(0)} s; cached in ${r.dir}`);
  return r.dir;
}
