/** A JSON array file: parsed whole (JSONL is the streaming format), with the line each element starts on. */
import * as fs from 'fs';
import { NodetuneError } from '../errors';

export interface ElementSpan {
  start: number;
  end: number;
  /** 1-based line the element starts on. */
  line: number;
}

/** Where each top-level element of a JSON array starts and ends (a tolerant scan: it works on malformed text too). */
export function elementSpans(text: string): ElementSpan[] {
  const spans: ElementSpan[] = [];
  let line = 1;
  let depth = 0;
  let inString = false;
  let expectValue = false;
  let open: ElementSpan | undefined;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 10) { line++; continue; }
    if (inString) {
      if (c === 92) i++; // backslash: skip the escaped character
      else if (c === 34) inString = false;
      continue;
    }
    if (c === 32 || c === 9 || c === 13) continue;
    if (depth === 1 && expectValue && c !== 93) { open = { start: i, end: text.length, line }; spans.push(open); expectValue = false; }
    if (c === 34) inString = true;
    else if (c === 91 || c === 123) { depth++; if (depth === 1) expectValue = true; }
    else if (c === 93 || c === 125) { depth--; if (depth === 0 && open) { open.end = i; open = undefined; } }
    else if (c === 44 && depth === 1) { if (open) { open.end = i; open = undefined; } expectValue = true; }
  }
  return spans;
}

export function lineOfPosition(text: string, pos: number): number {
  let line = 1;
  for (let i = 0; i < pos && i < text.length; i++) if (text.charCodeAt(i) === 10) line++;
  return line;
}

export function readJsonArray(file: string): Array<{ value: unknown; line: number }> {
  if (!fs.existsSync(file)) throw new NodetuneError('ERR_IO', `${file} does not exist`, { file });
  const bytes = fs.readFileSync(file);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    const lenient = new TextDecoder('utf-8').decode(bytes);
    const line = lineOfPosition(lenient, lenient.indexOf('\uFFFD'));
    throw new NodetuneError('ERR_DATA', `${file}:${line}: not valid UTF-8; re-encode the file as UTF-8`, { file, line });
  }
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    const msg = (e as Error).message;
    const m = /position (\d+)/.exec(msg);
    let line = m ? lineOfPosition(text, Number(m[1])) : 1;
    if (!m) {
      // This Node's message gives no position: find the first element that does not parse on its own.
      const bad = elementSpans(text).find((sp) => { try { JSON.parse(text.slice(sp.start, sp.end)); return false; } catch { return true; } });
      if (bad) line = bad.line;
    }
    throw new NodetuneError('ERR_DATA', `${file}:${line}: malformed JSON: ${msg}`, { file, line });
  }
  if (!Array.isArray(value)) {
    throw new NodetuneError('ERR_DATA', `${file}:1: a .json data file must hold an array of examples (use .jsonl for one object per line)`, { file, line: 1 });
  }
  const spans = elementSpans(text);
  return value.map((v, i) => ({ value: v, line: spans[i]?.line ?? 1 }));
}
