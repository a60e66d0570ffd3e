/** The config's method section applied to a loaded model: freezing policy, LoRA, bottleneck adapter or prompt tuning. */
import type { Model } from '../models';
import type { PreTrainedTokenizer } from '../tokenizers';
import type { MethodConfig } from './config/schema';

/** True when the method trains an adapter (saved in the PEFT layout) rather than the model's own weights. */
export function isAdapterMethod(m: MethodConfig): boolean {
  return m.kind === 'lora' || m.kind === 'adapter' || m.kind === 'prompt';
}

export async function applyMethod(model: Model, m: MethodConfig, tokenizer: PreTrainedTokenizer, seed: number): Promise<void> {
  switch (m.kind) {
    case 'full':
      model.setTrainable('full');
      return;
    case 'partial': {
      const opts = m.trainEmbeddings !== undefined ? { trainEmbeddings: m.trainEmbeddings } : {};
      if (m.policy === 'head' || m.policy === 'bitfit') model.setTrainable(m.policy, opts);
      else if (m.policy === 'lastLayers') model.setTrainable({ lastLayers: m.lastLayers! }, opts);
      else model.setTrainable({ include: m.include!, ...(m.exclude ? { exclude: m.exclude } : {}) }, opts);
      return;
    }
    case 'lora':
      model.addLora({ r: m.r ?? 8, alpha: m.alpha ?? 16, dropout: m.dropout ?? 0, targetModules: m.targetModules ?? 'all-linear', useRslora: m.useRslora ?? false, seed });
      return;
    case 'adapter':
      model.addAdapter({ kind: 'bottleneck', reduction: m.reduction ?? 16, seed });
      return;
    case 'prompt': {
      const init = m.init === 'text' ? { text: m.initText!, tokenizer } : (m.init ?? 'random');
      await model.addPromptTuning({ numVirtualTokens: m.numVirtualTokens ?? 20, init, seed });
      return;
    }
  }
}
