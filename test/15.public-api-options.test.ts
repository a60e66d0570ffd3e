import { expect } from 'chai';
import { AutoModel, AutoTokenizer, Trainer, pipeline } from '../lib';
import type { Model } from '../lib/models';
import { rejects, tempDir, throws } from './helpers';
import { tinyModelDir } from './60.serve-helpers';

/** The error of a call that throws or rejects. */
async function caught(fn: () => unknown): Promise<Error & { code?: string }> {
  try {
    await fn();
  } catch (e) {
    return e as Error & { code?: string };
  }
  throw new Error('expected an error');
}

/** ERR_ARGUMENT naming the unknown key and the nearest known one. */
function unknownKey(e: Error & { code?: string }, where: string, key: string, near: string): void {
  expect(e.code, e.message).to.equal('ERR_ARGUMENT');
  expect(e.message).to.include(`${where}: unknown option '${key}' (did you mean '${near}'?)`);
}

describe('15 public API: option objects reject unknown keys; padded batches; flat id sequences', function () {
  this.timeout(60_000);
  const llama = tinyModelDir('llama', 'causal');
  const bert = tinyModelDir('bert-cls', 'encoder');
  let lm: Model;
  let cls: Model;

  before(async () => {
    lm = await AutoModel.fromPretrained(llama, { quiet: true });
    cls = await AutoModel.fromPretrained(bert, { quiet: true });
  });

  it('AutoModel.fromPretrained / fromConfig', async () => {
    unknownKey(await rejects(AutoModel.fromPretrained(llama, { dtyep: 'bfloat16' } as never)), 'AutoModel.fromPretrained()', 'dtyep', 'dtype');
    unknownKey(await rejects(AutoModel.fromConfig(lm.config, { sed: 1 } as never)), 'AutoModel.fromConfig()', 'sed', 'seed');
  });

  it('addLora, addAdapter, addPromptTuning, setTrainable, configureOptimizer', async () => {
    unknownKey(throws(() => cls.addLora({ r: 2, alpha: 4, targetModules: 'all-linear', dropuot: 0.1 } as never)), 'addLora()', 'dropuot', 'dropout');
    unknownKey(throws(() => cls.addAdapter({ kind: 'bottleneck', reduction: 2, reductoin: 2 } as never)), 'addAdapter()', 'reductoin', 'reduction');
    unknownKey(await rejects(cls.addPromptTuning({ numVirtualTokens: 2, numVirtualToken: 2 } as never)), 'addPromptTuning()', 'numVirtualToken', 'numVirtualTokens');
    unknownKey(throws(() => cls.setTrainable('head', { trainEmbedding: true } as never)), 'setTrainable()', 'trainEmbedding', 'trainEmbeddings');
    unknownKey(throws(() => lm.configureOptimizer({ type: 'adamw', lr: 1e-3, weightdecay: 0.1 } as never)), 'configureOptimizer()', 'weightdecay', 'weightDecay');
  });

  it('generate, forward, trainStep', async () => {
    unknownKey(await caught(() => lm.generate([[1, 2]], { maxNewTokens: 1, temprature: 0.5 } as never)), 'generate()', 'temprature', 'temperature');
    unknownKey(await caught(() => lm.forward({ inputIds: [[1, 2]] }, { adaptor: null } as never)), 'forward()', 'adaptor', 'adapter');
    lm.configureOptimizer({ type: 'sgd', lr: 0 });
    unknownKey(await caught(() => lm.trainStep({ inputIds: [[1, 2]], labels: [[1, 2]] }, { maxGradnorm: 1 } as never)), 'trainStep()', 'maxGradnorm', 'maxGradNorm');
  });

  it('pipeline, AutoTokenizer.fromPretrained, new Trainer', async () => {
    unknownKey(await rejects(pipeline('text-generation', llama, { dtyep: 'float32' } as never)), 'pipeline()', 'dtyep', 'dtype');
    unknownKey(await rejects(AutoTokenizer.fromPretrained(llama, { chatTemplat: '' } as never)), 'AutoTokenizer.fromPretrained()', 'chatTemplat', 'chatTemplate');
    unknownKey(throws(() => new Trainer({ model: lm, train: [], args: { outputDir: tempDir() }, validaton: [] } as never)), 'new Trainer()', 'validaton', 'validation');
  });

  it('encodePadded: padded { inputIds, attentionMask } that forward, generate and trainStep take', async () => {
    const tok = await AutoTokenizer.fromPretrained(llama);
    const short = (await tok.encode('the cat')).ids;
    const long = (await tok.encode('the cat sat on the mat')).ids;
    const pad = tok.padTokenId!;
    const right = await tok.encodePadded(['the cat', 'the cat sat on the mat']);
    expect(right.inputIds).to.deep.equal([[...short, ...new Array<number>(long.length - short.length).fill(pad)], long]);
    expect(right.attentionMask[0]).to.deep.equal([...short.map(() => 1), ...new Array<number>(long.length - short.length).fill(0)]);
    expect(right.tokenTypeIds).to.equal(undefined);
    const left = await tok.encodePadded(['the cat', 'the cat sat on the mat'], { paddingSide: 'left' });
    expect(left.inputIds[0]!.slice(long.length - short.length)).to.deep.equal(short);
    const fixed = await tok.encodePadded('the cat', { padding: 'max_length', maxLength: 8 });
    expect(fixed.inputIds).to.have.length(1);
    expect(fixed.inputIds[0]).to.have.length(8);
    const cut = await tok.encodePadded(['the cat sat on the mat'], { truncation: true, maxLength: 3 });
    expect(cut.inputIds[0]).to.deep.equal(long.slice(0, 3));
    expect((await rejects(tok.encodePadded(['the cat sat on the mat'], { padding: 'max_length', maxLength: 2 }))).message).to.include('pass truncation: true');
    unknownKey(await rejects(tok.encodePadded(['a'], { pading: true } as never)), 'encodePadded()', 'pading', 'padding');
    const out = await lm.forward(right);
    expect(out.shape.slice(0, 2)).to.deep.equal([2, long.length]);
    const gen = await lm.generate(left.inputIds, { maxNewTokens: 2, attentionMask: left.attentionMask, eosTokenId: null });
    expect(gen).to.have.length(2);
    lm.configureOptimizer({ type: 'sgd', lr: 0 });
    const step = await lm.trainStep({ ...right, labels: right.inputIds });
    expect(step.loss).to.be.a('number');
  });

  it('one flat sequence (number[]) is a batch of one in forward and generate', async () => {
    const tok = await AutoTokenizer.fromPretrained(llama);
    const ids = (await tok.encode('the cat sat')).ids;
    const flat = await lm.forward({ inputIds: ids });
    const nested = await lm.forward({ inputIds: [ids] });
    expect(flat.shape).to.deep.equal(nested.shape);
    expect(Array.from(flat.logits)).to.deep.equal(Array.from(nested.logits));
    const g = await lm.generate(ids, { maxNewTokens: 2, eosTokenId: null });
    expect(g).to.deep.equal(await lm.generate([ids], { maxNewTokens: 2, eosTokenId: null }));
  });
});
