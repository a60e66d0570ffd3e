import { expect } from 'chai';
import * as nodetune from '../lib';

describe('15 the public API', () => {
  it('exports the names DESIGN.md fixes (those built so far)', () => {
    for (const name of ['AutoModel', 'AutoTokenizer', 'runtimeInfo', 'NodetuneError', 'Tensor', 'setNumThreads']) {
      expect(nodetune, name).to.have.property(name);
    }
    expect(nodetune.AutoModel.fromPretrained).to.be.a('function');
    expect(nodetune.AutoTokenizer.fromPretrained).to.be.a('function');
    expect(nodetune.data.DataLoader).to.be.a('function');
  });

  it('package.json points main, types, exports and bin at the compiled TypeScript', () => {
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    const pkg = require('../../package.json') as { main: string; types: string; bin: Record<string, string>; exports: Record<string, Record<string, string>> };
    expect(pkg.main).to.equal('dist/lib/index.js');
    expect(pkg.types).to.equal('dist/lib/index.d.ts');
    expect(pkg.exports['.']!.default).to.equal('./dist/lib/index.js');
    expect(pkg.bin.nodetune).to.equal('dist/lib/cli/main.js');
    expect(require.resolve('nodetune')).to.match(/dist[\\/]lib[\\/]index\.js$/);
  });
});
