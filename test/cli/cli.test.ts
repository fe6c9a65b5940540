import { execFile } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { createDependencies } from '../../src/dependencies.js';
import { migrations } from '../../src/storage/migrations/index.js';
import { openDatabase } from '../../src/storage/open-database.js';
import {
  childEnv,
  CLI_ENTRY,
  cloneTemplateDatabase,
  REPO_ROOT,
  makeTempDir,
  randomApiKey,
  runCli,
  type SpawnedServer,
  spawnServer,
  stopAll,
  TEST_ENCRYPTION_KEY,
} from '../support/spawn-server.js';

/**
 * The CLI as a user runs it: `node --import tsx src/cli/main.ts ...` in a child process, against a
 * temporary SCHED_DATA_DIR (never ./data) or a PostgreSQL database cloned for the test.
 */

const postgresSkipReason = inject('postgresSkipReason');
/** A process start loads TypeScript and, on a fresh data dir, initializes PGlite: seconds each. */
const SLOW = 120_000;
const KEY_LINE = /^sk_[A-Za-z0-9_-]{40,}\n$/;

type Json = any;

async function get(server: SpawnedServer, url: string, key: string) {
  const response = await fetch(`${server.url}${url}`, {
    headers: { authorization: `Bearer ${key}` },
    signal: AbortSignal.timeout(10_000),
  });
  return { status: response.status, body: (await response.json()) as Json };
}

async function post(server: SpawnedServer, url: string, key: string, body: unknown) {
  const response = await fetch(`${server.url}${url}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(10_000),
  });
  return { status: response.status, body: (await response.json()) as Json };
}

/**
 * Module hooks (node:module register) that write the URL of every module the process loads, one a
 * line, to the file in SCHED_TEST_MODULE_LOG. Written to a temporary folder by the test that uses them.
 */
const RECORDER = `import { register } from 'node:module';
register('./hooks.mjs', import.meta.url, { data: { file: process.env.SCHED_TEST_MODULE_LOG } });
`;
const RECORDER_HOOKS = `import { appendFileSync } from 'node:fs';
let file;
export function initialize(data) { file = data.file; }
export async function load(url, context, nextLoad) {
  if (file) appendFileSync(file, url + '\\n');
  return nextLoad(url, context);
}
`;

/** Runs the CLI with the recorder (in `dir`), and returns what it loaded. */
function runCliRecordingModules(args: readonly string[], env: Record<string, string>, dir: string) {
  return new Promise<{ code: number | null; stdout: string; stderr: string; modules: string[] }>(
    (resolve, reject) => {
      fs.writeFileSync(path.join(dir, 'recorder.mjs'), RECORDER);
      fs.writeFileSync(path.join(dir, 'hooks.mjs'), RECORDER_HOOKS);
      const recorder = path.join(dir, 'recorder.mjs');
      const log = path.join(dir, 'modules.log');
      fs.rmSync(log, { force: true });
      const child = execFile(
        process.execPath,
        ['--import', 'tsx', '--import', recorder, CLI_ENTRY, ...args],
        {
          cwd: REPO_ROOT,
          env: childEnv({ ...env, SCHED_TEST_MODULE_LOG: log }),
          timeout: 60_000,
          killSignal: 'SIGKILL',
          encoding: 'utf8',
        },
        (error, stdout, stderr) => {
          if ((error as { signal?: string } | null)?.signal === 'SIGKILL') {
            reject(new Error(`sched ${args.join(' ')} did not finish\n${stderr}`));
            return;
          }
          const modules = fs.existsSync(log) ? fs.readFileSync(log, 'utf8').split('\n').filter(Boolean) : [];
          resolve({ code: child.exitCode, stdout, stderr, modules });
        },
      );
    },
  );
}

/** The modules that mean the application was loaded: the database, Fastify, the dependency builder. */
const HEAVY = [
  /\/node_modules\/fastify\//,
  /\/node_modules\/@electric-sql\/pglite\//,
  /\/node_modules\/kysely\//,
  /\/src\/dependencies\.ts$/,
];

/** A plain message, not a crash: no stack trace and not the usage text. */
function expectPlainMessage(stderr: string) {
  expect(stderr).not.toMatch(/^\s+at /m);
  expect(stderr).not.toContain('Usage:');
}

describe('sched CLI', { timeout: SLOW }, () => {
  const cleanups: (() => void)[] = [];
  const servers: SpawnedServer[] = [];

  afterEach(async () => {
    await stopAll(servers.splice(0));
    for (const cleanup of cleanups.splice(0)) cleanup();
  }, 30_000);

  function freshDataDir(): string {
    const temp = makeTempDir('cli');
    cleanups.push(temp.remove);
    return temp.dir;
  }

  async function serve(env: Record<string, string>): Promise<SpawnedServer> {
    const server = await spawnServer(env);
    servers.push(server);
    return server;
  }

  async function createKey(dataDir: string, org = 'acme', scopes = 'admin'): Promise<string> {
    const result = await runCli(['api-keys', 'create', '--org', org, '--scopes', scopes], {
      SCHED_DATA_DIR: dataDir,
    });
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(KEY_LINE);
    return result.stdout.trim();
  }

  it('--help prints the usage listing serve, migrate and api-keys and exits 0 without opening a database', async () => {
    const dataDir = freshDataDir();
    const result = await runCli(['--help'], { SCHED_DATA_DIR: dataDir });
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('Usage:');
    expect(result.stdout).toMatch(/^\s+sched serve\b/m);
    expect(result.stdout).toMatch(/^\s+sched migrate\b/m);
    expect(result.stdout).toMatch(/^\s+sched api-keys create\b/m);
    expect(result.stderr).toBe('');
    expect(fs.readdirSync(dataDir)).toEqual([]);
  });

  it('api-keys create on a fresh embedded data dir prints exactly one line, the key, and its messages on stderr', async () => {
    const dataDir = freshDataDir();
    const result = await runCli(['api-keys', 'create', '--org', 'acme', '--scopes', 'admin'], {
      SCHED_DATA_DIR: dataDir,
    });
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(KEY_LINE);
    const key = result.stdout.trim();
    expect(result.stderr).toContain('acme');
    expect(result.stderr).not.toContain(key);
    // The database lives in the data dir given, and the command let go of it when it finished.
    expect(fs.existsSync(path.join(dataDir, 'pgdata'))).toBe(true);
    expect(fs.existsSync(path.join(dataDir, 'sched.pid'))).toBe(false);
  });

  it('a key printed by api-keys create authenticates against serve on the same data dir and has admin rights', async () => {
    const dataDir = freshDataDir();
    const key = await createKey(dataDir);
    const server = await serve({ SCHED_DATA_DIR: dataDir });

    const resources = await get(server, '/resources', key);
    expect(resources.status).toBe(200);
    expect(resources.body.resources).toEqual([]);
    expect((await get(server, '/resources', `${key}x`)).status).toBe(401);

    const made = await post(server, '/api-keys', key, { name: 'reader', scopes: ['read'] });
    expect(made.status, JSON.stringify(made.body)).toBe(201);
    expect((await get(server, '/resources', made.body.key)).status).toBe(200);
    expect((await post(server, '/api-keys', made.body.key, { name: 'x', scopes: ['read'] })).status).toBe(
      403,
    );

    // The server made no key of its own: the installation already had one.
    const keys = await get(server, '/api-keys?limit=500', key);
    expect(keys.status).toBe(200);
    expect(keys.body.api_keys.map((k: Json) => k.name).sort()).toEqual([
      'created by sched api-keys create',
      'reader',
    ]);
  });

  it('api-keys create exits non-zero and says the embedded database is in use while a server holds the data dir', async () => {
    const dataDir = freshDataDir();
    const server = await serve({ SCHED_DATA_DIR: dataDir });

    const refused = await runCli(['api-keys', 'create', '--org', 'acme', '--scopes', 'admin'], {
      SCHED_DATA_DIR: dataDir,
    });
    expect(refused.code).not.toBe(0);
    expect(refused.stdout).toBe('');
    expect(refused.stderr).toContain(`is in use by another Sched process (pid ${server.pid})`);
    expectPlainMessage(refused.stderr);

    // Once the server has stopped, the same command works.
    expect(await server.stop()).toBe(0);
    expect(fs.existsSync(path.join(dataDir, 'sched.pid'))).toBe(false);
    await createKey(dataDir);
  });

  it('migrate on a fresh data dir applies every migration, and a second run says the database is up to date', async () => {
    const dataDir = freshDataDir();
    const first = await runCli(['migrate'], { SCHED_DATA_DIR: dataDir });
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toBe('');
    const applied = /^Applied: (.+)$/m.exec(first.stderr);
    expect(applied, first.stderr).not.toBeNull();
    expect(applied![1]!.split(', ')).toEqual(Object.keys(migrations));

    const second = await runCli(['migrate'], { SCHED_DATA_DIR: dataDir });
    expect(second.code, second.stderr).toBe(0);
    expect(second.stderr).toMatch(/up to date/);
    expect(second.stderr).not.toContain('Applied:');
  });

  it.each([
    ['PORT', 'abc'],
    ['LOG_LEVEL', 'loud'],
    ['DATABASE_URL', 'mysql://x'],
    ['DATABASE_POOL_SIZE', '0'],
    ['SCHED_BOOTSTRAP_API_KEY', 'short'],
  ])(
    'serve with %s=%s stops before starting, with a message naming the variable',
    async (variable, value) => {
      const dataDir = freshDataDir();
      const result = await runCli(
        ['serve'],
        { SCHED_DATA_DIR: dataDir, PORT: '0', [variable]: value },
        30_000,
      );
      expect(result.code).not.toBe(0);
      expect(result.stdout).toBe('');
      expect(result.stderr.split('\n')[0]).toContain(variable);
      expectPlainMessage(result.stderr);
      // Nothing was opened or created.
      expect(fs.readdirSync(dataDir)).toEqual([]);
    },
  );

  it.skipIf(postgresSkipReason)(
    `api-keys create with DATABASE_URL prints a key that authenticates in an app on the same PostgreSQL database${
      postgresSkipReason ? ` (skipped: ${postgresSkipReason})` : ''
    }`,
    async () => {
      const database = await cloneTemplateDatabase('cli');
      try {
        const dataDir = freshDataDir();
        const result = await runCli(['api-keys', 'create', '--org', 'acme', '--scopes', 'admin'], {
          DATABASE_URL: database.url,
          SCHED_DATA_DIR: dataDir,
        });
        expect(result.code, result.stderr).toBe(0);
        expect(result.stdout).toMatch(KEY_LINE);
        const key = result.stdout.trim();
        // PostgreSQL was used, not the embedded database.
        expect(fs.readdirSync(dataDir)).toEqual([]);

        const handle = await openDatabase({ kind: 'postgres', url: database.url, poolSize: 2 });
        try {
          const deps = await createDependencies(
            loadConfig({
              DATABASE_URL: database.url,
              SCHED_ENCRYPTION_KEY: TEST_ENCRYPTION_KEY,
              LOG_LEVEL: 'silent',
            }),
            { database: handle, processMetrics: false },
          );
          const app = await deps.buildApp();
          try {
            const headers = { authorization: `Bearer ${key}` };
            expect((await app.inject({ method: 'GET', url: '/resources', headers })).statusCode).toBe(200);
            expect((await app.inject({ method: 'GET', url: '/api-keys', headers })).statusCode).toBe(200);
          } finally {
            await app.close();
            await deps.close();
          }
          const owner = await handle.db
            .selectFrom('api_keys')
            .innerJoin('organizations', 'organizations.organization_id', 'api_keys.organization_id')
            .select(['organizations.name', 'api_keys.scopes'])
            .where('api_keys.key_prefix', '=', key.slice(0, 9))
            .execute();
          expect(owner).toEqual([{ name: 'acme', scopes: ['admin'] }]);
        } finally {
          await handle.close();
        }
      } finally {
        await database.drop();
      }
    },
  );

  it('SCHED_BOOTSTRAP_API_KEY makes serve ensure an admin key with that value for the organization "default", once', async () => {
    const dataDir = freshDataDir();
    const bootstrapKey = randomApiKey();
    const env = { SCHED_DATA_DIR: dataDir, SCHED_BOOTSTRAP_API_KEY: bootstrapKey };

    const first = await serve(env);
    const keys = await get(first, '/api-keys?limit=500', bootstrapKey);
    expect(keys.status).toBe(200);
    expect(keys.body.api_keys).toHaveLength(1);
    expect(keys.body.api_keys[0].scopes).toEqual(['admin']);
    expect(first.stderr()).not.toContain(bootstrapKey);
    expect(await first.stop()).toBe(0);

    // A key made for "default" by the CLI lands in the same organization as the bootstrap key...
    const other = await createKey(dataDir, 'default', 'read');
    // ...and a restart with the same value finds the key instead of adding another.
    const second = await serve(env);
    const after = await get(second, '/api-keys?limit=500', bootstrapKey);
    expect(after.status).toBe(200);
    const prefixes = after.body.api_keys.map((k: Json) => k.key_prefix);
    expect(prefixes).toHaveLength(2);
    expect(prefixes).toContain(bootstrapKey.slice(0, 9));
    expect(prefixes).toContain(other.slice(0, 9));
    expect((await get(second, '/resources', other)).status).toBe(200);
  });

  it('serve on a port in use exits 1 at once naming PORT, and the first admin key comes with the first start that listens, which warns about push over http', async () => {
    const dataDir = freshDataDir();
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const taken = (blocker.address() as net.AddressInfo).port;
    try {
      // runCli fails the test if the process lingers: the background workers must not keep it alive.
      const failed = await runCli(['serve'], { SCHED_DATA_DIR: dataDir, PORT: String(taken) }, 60_000);
      expect(failed.code, failed.stderr).toBe(1);
      expect(failed.stderr).toContain(`PORT: 127.0.0.1:${taken} is already in use`);
      expectPlainMessage(failed.stderr);
      // No key was made, so none was printed and lost.
      expect(failed.stderr).not.toMatch(/sk_[A-Za-z0-9_-]{40,}/);
    } finally {
      await new Promise<void>((resolve) => blocker.close(() => resolve()));
    }
    // Reached over plain http from outside: the start says push cannot work, and goes on.
    const server = await serve({ SCHED_DATA_DIR: dataDir, SCHED_PUBLIC_URL: 'http://sched.example.com' });
    expect(server.stderr()).toContain(
      'Warning: Google Calendar sends push notifications only to https addresses, and SCHED_PUBLIC_URL is http://sched.example.com',
    );
    const key = /^\s+(sk_[A-Za-z0-9_-]{40,})$/m.exec(server.stderr())?.[1];
    expect(key, server.stderr()).toBeDefined();
    expect((await get(server, '/resources', key!)).status).toBe(200);
  });

  it('an unknown command exits 2 with the usage on stderr', async () => {
    const result = await runCli(['frobnicate'], { SCHED_DATA_DIR: freshDataDir() });
    expect(result.code).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr).toContain('frobnicate');
    expect(result.stderr).toContain('Usage:');
  });

  it('--help and a subcommand --help load none of the application: no database, no Fastify', async () => {
    const dir = freshDataDir();
    const recorderDir = freshDataDir();
    for (const args of [['--help'], ['serve', '--help'], ['api-keys', 'create', '--help']]) {
      const startedAt = performance.now();
      const result = await runCliRecordingModules(args, { SCHED_DATA_DIR: dir }, recorderDir);
      const tookMs = performance.now() - startedAt;
      expect(result.code, result.stderr).toBe(0);
      expect(result.modules.some((url) => url.endsWith('/src/cli/main.ts'))).toBe(true);
      for (const heavy of HEAVY) expect(result.modules.filter((url) => heavy.test(url))).toEqual([]);
      // Measured for the record (the whole child, tsx included); the module list above is the check.
      console.info(`sched ${args.join(' ')}: ${Math.round(tookMs)} ms`);
    }
    // The same recorder sees the application once a command runs: the check above can fail.
    const migrate = await runCliRecordingModules(
      ['migrate'],
      { SCHED_DATA_DIR: path.join(dir, 'db') },
      recorderDir,
    );
    expect(migrate.code, migrate.stderr).toBe(0);
    expect(migrate.modules.some((url) => HEAVY[0]!.test(url))).toBe(true);
  });

  it('each subcommand has its own help, and the general help lists the Google and Outlook settings', async () => {
    const dir = freshDataDir();
    const serve = await runCli(['serve', '--help'], { SCHED_DATA_DIR: dir });
    expect(serve.code).toBe(0);
    expect(serve.stdout).toMatch(/^Usage: sched serve$/m);
    expect(serve.stdout).not.toContain('--scopes');
    const create = await runCli(['api-keys', 'create', '--help'], { SCHED_DATA_DIR: dir });
    expect(create.code).toBe(0);
    expect(create.stdout).toMatch(/^Usage: sched api-keys create --org NAME/m);
    for (const flag of ['--org', '--scopes', '--name']) expect(create.stdout).toContain(flag);
    const general = await runCli(['--help'], { SCHED_DATA_DIR: dir });
    for (const variable of [
      'SCHED_GOOGLE_CLIENT_ID',
      'SCHED_GOOGLE_CLIENT_SECRET',
      'SCHED_GOOGLE_API_URL',
      'SCHED_OUTLOOK_CLIENT_ID',
      'SCHED_OUTLOOK_CLIENT_SECRET',
      'SCHED_OUTLOOK_TOKEN_URL',
    ]) {
      expect(general.stdout).toContain(variable);
    }
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  it('refuses unknown flags with exit 2 naming the flag, before touching the database', async () => {
    const dir = freshDataDir();
    for (const [args, flag] of [
      [['serve', '--prot', '3000'], '--prot'],
      [['api-keys', 'create', '--org', 'acme', '--scopes', 'admin', '--orgs', 'x'], '--orgs'],
      [['migrate', '-x'], '-x'],
      // A flag of another command is no flag of this one.
      [['serve', '--org', 'acme'], '--org'],
    ] as const) {
      const result = await runCli(args, { SCHED_DATA_DIR: dir });
      expect(result.code, args.join(' ')).toBe(2);
      expect(result.stdout).toBe('');
      expect(result.stderr.split('\n')[0]).toContain(flag);
    }
    const missing = await runCli(['api-keys', 'create', '--org', 'acme', '--scopes'], {
      SCHED_DATA_DIR: dir,
    });
    expect(missing.code).toBe(2);
    expect(missing.stderr.split('\n')[0]).toContain('--scopes');
    expect(fs.readdirSync(dir)).toEqual([]);
  });
});
