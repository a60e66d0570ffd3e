/** config.json's layer counts checked against the layers a checkpoint holds, before the model is built: a config that
 * asks for more layers than the weights have fails at once instead of building them (a billion layers would hang). */
import * as path from 'path';
import { NodetuneError } from '../errors';
import type { ResolvedConfig } from './config';

/** Per family: the config key of each stack and the pattern of its layers' tensor names (the index captured). */
const STACKS: Record<string, { key: string; count: (c: ResolvedConfig) => number; pattern: RegExp }[]> = {
  gpt2: [{ key: 'n_layer', count: (c) => c.native.numLayers, pattern: /(?:^|\.)h\.(\d+)\./ }],
  llama: [{ key: 'num_hidden_layers', count: (c) => c.native.numLayers, pattern: /(?:^|\.)layers\.(\d+)\./ }],
  bert: [{ key: 'num_hidden_layers', count: (c) => c.native.numLayers, pattern: /(?:^|\.)encoder\.layer\.(\d+)\./ }],
  distilbert: [{ key: 'n_layers', count: (c) => c.native.numLayers, pattern: /(?:^|\.)transformer\.layer\.(\d+)\./ }],
  t5: [
    { key: 'num_layers', count: (c) => c.native.numLayers, pattern: /^encoder\.block\.(\d+)\./ },
    { key: 'num_decoder_layers', count: (c) => c.native.numDecoderLayers ?? c.native.numLayers, pattern: /^decoder\.block\.(\d+)\./ },
  ],
};

/** `names`: the checkpoint's tensor names (as they will load); `files`: the files they come from, for the message. */
export function checkLayerCounts(resolved: ResolvedConfig, configFile: string, names: string[], files: string[]): void {
  for (const stack of STACKS[resolved.family] ?? []) {
    if (resolved.task === 'base' && resolved.family === 't5' && stack.key === 'num_decoder_layers') continue;  // an encoder only
    let held = 0;
    for (const n of names) {
      const m = stack.pattern.exec(n);
      if (m) held = Math.max(held, Number(m[1]) + 1);
    }
    const wanted = stack.count(resolved);
    if (wanted > held) {
      const where = [...new Set(files.map((f) => path.basename(f)))].join(', ') || 'the checkpoint';
      throw new NodetuneError('ERR_CHECKPOINT', `${configFile}: ${stack.key} is ${wanted}, but ${where} holds ${held} layer${held === 1 ? '' : 's'}`,
        { file: configFile, field: stack.key });
    }
  }
}
