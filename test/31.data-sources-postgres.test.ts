import * as v8 from 'v8';
import * as vm from 'vm';
import { expect } from 'chai';
import * as fs from 'fs';
import * as path from 'path';
import { readSource } from '../lib/data';
import type { Example, PostgresQuery, PostgresReadOptions } from '../lib/data';
import { NodetuneError } from '../lib/errors';
import { rejects, tempDir } from './helpers';
import { startPostgres } from './postgres-helpers';
import type { PgServer } from './postgres-helpers';
import { filesContaining, reviewRows, runCli, trainConfig } from './sources-helpers';
import { tinyModelDir } from './60.serve-helpers';

const ENV = 'NODETUNE_TEST_DATABASE_URL';

async function readQuery(query: PostgresQuery, opts: PostgresReadOptions = { task: 'classification', columns: { text: 'sentence', label: 'sentiment' } }): Promise<Example[]> {
  const out: Example[] = [];
  for await (const ex of readSource({ postgres: query }, opts)) out.push(ex);
  return out;
}

describe('31 data sources: PostgreSQL (a real server started in a temporary folder)', function () {
  this.timeout(180_000);
  let pg: PgServer;
  const work = tempDir('nodetune-pg-run-');

  before(async function () {
    const started = await startPostgres();
    if (typeof started === 'string') {
      console.log(`      skipping the PostgreSQL tests: ${started}`);
      this.skip();
    }
    pg = started as PgServer;
    process.env[ENV] = pg.url();
    await pg.sql('CREATE TABLE reviews (id serial PRIMARY KEY, sentence text NOT NULL, sentiment text NOT NULL, stars int)');
    const rows = reviewRows(96);
    await pg.sql(`INSERT INTO reviews (sentence, sentiment, stars) SELECT * FROM unnest($1::text[], $2::text[], $3::int[])`,
      [rows.map((r) => r.sentence), rows.map((r) => r.sentiment), rows.map((r, i) => (r.sentiment === 'pos' ? 4 : 1) + (i % 2))]);
  });

  after(async () => {
    delete process.env[ENV];
    await pg?.stop();
    fs.rmSync(work, { recursive: true, force: true });
  });

  const secrets = (): string[] => [pg.password, encodeURIComponent(pg.password), pg.url()];

  it('reads a query through a server-side cursor, a batch per fetch, rows mapped by `columns` and named by row', async () => {
    const fetches: number[] = [];
    const rows = await readQuery({ url: `env:${ENV}`, query: 'SELECT sentence, sentiment FROM reviews ORDER BY id LIMIT 50', name: 'reviews', batchSize: 8 },
      { task: 'classification', columns: { text: 'sentence', label: 'sentiment' }, onFetch: (n) => fetches.push(n) });
    expect(fetches).to.deep.equal([8, 8, 8, 8, 8, 8, 2]);
    expect(rows).to.have.length(50);
    expect(rows[0]).to.deep.equal({ text: reviewRows(1)[0]!.sentence, label: 'pos', source: { file: 'postgres:reviews', line: 1 } });
    expect(rows[49]!.source).to.deep.equal({ file: 'postgres:reviews', line: 50 });
    // Without a name, the source is the server and database (no user, no password); $1 parameters; dates as ISO text.
    const named = await readQuery({ url: `env:${ENV}`, query: "SELECT sentence AS text, TIMESTAMPTZ '2024-01-02 03:04:05+00' AS label FROM reviews WHERE sentiment = $1 LIMIT 2", params: ['pos'] }, { task: 'classification' });
    expect(named.map((e) => e.source)).to.deep.equal([1, 2].map((line) => ({ file: `postgres:127.0.0.1:${pg.port}/nodetune`, line })));
    expect(named[0]!.label).to.equal('2024-01-02T03:04:05.000Z');
  });

  it('a consumer that stops early closes the cursor and the connection (no session is left on the server)', async () => {
    process.env.NODETUNE_TEST_EARLY_URL = pg.url('nodetune', 'application_name=nodetune-early');
    let n = 0;
    for await (const ex of readSource({ postgres: { url: 'env:NODETUNE_TEST_EARLY_URL', query: 'SELECT sentence AS text FROM reviews', batchSize: 4 } })) {
      expect(ex.text).to.be.a('string');
      if (++n === 3) break;
    }
    let sessions = -1;
    for (let i = 0; i < 50 && sessions !== 0; i++) {
      const [row] = await pg.sql("SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'nodetune-early'");
      sessions = row!.n as number;
      if (sessions !== 0) await new Promise((r) => setTimeout(r, 100));
    }
    expect(sessions).to.equal(0);
    delete process.env.NODETUNE_TEST_EARLY_URL;
  });

  it('streams a table larger than the memory it may use (100k rows, ~40 MB of text)', async function () {
    await pg.sql("CREATE TABLE big AS SELECT g AS id, repeat(md5(g::text), 12) AS text FROM generate_series(1, 100000) g");
    // Live heap after a full collection (not RSS, which garbage not yet collected inflates on a busy machine): a
    // reader that kept the rows would hold the ~40 MB of text; a streaming one holds a batch.
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc') as () => void;
    gc();
    const before = process.memoryUsage().heapUsed;
    let peak = 0;
    let n = 0;
    let fetches = 0;
    for await (const ex of readSource({ postgres: { url: `env:${ENV}`, query: 'SELECT text FROM big ORDER BY id' } }, { task: 'causal-lm', onFetch: () => fetches++ })) {
      if (ex.text!.length !== 384) throw new Error(`row ${n + 1}: unexpected text`);
      if (++n % 20000 === 0) {
        gc();
        peak = Math.max(peak, process.memoryUsage().heapUsed - before);
      }
    }
    expect(n).to.equal(100000);
    expect(fetches).to.equal(201); // 500 rows a fetch, and an empty one that says the end
    expect(peak).to.be.lessThan(12 * 1024 * 1024);
  });

  it('a connection lost mid-stream is ERR_DATA naming the source and the last row read', async () => {
    process.env.NODETUNE_TEST_CUT_URL = pg.url('nodetune', 'application_name=nodetune-cut');
    const read: Example[] = [];
    const err = await rejects((async () => {
      for await (const ex of readSource({ postgres: { url: 'env:NODETUNE_TEST_CUT_URL', query: 'SELECT sentence AS text FROM reviews ORDER BY id', name: 'reviews', batchSize: 5 } })) {
        read.push(ex);
        if (read.length === 1) await pg.sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'nodetune-cut'");
      }
    })());
    delete process.env.NODETUNE_TEST_CUT_URL;
    expect(err).to.be.instanceOf(NodetuneError);
    expect(err.code).to.equal('ERR_DATA');
    expect(err.message).to.match(/^postgres:reviews: reading stopped after row 5: /);
    expect((err as NodetuneError).details.file).to.equal('postgres:reviews');
    expect(read).to.have.length(5);
  });

  it('typed errors name the source, never the password: bad query, bad label type, missing column, wrong password, unreachable server, unset variable', async () => {
    const q = (query: string, more: Partial<PostgresQuery> = {}) => (): Promise<Example[]> => readQuery({ url: `env:${ENV}`, query, name: 'reviews', ...more });
    const cases: Array<[() => Promise<unknown>, RegExp, Record<string, unknown>]> = [
      [q('SELECT sentence, sentiment FROM no_such_table'), /^postgres:reviews: the query failed: relation "no_such_table" does not exist$/, { field: 'query', sqlState: '42P01' }],
      // A server message that repeats the password (here as an integer it cannot parse) has it redacted.
      [q(`SELECT sentence, sentiment FROM reviews WHERE id = '${pg.password}'::int`), /^postgres:reviews: the query failed: invalid input syntax for type integer: "<redacted>"$/, { field: 'query', sqlState: '22P02' }],
      [q('SELECT sentence, ARRAY[1, 2] AS sentiment FROM reviews'), /^postgres:reviews:1: column "sentiment" must be a string or number label, got object$/, { line: 1, field: 'label' }],
      [q('SELECT sentence, stars FROM reviews'), /^postgres:reviews:1: missing column "sentiment" \(mapped to "label"\); available columns: sentence, stars$/, { line: 1, field: 'label' }],
      [q('SELECT 1', { url: pg.url().replace(encodeURIComponent(pg.password), 'not-the-password') }), /^postgres:reviews: cannot connect: password authentication failed for user "nodetune"$/, { sqlState: '28P01' }],
      [q('SELECT 1', { url: `postgres://nodetune:${encodeURIComponent(pg.password)}@127.0.0.1:1/nodetune`, name: undefined }), /^postgres:127\.0\.0\.1:1\/nodetune: cannot connect: connect ECONNREFUSED 127\.0\.0\.1:1$/, {}],
    ];
    for (const [read, message, details] of cases) {
      const err = await rejects(read());
      expect(err, err.stack).to.be.instanceOf(NodetuneError);
      expect(err.code).to.equal('ERR_DATA');
      expect(err.message).to.match(message);
      expect((err as NodetuneError).details).to.include(details);
      for (const s of secrets()) expect(err.message + JSON.stringify((err as NodetuneError).details)).not.to.contain(s);
    }
    // Not a URL (key=value text would otherwise be taken whole as the database's name, and shown).
    const keywords = await rejects(readQuery({ url: `host=127.0.0.1 password=${pg.password}`, query: 'SELECT 1', name: 'kv' }));
    expect(keywords.code).to.equal('ERR_CONFIG');
    expect(keywords.message).to.equal('postgres.url: not a connection URL (postgres://user:password@host:port/database or socket:/dir?db=database) for postgres:kv');
    const unset = await rejects(readQuery({ url: 'env:NODETUNE_TEST_UNSET_URL', query: 'SELECT 1' }));
    expect(unset.code).to.equal('ERR_CONFIG');
    expect(unset.message).to.equal('postgres.url: the environment variable NODETUNE_TEST_UNSET_URL is not set (postgres.url is env:NODETUNE_TEST_UNSET_URL)');
  });

  describe('nodetune train from a query', () => {
    let model: string;
    before(() => {
      model = tinyModelDir('bert-cls', 'encoder');
    });
    const query = (where: string, name: string, extra = ''): string =>
      `  { postgres: { url: env:${ENV}, query: 'SELECT sentence, sentiment FROM reviews WHERE ${where} ORDER BY id', name: ${name}, batchSize: 16${extra} } }`;

    it('trains end to end (train and validation from two queries); the connection string is nowhere in the output or the run folder', async () => {
      const config = path.join(work, 'pg.yaml');
      fs.writeFileSync(config, trainConfig(model, `  train:${query('id % 4 <> 0', 'reviews-train')}\n  validation:${query('id % 4 = 0', 'reviews-validation')}`, 'run-pg'));
      const r = await runCli(['train', config, '--quiet']);
      expect(r.code, r.err).to.equal(0);
      expect(r.out).to.contain('postgres:reviews-train: 72 examples');
      expect(r.out).to.contain('postgres:reviews-validation: 24 examples');
      expect(r.out).to.match(/validation accuracy\s+[\d.]+\s+[\d.]+/);
      const run = path.join(work, 'run-pg');
      for (const f of ['adapter/adapter_model.safetensors', 'adapter/labels.json', 'report.html']) expect(fs.existsSync(path.join(run, f)), f).to.equal(true);
      expect(filesContaining(run, secrets())).to.deep.equal([]);
      for (const s of secrets()) expect(r.out + r.err).not.to.contain(s);
    });

    it('a connection string written in the config works, with a warning that does not show it; it reaches no file of the run', async () => {
      const warnings: string[] = [];
      const onWarning = (w: Error & { code?: string }): void => {
        if (w.code === 'NODETUNE_SECRET_IN_CONFIG') warnings.push(w.message);
      };
      process.on('warning', onWarning);
      const config = path.join(work, 'plain.yaml');
      const plain = `  train: { postgres: { url: '${pg.url()}', query: 'SELECT sentence, sentiment FROM reviews', name: reviews } }`;
      fs.writeFileSync(config, trainConfig(model, plain, 'run-plain'));
      const r = await runCli(['train', config, '--quiet', '--training.maxSteps', '2']);
      await new Promise((res) => setImmediate(res)); // warnings are emitted on the next tick
      process.off('warning', onWarning);
      expect(r.code, r.err).to.equal(0);
      expect(warnings).to.have.length(1);
      expect(warnings[0]).to.contain('data.train.postgres.url: a secret written in the config is used as given');
      for (const s of secrets()) expect(warnings[0] + r.out + r.err).not.to.contain(s);
      expect(filesContaining(path.join(work, 'run-plain'), secrets())).to.deep.equal([]);
    });

    it('failures exit 1 with ERR_DATA naming the query source, never the password, and leave no run folder', async () => {
      const failing: Array<[string, string, RegExp]> = [
        ['unreachable', `  train: { postgres: { url: env:NODETUNE_TEST_DOWN_URL, query: 'SELECT 1' } }`, /ERR_DATA: postgres:127\.0\.0\.1:1\/nodetune: cannot connect: /],
        ['bad-query', `  train:${query('no_such_column = 1', 'reviews')}`, /ERR_DATA: postgres:reviews: the query failed: column "no_such_column" does not exist/],
        ['mid-stream', `  train: { postgres: { url: env:${ENV}, query: 'SELECT sentence, CASE WHEN id <= 40 THEN sentiment ELSE (1 / (id - id))::text END AS sentiment FROM reviews', name: reviews, batchSize: 8 } }`,
          /ERR_DATA: postgres:reviews: reading stopped after row 40: division by zero/],
        ['bad-label', `  train: { postgres: { url: env:${ENV}, query: 'SELECT sentence, ARRAY[stars] AS sentiment FROM reviews', name: reviews } }`, /ERR_DATA: postgres:reviews:1: column "sentiment" must be a string or number label/],
      ];
      // mid-stream: a sequential scan, computed a fetch at a time (ORDER BY would sort, and fail, before the first row).
      process.env.NODETUNE_TEST_DOWN_URL = `postgres://nodetune:${encodeURIComponent(pg.password)}@127.0.0.1:1/nodetune`;
      for (const [name, data, message] of failing) {
        const config = path.join(work, `${name}.yaml`);
        fs.writeFileSync(config, trainConfig(model, data, `run-${name}`));
        const r = await runCli(['train', config, '--quiet']);
        expect(r.code, `${name}: ${r.err}`).to.equal(1);
        expect(r.err, `${name}: ${r.err}`).to.match(message);
        for (const s of secrets()) expect(r.out + r.err, name).not.to.contain(s);
        expect(fs.existsSync(path.join(work, `run-${name}`)), `${name}: a run folder was left`).to.equal(false);
      }
      delete process.env.NODETUNE_TEST_DOWN_URL;
    });

    it('config errors exit 2 naming the key: an unset variable, an unknown key inside postgres, a missing query', async () => {
      const bad: Array<[string, string]> = [
        [`  train: { postgres: { url: env:NODETUNE_TEST_UNSET_URL, query: 'SELECT 1' } }`, 'data.train.postgres.url: the environment variable NODETUNE_TEST_UNSET_URL is not set'],
        [`  train: { postgres: { url: env:${ENV}, querry: 'SELECT 1' } }`, 'data.train.postgres.querry: unknown key (did you mean data.train.postgres.query?); allowed: url, query, params, name, batchSize, connectTimeoutMs'],
        [`  train: { postgres: { url: env:${ENV} } }`, 'data.train.postgres.query: is required'],
        [`  train: { postgres: { url: env:${ENV}, query: 'SELECT 1', params: [[1]] } }`, 'data.train.postgres.params: must be a list of values'],
      ];
      for (const [data, message] of bad) {
        const config = path.join(work, 'bad.yaml');
        fs.writeFileSync(config, trainConfig(model, data, 'run-bad'));
        const r = await runCli(['train', config]);
        expect(r.code, r.err).to.equal(2);
        expect(r.err).to.contain(message);
        expect(fs.existsSync(path.join(work, 'run-bad'))).to.equal(false);
      }
    });
  });
});
