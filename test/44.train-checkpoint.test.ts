import { expect } from 'chai';
import * as fs from 'fs';
import * as path from 'path';
import { AutoModel } from '../lib/models';
import { TrainerState, latestCheckpoint, listCheckpoints, readTrainerState, rotateCheckpoints, saveCheckpoint } from '../lib/train/checkpoint';
import { rejects, tempDir, throws } from './helpers';
import { fixture } from './models-helpers';

function state(step: number, best: string | null = null): TrainerState {
  return { version: 1, globalStep: step, epoch: step / 10, epochIndex: 0, batchInEpoch: step, seed: 1, totalSteps: 10, bestMetric: null,
    bestCheckpoint: best, logHistory: [{ step, epoch: step / 10, loss: 1 / step }], plateau: null, earlyStopping: null,
    optimizer: { type: 'sgd', momentum: 0, stateSaved: false }, args: {} };
}

describe('44 train: atomic checkpoints and rotation', () => {
  it('a crash injected mid-save leaves the previous checkpoint loadable and no partial directory', async () => {
    const out = tempDir('nodetune-ckpt-');
    const model = await AutoModel.fromPretrained(fixture('llama'), { quiet: true });
    const first = await saveCheckpoint(out, state(1), (d) => model.savePretrained(d));
    expect(path.basename(first)).to.equal('checkpoint-1');
    const name = model.parameters()[0]!.name;
    const before = Float32Array.from(model.getParameter(name).data() as Float32Array);
    const e = await rejects(saveCheckpoint(out, state(2), (d) => model.savePretrained(d), { afterWeights: () => { throw new Error('power cut'); } }));
    expect(e.code).to.equal('ERR_IO');
    expect(e.message).to.match(/checkpoint-2 failed: power cut; the previous checkpoints are intact/);
    expect(fs.readdirSync(out)).to.deep.equal(['checkpoint-1']);
    expect(latestCheckpoint(out)).to.equal(first);
    expect(readTrainerState(first).globalStep).to.equal(1);
    const reloaded = await AutoModel.fromPretrained(first, { quiet: true });
    expect(Array.from(reloaded.getParameter(name).data() as Float32Array)).to.deep.equal(Array.from(before));
    // a crash while writing the weights themselves (a bad target inside the temp dir) is cleaned up the same way
    const e2 = await rejects(saveCheckpoint(out, state(3), async (d) => { fs.writeFileSync(path.join(d, 'half.bin'), 'x'); throw new Error('disk full'); }));
    expect(e2.message).to.match(/disk full/);
    expect(fs.readdirSync(out)).to.deep.equal(['checkpoint-1']);
  });

  it('saveTotalLimit rotation deletes the oldest but never the best checkpoint', async () => {
    const out = tempDir('nodetune-ckpt-');
    const write = async (d: string) => fs.writeFileSync(path.join(d, 'w.bin'), 'w');
    for (const s of [10, 20, 30, 40]) await saveCheckpoint(out, state(s), write);
    const deleted = rotateCheckpoints(out, 2, path.join(out, 'checkpoint-10'));
    expect(deleted.map((d) => path.basename(d))).to.deep.equal(['checkpoint-20', 'checkpoint-30']);
    expect(listCheckpoints(out).map((c) => c.step)).to.deep.equal([10, 40]);
    rotateCheckpoints(out, 1, null);
    expect(listCheckpoints(out).map((c) => c.step)).to.deep.equal([40]);
    // limit 1 with a best checkpoint older than the newest keeps both
    await saveCheckpoint(out, state(50), write);
    await saveCheckpoint(out, state(60), write);
    expect(rotateCheckpoints(out, 1, path.join(out, 'checkpoint-40')).map((d) => path.basename(d))).to.deep.equal(['checkpoint-50']);
    expect(listCheckpoints(out).map((c) => c.step)).to.deep.equal([40, 60]);
  });

  it('trainer_state.json round-trips; the best checkpoint path is stored relative to outputDir', async () => {
    const out = tempDir('nodetune-ckpt-');
    const dir = await saveCheckpoint(out, state(5, path.join(out, 'checkpoint-5')), async () => undefined);
    const raw = JSON.parse(fs.readFileSync(path.join(dir, 'trainer_state.json'), 'utf8'));
    expect(raw.bestCheckpoint).to.equal('checkpoint-5');
    const s = readTrainerState(dir);
    expect(s.bestCheckpoint).to.equal(path.join(out, 'checkpoint-5'));
    expect(s.logHistory).to.deep.equal([{ step: 5, epoch: 0.5, loss: 0.2 }]);
    fs.writeFileSync(path.join(dir, 'trainer_state.json'), '{"version":1,"globalStep":"x"}');
    expect(throws(() => readTrainerState(dir)).message).to.match(/globalStep must be an integer/);
    expect(throws(() => readTrainerState(out)).code).to.equal('ERR_CHECKPOINT');
  });
});
