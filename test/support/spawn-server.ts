import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { inject } from 'vitest';
import { databaseUrl, withAdminClient } from './postgres.js';

/** The repository root: children run from here so `--import tsx` and relative paths resolve. */
export const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const CLI_ENTRY = path.join(REPO_ROOT, 'src/cli/main.ts');
/** The built CLI, as `npm start` runs it (`npm ci` builds it through the prepare step). */
export const BUILT_CLI_ENTRY = path.join(REPO_ROOT, 'dist/cli/main.js');

/** How a child server is started: from the TypeScript sources, or from the built `dist/`. */
export type ServerEntry = 'source' | 'built';

function entryArgs(entry: ServerEntry): string[] {
  return entry === 'built' ? [BUILT_CLI_ENTRY] : ['--import', 'tsx', CLI_ENTRY];
}

/** Settings the CLI reads; the parent's values never leak into a child, each test gives its own. */
const SCHED_VARIABLES = [
  'PORT',
  'HOST',
  'SCHED_DATA_DIR',
  'DATABASE_URL',
  'DATABASE_POOL_SIZE',
  'SCHED_ENCRYPTION_KEY',
  'SCHED_ENCRYPTION_KEY_FILE',
  'SCHED_BOOTSTRAP_API_KEY',
  'SCHED_OUTBOUND_ALLOW',
  'SCHED_WEBHOOK_LEASE_SECONDS',
  'SCHED_PUBLIC_URL',
  'SCHED_CALENDAR_PROVIDERS',
  'SCHED_PUBLIC_RATE_LIMIT',
  'SCHED_TRUST_PROXY',
  'SCHED_API_KEY',
  'LOG_LEVEL',
];
const SCHED_PREFIXES = ['SCHED_GOOGLE_', 'SCHED_OUTLOOK_'];

/** Servers on a shared PostgreSQL need an encryption key; all of this run's children share one. */
export const TEST_ENCRYPTION_KEY = randomBytes(32).toString('base64');

export function childEnv(env: Record<string, string>): NodeJS.ProcessEnv {
  const base: NodeJS.ProcessEnv = { ...process.env };
  for (const name of Object.keys(base)) {
    if (SCHED_VARIABLES.includes(name) || SCHED_PREFIXES.some((prefix) => name.startsWith(prefix)))
      delete base[name];
  }
  // As `npm start` runs the server (see README, "Memory"): without it, the parser threads' malloc
  // arenas keep what they once held, and a process that synced several large calendars stays larger.
  return { MALLOC_ARENA_MAX: '2', ...base, ...env };
}

/** Every child still running; killed hard if the test worker exits without stopping them. */
const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

export type CliResult = {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
};

/** Runs `node --import tsx src/cli/main.ts ...args` to completion, killed after `timeoutMs`. */
export function runCli(
  args: readonly string[],
  env: Record<string, string>,
  timeoutMs = 45_000,
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      process.execPath,
      ['--import', 'tsx', CLI_ENTRY, ...args],
      { cwd: REPO_ROOT, env: childEnv(env), timeout: timeoutMs, killSignal: 'SIGKILL', encoding: 'utf8' },
      (error, stdout, stderr) => {
        running.delete(child);
        const signal = (error as { signal?: NodeJS.Signals | null } | null)?.signal ?? null;
        if (signal === 'SIGKILL') {
          reject(new Error(`sched ${args.join(' ')} did not finish within ${timeoutMs} ms\n${stderr}`));
          return;
        }
        resolve({ code: child.exitCode, signal, stdout, stderr });
      },
    );
    running.add(child);
  });
}

/** A port nobody listens on right now (the OS picks it); servers retry if another process wins it. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.unref();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      probe.close(() => {
        if (address && typeof address === 'object') resolve(address.port);
        else reject(new Error('no port'));
      });
    });
  });
}

export type SpawnedServer = {
  url: string;
  pid: number;
  /** What the process wrote to stderr so far (its start-up and shutdown messages). */
  stderr(): string;
  /** What it wrote to stdout so far: its log lines (LOG_LEVEL defaults to warn here), the last 1 MB. */
  stdout(): string;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves with the exit code once the process is gone. */
  stop(graceMs?: number): Promise<number | null>;
  /**
   * Sends `signal` at once, no grace (SIGKILL: a crash); resolves with the signal that ended the process
   * once it is gone, or null when it had already exited on its own.
   */
  kill(signal: NodeJS.Signals): Promise<NodeJS.Signals | null>;
};

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const OUTPUT_LIMIT = 1024 * 1024;

/** The last line `sched serve` prints at start, whether it made the first key or not. */
const STARTED = /^(?:Try: curl| {2}npx sched api-keys create)[^\n]*\n/m;

async function startOnce(
  env: Record<string, string>,
  port: number,
  timeoutMs: number,
  entry: ServerEntry,
): Promise<SpawnedServer | { portTaken: string }> {
  const child = spawn(process.execPath, [...entryArgs(entry), 'serve'], {
    cwd: REPO_ROOT,
    env: childEnv({
      HOST: '127.0.0.1',
      LOG_LEVEL: 'warn',
      SCHED_ENCRYPTION_KEY: TEST_ENCRYPTION_KEY,
      ...env,
      PORT: String(port),
    }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(child);
  let stderr = '';
  let stdout = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk: string) => {
    stderr = (stderr + chunk).slice(-OUTPUT_LIMIT);
  });
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (chunk: string) => {
    stdout = (stdout + chunk).slice(-OUTPUT_LIMIT);
  });
  let endedBy: NodeJS.Signals | null = null;
  const exited = new Promise<number | null>((resolve) => {
    child.once('exit', (code, signal) => {
      running.delete(child);
      endedBy = signal;
      resolve(code);
    });
  });
  let gone = false;
  void exited.then(() => {
    gone = true;
  });

  const stop = async (graceMs = 5_000): Promise<number | null> => {
    if (!gone) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      try {
        return await exited;
      } finally {
        clearTimeout(timer);
      }
    }
    return exited;
  };

  const kill = async (signal: NodeJS.Signals): Promise<NodeJS.Signals | null> => {
    if (!gone) child.kill(signal);
    await exited;
    return endedBy;
  };

  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (gone) {
      const code = await exited;
      if (/EADDRINUSE|already in use/.test(stderr)) return { portTaken: stderr };
      throw new Error(`sched serve exited with ${code} before it was healthy:\n${stderr}`);
    }
    try {
      const response = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(1_000) });
      // Healthy, and done telling the operator what it printed at start (the last line is the
      // first key's curl example or how to make a key): tests read those lines.
      if (response.ok && STARTED.test(stderr)) {
        return { url, pid: child.pid!, stderr: () => stderr, stdout: () => stdout, stop, kill };
      }
    } catch {
      // Not listening yet.
    }
    await sleep(100);
  }
  await stop(1_000);
  throw new Error(`sched serve was not healthy within ${timeoutMs} ms:\n${stderr}`);
}

/**
 * Starts `sched serve` as its own process on 127.0.0.1 and a free port, and waits for /healthz.
 * `env` gives DATABASE_URL or SCHED_DATA_DIR and anything else; LOG_LEVEL defaults to warn.
 */
export async function spawnServer(
  env: Record<string, string> | ((port: number) => Record<string, string>),
  timeoutMs = 45_000,
  options: { entry?: ServerEntry } = {},
): Promise<SpawnedServer> {
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const started = await startOnce(
      typeof env === 'function' ? env(port) : env,
      port,
      timeoutMs,
      options.entry ?? 'source',
    );
    if (!('portTaken' in started)) return started;
  }
  throw new Error('sched serve could not find a free port in three attempts');
}

/** Stops every server given, even when some fail to stop. */
export async function stopAll(servers: readonly (SpawnedServer | undefined)[]): Promise<void> {
  await Promise.allSettled(servers.map(async (server) => server?.stop()));
}

/** A JSON request to a spawned server with an API key: the status and the parsed body (null if none). */
export async function apiRequest(
  server: { url: string },
  key: string,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; body: Record<string, any> }> {
  const response = await fetch(`${server.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${key}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
  const text = await response.text();
  return { status: response.status, body: (text === '' ? null : JSON.parse(text)) as Record<string, any> };
}

/** A 40-character key, as SCHED_BOOTSTRAP_API_KEY would be set by an operator. */
export function randomApiKey(): string {
  return randomBytes(30).toString('base64url');
}

export function makeTempDir(label: string): { dir: string; remove: () => void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `sched-${label}-`));
  return { dir, remove: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

let cloneCounter = 0;

export type ClonedDatabase = {
  name: string;
  url: string;
  /** A client on this database, ended by the caller. */
  connect(): Promise<pg.Client>;
  drop(): Promise<void>;
};

/**
 * A database of its own from the run's migrated PostgreSQL template. The name starts with the template's
 * and `_c`, so the global teardown drops it too if this process dies before drop().
 */
export async function cloneTemplateDatabase(label: string): Promise<ClonedDatabase> {
  const template = inject('postgresTemplate');
  if (!template) throw new Error('PostgreSQL is not available in this run');
  const name = `${template}_c${process.pid}_${label}${cloneCounter++}`;
  await withAdminClient((client) => client.query(`create database "${name}" template "${template}"`));
  const url = databaseUrl(name);
  return {
    name,
    url,
    connect: async () => {
      const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3_000 });
      await client.connect();
      return client;
    },
    drop: () =>
      withAdminClient(async (client) => {
        await client.query(`drop database if exists "${name}" with (force)`);
      }),
  };
}
