/** Streams a file (or any byte stream) as lines of strictly valid UTF-8, with 1-based line numbers, in bounded memory. */
import * as fs from 'fs';
import { NodetuneError } from '../errors';

export interface Line {
  text: string;
  line: number;
}

const decoder = new TextDecoder('utf-8', { fatal: true });

const lenient = new TextDecoder('utf-8');

function badBytes(file: string, line: number, bytes: Buffer): NodetuneError {
  const column = lenient.decode(bytes).indexOf('\uFFFD') + 1;
  return new NodetuneError('ERR_DATA',
    `${file}:${line}: the line is not valid UTF-8 (first bad byte at character ${column}); re-encode the file as UTF-8`,
    { file, line, column });
}

function decodeLine(file: string, line: number, bytes: Buffer): string {
  let text: string;
  try {
    text = decoder.decode(bytes);
  } catch {
    throw badBytes(file, line, bytes);
  }
  if (line === 1 && text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  return text.endsWith('\r') ? text.slice(0, -1) : text;
}

export function openForRead(file: string): fs.ReadStream {
  if (!fs.existsSync(file)) throw new NodetuneError('ERR_IO', `${file} does not exist`, { file });
  if (fs.statSync(file).isDirectory()) throw new NodetuneError('ERR_IO', `${file} is a directory, not a data file`, { file });
  return fs.createReadStream(file, { highWaterMark: 1 << 20 });
}

export async function* readLines(file: string): AsyncGenerator<Line> {
  const stream = openForRead(file);
  try {
    yield* splitLines(file, stream as AsyncIterable<Buffer>);
  } catch (e) {
    if (e instanceof NodetuneError) throw e;
    throw new NodetuneError('ERR_IO', `cannot read ${file}: ${(e as Error).message}`, { file });
  } finally {
    stream.destroy();
  }
}

/**
 * Cuts a byte stream (a file, a socket, an HTTP body, standard input) into strictly decoded UTF-8 lines; `name`
 * is the source the errors name. Errors of the stream itself pass through for the caller to type.
 */
export async function* splitLines(name: string, chunks: AsyncIterable<Uint8Array>): AsyncGenerator<Line> {
  let rest: Buffer = Buffer.alloc(0);
  let line = 0;
  for await (const chunk of chunks) {
    const bytes = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    const buf = rest.length ? Buffer.concat([rest, bytes]) : bytes;
    let start = 0;
    for (let nl = buf.indexOf(10, start); nl !== -1; nl = buf.indexOf(10, start)) {
      line++;
      yield { text: decodeLine(name, line, buf.subarray(start, nl)), line };
      start = nl + 1;
    }
    rest = Buffer.from(buf.subarray(start));
  }
  if (rest.length > 0) {
    line++;
    yield { text: decodeLine(name, line, rest), line };
  }
}
