/** tokenizer_config.json and special_tokens_map.json, as Hugging Face writes them. */
import * as fs from 'fs';
import { NodetuneError } from '../errors';

/** A special token is stored either as a string or as an AddedToken object with `content`. */
export type TokenSpec = string | { content: string } | null | undefined;

export interface TokenizerConfig {
  tokenizer_class?: string;
  bos_token?: TokenSpec;
  eos_token?: TokenSpec;
  unk_token?: TokenSpec;
  pad_token?: TokenSpec;
  cls_token?: TokenSpec;
  sep_token?: TokenSpec;
  mask_token?: TokenSpec;
  add_prefix_space?: boolean;
  do_lower_case?: boolean;
  tokenize_chinese_chars?: boolean;
  strip_accents?: boolean | null;
  model_max_length?: number;
  padding_side?: 'left' | 'right';
  truncation_side?: 'left' | 'right';
  chat_template?: string | Array<{ name: string; template: string }>;
  [key: string]: unknown;
}

export function tokenContent(spec: TokenSpec): string | undefined {
  if (spec === null || spec === undefined) return undefined;
  if (typeof spec === 'string') return spec;
  return typeof spec.content === 'string' ? spec.content : undefined;
}

/** Reads a JSON object file, or returns undefined when it does not exist. */
export function readJsonIfExists(file: string): Record<string, unknown> | undefined {
  if (!fs.existsSync(file)) return undefined;
  const text = fs.readFileSync(file, 'utf8');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new NodetuneError('ERR_CONFIG', `${file} is not valid JSON: ${(e as Error).message}`, { file });
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new NodetuneError('ERR_CONFIG', `${file} must hold a JSON object`, { file });
  }
  return value as Record<string, unknown>;
}
