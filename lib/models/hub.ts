/** Resolves a model directory or a Hugging Face repo id in the local Hugging Face cache. */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { NodetuneError } from '../errors';

/** The hub cache directory: HF_HUB_CACHE, else HF_HOME/hub, else ~/.cache/huggingface/hub. */
export function hubCacheDir(): string {
  if (process.env.HF_HUB_CACHE) return process.env.HF_HUB_CACHE;
  if (process.env.HF_HOME) return path.join(process.env.HF_HOME, 'hub');
  const xdg = process.env.XDG_CACHE_HOME;
  return path.join(xdg ?? path.join(os.homedir(), '.cache'), 'huggingface', 'hub');
}

/** A local directory for `pathOrRepoId` (a directory, or `name` / `org/name` in the cache at `revision`). */
export function resolveModelDir(pathOrRepoId: string, revision = 'main'): string {
  if (fs.existsSync(pathOrRepoId) && fs.statSync(pathOrRepoId).isDirectory()) return path.resolve(pathOrRepoId);
  const looksLikeRepo = /^[A-Za-z0-9][\w.-]*(\/[\w.-]+)?$/.test(pathOrRepoId) && !pathOrRepoId.includes('..');
  if (looksLikeRepo) {
    const repoDir = path.join(hubCacheDir(), `models--${pathOrRepoId.replace('/', '--')}`);
    const snapshots = path.join(repoDir, 'snapshots');
    if (fs.existsSync(snapshots)) {
      let rev = revision;
      const ref = path.join(repoDir, 'refs', revision);
      if (fs.existsSync(ref)) rev = fs.readFileSync(ref, 'utf8').trim();
      const dir = path.join(snapshots, rev);
      if (fs.existsSync(dir)) return dir;
      const all = fs.readdirSync(snapshots).filter((d) => fs.existsSync(path.join(snapshots, d, 'config.json')));
      if (all.length === 1) return path.join(snapshots, all[0]!);
    }
    throw new NodetuneError('ERR_IO',
      `${pathOrRepoId}: not a directory, and not in the Hugging Face cache (${repoDir}). Download it first ` +
        `(\`huggingface-cli download ${pathOrRepoId}\`) or pass a local directory.`, { file: repoDir });
  }
  throw new NodetuneError('ERR_IO', `model folder ${path.resolve(pathOrRepoId)} does not exist`, { file: pathOrRepoId });
}
