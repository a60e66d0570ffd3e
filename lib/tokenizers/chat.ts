/** Chat templates from tokenizer_config.json, rendered with @huggingface/jinja. */
import { Template } from '@huggingface/jinja';
import { NodetuneError } from '../errors';

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant' | 'tool' | string;
  content: string;
}

export interface ChatTemplateOptions {
  /** Append the opening of an assistant turn (for generation). Default false. */
  addGenerationPrompt?: boolean;
  /** A named template when tokenizer_config.json lists several; default 'default'. */
  templateName?: string;
  /** Extra variables the template may read (tools, documents, enable_thinking, ...). */
  variables?: Record<string, unknown>;
}

/** Picks the template text from `chat_template` (a string, or a list of {name, template}). */
export function selectTemplate(source: unknown, name: string | undefined, file: string): string {
  if (typeof source === 'string') return source;
  if (Array.isArray(source)) {
    const list = source as Array<{ name?: unknown; template?: unknown }>;
    const wanted = name ?? 'default';
    const hit = list.find((t) => t.name === wanted);
    if (hit && typeof hit.template === 'string') return hit.template;
    const names = list.map((t) => String(t.name)).join(', ');
    throw new NodetuneError('ERR_CONFIG', `${file}: no chat template named "${wanted}" (available: ${names})`, { file, field: 'chat_template' });
  }
  throw new NodetuneError('ERR_CONFIG', `${file} has no chat_template; pass one with { chatTemplate } or use a tokenizer that ships one`, { file, field: 'chat_template' });
}

export class ChatTemplate {
  private readonly template: Template;

  constructor(readonly source: string, private readonly specials: Record<string, string | undefined>) {
    try {
      this.template = new Template(source);
    } catch (e) {
      throw new NodetuneError('ERR_CONFIG', `chat template does not parse: ${(e as Error).message}`, { field: 'chat_template' });
    }
  }

  render(messages: ChatMessage[], opts: ChatTemplateOptions = {}): string {
    messages.forEach((m, i) => {
      if (typeof m !== 'object' || m === null || typeof m.role !== 'string' || typeof m.content !== 'string') {
        throw new NodetuneError('ERR_ARGUMENT', `messages[${i}] must be { role: string, content: string }`, { field: `messages[${i}]` });
      }
    });
    try {
      return this.template.render({
        ...this.specials,
        ...opts.variables,
        messages,
        add_generation_prompt: opts.addGenerationPrompt === true,
      });
    } catch (e) {
      throw new NodetuneError('ERR_CONFIG', `chat template failed to render: ${(e as Error).message}`, { field: 'chat_template' });
    }
  }
}
