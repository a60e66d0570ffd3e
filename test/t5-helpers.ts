/** Fixtures of the T5 / mT5 tests (test/25, test/26). */
import * as fs from 'fs';
import * as path from 'path';
import { fixture } from './models-helpers';

/** test/fixtures/models/{t5-tiny,mt5-tiny}/expected.json, written by scripts/oracle/t5_reference.py. */
export interface T5Expected {
  inputIds: number[][];
  attentionMask: number[][];
  labels: number[][];
  decoderInputIds: number[][];
  shape: number[];
  logits: number[];
  loss: number;
  encoderShape: number[];
  encoder: number[];
  greedy: number[][];
  beamEos: number;
  beam3: number[][];
  beam4LengthPenalty2: number[][];
  beam3NoEos: number[][];
}

export const T5_FIXTURES = ['t5-tiny', 'mt5-tiny', 'umt5-tiny'];

export function t5Expected(name: string): T5Expected {
  return JSON.parse(fs.readFileSync(path.join(fixture(name), 'expected.json'), 'utf8')) as T5Expected;
}

