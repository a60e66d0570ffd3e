/**
 * What the fine-tuning methods need to know about a model's structure, from its parameter table:
 * the transformer blocks, the final norm, the embeddings, the task head and the linear layers
 * (GPT-2's Conv1D included), all under their Hugging Face names.
 */
import { NodetuneError } from '../errors';
import type { NativeLoraTarget, NativeParameterInfo } from '../native';
import type { ResolvedConfig } from '../models/config';

const EMBEDDING = /(^|\.)(wte|wpe|embed_tokens|word_embeddings|position_embeddings|token_type_embeddings)\.weight$/;

export interface ModelStructure {
  params: NativeParameterInfo[];
  /** "<prefix>.h.3." etc., in order. */
  layers: string[];
  /** Parameters of the final norm (decoders; post-LN encoders have none). */
  finalNorm: string[];
  embeddings: string[];
  /** Task-head parameters (`headNames()` of the native model). */
  head: string[];
  /** Linear layers of the body (heads excluded), by module path. */
  linear: NativeLoraTarget[];
  /** Linear layers of the head. */
  headLinear: NativeLoraTarget[];
  /** The token embedding (prompt tuning initialises from it). */
  tokenEmbedding: string;
}

export function layerPrefix(resolved: ResolvedConfig, i: number): string {
  const p = resolved.native.prefix;
  switch (resolved.family) {
    case 'gpt2': return `${p}.h.${i}.`;
    case 'llama': return `${p}.layers.${i}.`;
    case 'bert': return `${p}.encoder.layer.${i}.`;
    default: return `${p}.transformer.layer.${i}.`;
  }
}

export function modelStructure(resolved: ResolvedConfig, params: NativeParameterInfo[], headNames: string[]): ModelStructure {
  const p = resolved.native.prefix;
  const layers = Array.from({ length: resolved.native.numLayers }, (_, i) => layerPrefix(resolved, i));
  const head = new Set(headNames);
  const finalNorm = params.map((x) => x.name).filter((n) => n.startsWith(`${p}.ln_f.`) || n === `${p}.norm.weight`);
  const embeddings = params.map((x) => x.name).filter((n) => EMBEDDING.test(n));
  const linear: NativeLoraTarget[] = [];
  const headLinear: NativeLoraTarget[] = [];
  for (const x of params) {
    if (!x.name.endsWith('.weight') || x.shape.length !== 2 || EMBEDDING.test(x.name)) continue;
    const module = x.name.slice(0, -'.weight'.length);
    const conv = resolved.family === 'gpt2' && !head.has(x.name);
    const t = { module, inFeatures: conv ? x.shape[0]! : x.shape[1]!, outFeatures: conv ? x.shape[1]! : x.shape[0]!, fanInFanOut: conv };
    (head.has(x.name) ? headLinear : linear).push(t);
  }
  const tokenEmbedding = resolved.family === 'gpt2' ? `${p}.wte.weight` : resolved.family === 'llama' ? `${p}.embed_tokens.weight` : `${p}.embeddings.word_embeddings.weight`;
  return { params, layers, finalNorm, embeddings, head: headNames, linear, headLinear, tokenEmbedding };
}

/** `*` matches any run of characters (dots included), `?` one character; the whole name must match. */
export function globToRegExp(glob: string): RegExp {
  const body = glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${body}$`);
}

/**
 * PEFT's target_modules rule: a list entry matches a module whose path equals it or ends with "." + it;
 * a string other than 'all-linear' is a regular expression the whole path must match; 'all-linear'
 * is every linear layer of the body (the output layer and task head excluded).
 */
export function resolveTargets(targetModules: string[] | string, s: ModelStructure): NativeLoraTarget[] {
  const candidates = [...s.linear, ...s.headLinear];
  let out: NativeLoraTarget[];
  if (targetModules === 'all-linear') out = s.linear;
  else if (typeof targetModules === 'string') {
    let re: RegExp;
    try {
      re = new RegExp(`^(?:${targetModules})$`);
    } catch (e) {
      throw new NodetuneError('ERR_ARGUMENT', `targetModules: invalid regular expression (${(e as Error).message})`, { field: 'targetModules' });
    }
    out = candidates.filter((t) => re.test(t.module));
  } else {
    out = candidates.filter((t) => targetModules.some((m) => t.module === m || t.module.endsWith(`.${m}`)));
    const unused = targetModules.filter((m) => !candidates.some((t) => t.module === m || t.module.endsWith(`.${m}`)));
    if (unused.length > 0 && out.length > 0)
      throw new NodetuneError('ERR_ARGUMENT', `targetModules: ${unused.join(', ')} matched no linear layer`, { field: 'targetModules' });
  }
  if (out.length === 0) {
    const names = [...new Set(s.linear.map((t) => t.module.split('.').pop()!))].join(', ');
    throw new NodetuneError('ERR_ARGUMENT', `targetModules ${JSON.stringify(targetModules)} matched no linear layer; this model's are: ${names} (or 'all-linear')`, { field: 'targetModules' });
  }
  return out;
}
