import { type ChildProcessWithoutNullStreams, execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { createBootstrapKey } from '../../src/services/api-keys.js';
import { openDatabase } from '../../src/storage/open-database.js';
import type { Backend } from '../support/backends.js';
import { createOpenResource } from '../support/resources.js';
import {
  BUILT_CLI_ENTRY,
  childEnv,
  type ClonedDatabase,
  cloneTemplateDatabase,
  makeTempDir,
  REPO_ROOT,
  type SpawnedServer,
  spawnServer,
  TEST_ENCRYPTION_KEY,
} from '../support/spawn-server.js';
import { startTestApp, type TestApp } from '../support/test-app.js';

/**
 * `sched mcp` as an agent host runs it: the built CLI (dist/, built once per run by the global setup)
 * started by the SDK's stdio client, speaking MCP on its stdin and stdout.
 */

const SLOW = 120_000;
const postgresSkipReason = inject('postgresSkipReason');
const TOOLS = [
  'book',
  'cancel',
  'find_slots',
  'hold_slot',
  'list_booking_pages',
  'list_bookings',
  'reschedule',
];

type ToolAnswer = { isError?: boolean; structuredContent?: Record<string, unknown>; content: unknown };
type Json = any;

/** The child's environment: only what the test gives, never the parent's SCHED_API_KEY. */
function mcpEnv(env: Record<string, string>): Record<string, string> {
  const base = childEnv(env);
  if (!('SCHED_API_KEY' in env)) delete base.SCHED_API_KEY;
  return Object.fromEntries(
    Object.entries(base).filter((entry): entry is [string, string] => entry[1] !== undefined),
  );
}

type Connected = { client: Client; stderr: () => string };

async function connectStdio(env: Record<string, string>): Promise<Connected> {
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [BUILT_CLI_ENTRY, 'mcp'],
    cwd: REPO_ROOT,
    env: mcpEnv(env),
    stderr: 'pipe',
  });
  let stderr = '';
  transport.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString('utf8');
  });
  const client = new Client({ name: 'test-agent', version: '1.0.0' });
  try {
    await client.connect(transport);
  } catch (error) {
    throw new Error(`sched mcp did not start: ${(error as Error).message}\n${stderr}`);
  }
  return { client, stderr: () => stderr };
}

async function call(client: Client, name: string, args: Record<string, unknown>): Promise<ToolAnswer> {
  return (await client.callTool({ name, arguments: args })) as ToolAnswer;
}

type Exited = { code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string };

/** Runs the built CLI to completion; killed (and the test failed) if it outlives `timeoutMs`. */
function runBuilt(args: readonly string[], env: Record<string, string>, timeoutMs = 60_000) {
  return new Promise<Exited>((resolve, reject) => {
    const child = execFile(
      process.execPath,
      [BUILT_CLI_ENTRY, ...args],
      { cwd: REPO_ROOT, env: mcpEnv(env), timeout: timeoutMs, killSignal: 'SIGKILL', encoding: 'utf8' },
      (error, stdout, stderr) => {
        if ((error as { signal?: string } | null)?.signal === 'SIGKILL') {
          reject(new Error(`sched ${args.join(' ')} did not finish within ${timeoutMs} ms\n${stderr}`));
          return;
        }
        resolve({ code: child.exitCode, signal: child.signalCode, stdout, stderr });
      },
    );
    child.stdin?.end();
  });
}

/**
 * `sched mcp` spawned by hand, to see what the SDK client hides: its exit code, and that standard
 * output holds protocol messages only.
 */
function spawnMcp(env: Record<string, string>) {
  const child: ChildProcessWithoutNullStreams = spawn(process.execPath, [BUILT_CLI_ENTRY, 'mcp'], {
    cwd: REPO_ROOT,
    env: mcpEnv(env),
  });
  let stdout = '';
  let stderr = '';
  let unread = '';
  const answers = new Map<number, (message: Json) => void>();
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (chunk: string) => {
    stdout += chunk;
    unread += chunk;
    const lines = unread.split('\n');
    unread = lines.pop()!;
    for (const line of lines) {
      const message: Json = JSON.parse(line);
      answers.get(message.id)?.(message);
    }
  });
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk: string) => {
    stderr += chunk;
  });
  const exited = new Promise<Exited>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  const kill = setTimeout(() => child.kill('SIGKILL'), 60_000);
  void exited.then(() => clearTimeout(kill));
  return {
    child,
    exited,
    stdout: () => stdout,
    /** Sends one JSON-RPC request and resolves with its answer. */
    request(id: number, method: string, params: Record<string, unknown>): Promise<Json> {
      const answered = new Promise<Json>((resolve) => answers.set(id, resolve));
      child.stdin.write(`${JSON.stringify({ jsonrpc: '2.0', id, method, params })}\n`);
      return Promise.race([
        answered,
        exited.then((ended) => {
          throw new Error(`sched mcp exited (${ended.code}) before answering ${method}:\n${ended.stderr}`);
        }),
      ]);
    },
  };
}

const INITIALIZE = {
  protocolVersion: '2025-06-18',
  capabilities: {},
  clientInfo: { name: 'hand', version: '1.0.0' },
};

/** Every line of standard output is a JSON-RPC message: nothing else was printed there. */
function expectOnlyProtocol(stdout: string) {
  const lines = stdout.split('\n').filter((line) => line !== '');
  expect(lines.length).toBeGreaterThan(0);
  for (const line of lines) expect(JSON.parse(line)).toMatchObject({ jsonrpc: '2.0' });
}

/** A plain message on stderr naming SCHED_API_KEY, no stack trace, nothing on stdout. */
function expectKeyRefused(result: Exited) {
  expect(result.code).not.toBe(0);
  expect(result.code).not.toBeNull();
  expect(result.stdout).toBe('');
  expect(result.stderr).toContain('SCHED_API_KEY');
  expect(result.stderr).not.toMatch(/^\s+at /m);
}

/** Tomorrow (by the real clock, which the child runs on) at `hh:mm` UTC. */
function tomorrowAt(time: string): string {
  const day = new Date(Date.now() + 24 * 3600_000).toISOString().slice(0, 10);
  return `${day}T${time}:00Z`;
}

describe('sched mcp without SCHED_API_KEY', { timeout: SLOW }, () => {
  it('exits non-zero with a message naming SCHED_API_KEY and opens no database', async () => {
    const temp = makeTempDir('mcp-nokey');
    try {
      const result = await runBuilt(['mcp'], { SCHED_DATA_DIR: temp.dir });
      expectKeyRefused(result);
      expect(result.stderr).toMatch(/SCHED_API_KEY: is not set/);
      expect(fs.readdirSync(temp.dir)).toEqual([]);
    } finally {
      temp.remove();
    }
  });

  it('is listed in --help', async () => {
    const result = await runBuilt(['--help'], {});
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^\s+sched mcp\b/m);
    expect(result.stdout).toContain('SCHED_API_KEY');
  });
});

const postgresSuffix = postgresSkipReason ? ` — SKIPPED: ${postgresSkipReason}` : '';
describe.skipIf(postgresSkipReason)(`sched mcp on PostgreSQL${postgresSuffix}`, { timeout: SLOW }, () => {
  let database: ClonedDatabase;
  let t: TestApp;
  let agentKey: string;
  let agentKeyId: string;
  let env: Record<string, string>;
  const open: Connected[] = [];

  beforeAll(async () => {
    database = await cloneTemplateDatabase('mcp');
    // The test's own app on the same database, to make resources and read what the agent did.
    const backend: Backend = {
      name: 'postgres',
      skipReason: undefined,
      open: () => openDatabase({ kind: 'postgres', url: database.url, poolSize: 2 }),
    };
    t = await startTestApp(backend);
    const made = await createBootstrapKey(t.database.db, {
      organization: 'acme',
      scopes: ['read', 'write'],
      name: 'phone agent',
    });
    agentKey = made.key;
    agentKeyId = made.apiKeyId;
    env = {
      DATABASE_URL: database.url,
      SCHED_ENCRYPTION_KEY: TEST_ENCRYPTION_KEY,
      DATABASE_POOL_SIZE: '2',
      LOG_LEVEL: 'info',
    };
  });

  afterEach(async () => {
    await Promise.allSettled(open.splice(0).map((connected) => connected.client.close()));
  });

  afterAll(async () => {
    await t?.close();
    await database?.drop();
  });

  async function agent(key = agentKey): Promise<Client> {
    const connected = await connectStdio({ ...env, SCHED_API_KEY: key });
    open.push(connected);
    return connected.client;
  }

  it('lists all seven tools', async () => {
    const client = await agent();
    const { tools } = await client.listTools();
    expect(tools.map((tool) => tool.name).sort()).toEqual(TOOLS);
    const pages = tools.find((tool) => tool.name === 'list_booking_pages')!;
    expect(pages.description).toContain('GET /booking-pages');
    expect(Object.keys(pages.inputSchema.properties ?? {}).sort()).toEqual(['cursor', 'limit']);
  });

  it('books through the book tool: the booking exists and mcp.book is audited with the key label', async () => {
    const resource = await createOpenResource(t, { name: 'Dr. Ada', kind: 'person', time_zone: 'UTC' });
    const client = await agent();
    const booked = await call(client, 'book', {
      resource_ids: [resource],
      start_time: tomorrowAt('09:00'),
      end_time: tomorrowAt('09:30'),
      title: 'Check-up',
      attendees: [{ email: 'caller@example.com', name: 'Caller' }],
    });
    expect(booked.isError, JSON.stringify(booked.structuredContent)).toBeFalsy();
    expect(booked.structuredContent).toMatchObject({ status: 'confirmed', title: 'Check-up' });
    const bookingId = booked.structuredContent!.booking_id as string;

    const stored = await t.request('GET', `/bookings/${bookingId}`);
    expect(stored.statusCode, stored.body).toBe(200);
    expect(stored.json()).toMatchObject({
      booking_id: bookingId,
      resource_ids: [resource],
      start_time: tomorrowAt('09:00'),
      status: 'confirmed',
    });

    const audit = (await t.request('GET', '/audit-log', { query: { limit: '100' } })).json();
    const entries = audit.entries as { action: string; actor: string; target_id: string }[];
    const mcpBook = entries.filter((entry) => entry.action === 'mcp.book');
    expect(mcpBook).toHaveLength(1);
    expect(mcpBook[0]!.actor).toBe(`api_key:${agentKeyId}`);
    // The booking's own entry, written by the API, carries the same key.
    const created = entries.find(
      (entry) => entry.target_id === bookingId && !entry.action.startsWith('mcp.'),
    );
    expect(created?.actor).toBe(`api_key:${agentKeyId}`);

    // Another organization's agent does not see it.
    const other = await createBootstrapKey(t.database.db, { organization: 'globex', scopes: ['read'] });
    const outsider = await agent(other.key);
    const listed = await call(outsider, 'list_bookings', {});
    expect(listed.isError).toBeFalsy();
    expect(listed.structuredContent!.bookings).toEqual([]);
  });

  it('keeps stdout for the protocol while logging at info on stderr, and exits 0 on SIGTERM', async () => {
    const mcp = spawnMcp({ ...env, SCHED_API_KEY: agentKey });
    const initialized = await mcp.request(1, 'initialize', INITIALIZE);
    expect(initialized.result.serverInfo).toMatchObject({ name: 'sched' });
    mcp.child.stdin.write(`${JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' })}\n`);
    const listed = await mcp.request(2, 'tools/call', { name: 'list_bookings', arguments: { limit: 5 } });
    expect(listed.result.isError).toBeUndefined();
    expect(listed.result.structuredContent).toMatchObject({ next_cursor: null });

    mcp.child.kill('SIGTERM');
    const ended = await mcp.exited;
    expect(ended.code, ended.stderr).toBe(0);
    expectOnlyProtocol(ended.stdout);
    // The request was logged, on stderr.
    expect(ended.stderr).toContain('"url":"/bookings?limit=5"');
    expect(ended.stderr).toContain('Received SIGTERM');
  });

  it('an unknown key exits non-zero with a message naming SCHED_API_KEY', async () => {
    const result = await runBuilt(['mcp'], { ...env, SCHED_API_KEY: `${agentKey}x` });
    expectKeyRefused(result);
    expect(result.stderr).toContain('not valid or has been revoked');
  });

  it('a revoked key exits non-zero with a message naming SCHED_API_KEY', async () => {
    const made = await createBootstrapKey(t.database.db, { organization: 'acme', scopes: ['read'] });
    const revoked = await t.request('DELETE', `/api-keys/${made.apiKeyId}`);
    expect(revoked.statusCode, revoked.body).toBe(204);
    const result = await runBuilt(['mcp'], { ...env, SCHED_API_KEY: made.key });
    expectKeyRefused(result);
    expect(result.stderr).toContain('not valid or has been revoked');
  });
});

describe('sched mcp on the embedded database', { timeout: SLOW }, () => {
  const cleanups: (() => void)[] = [];
  const servers: SpawnedServer[] = [];

  afterEach(async () => {
    await Promise.allSettled(servers.splice(0).map((server) => server.stop()));
    for (const cleanup of cleanups.splice(0)) cleanup();
  });

  function freshDataDir(): string {
    const temp = makeTempDir('mcp');
    cleanups.push(temp.remove);
    return temp.dir;
  }

  async function createKey(dataDir: string): Promise<string> {
    const made = await runBuilt(['api-keys', 'create', '--org', 'acme', '--scopes', 'read,write'], {
      SCHED_DATA_DIR: dataDir,
    });
    expect(made.code, made.stderr).toBe(0);
    return made.stdout.trim();
  }

  it('serves the tools with a key from api-keys create, owns the data dir meanwhile, and lets go at the end', async () => {
    const dataDir = freshDataDir();
    const key = await createKey(dataDir);
    const connected = await connectStdio({ SCHED_DATA_DIR: dataDir, SCHED_API_KEY: key });
    try {
      const { tools } = await connected.client.listTools();
      expect(tools.map((tool) => tool.name).sort()).toEqual(TOOLS);
      const listed = await call(connected.client, 'list_bookings', {});
      expect(listed.isError, JSON.stringify(listed.structuredContent)).toBeFalsy();
      expect(listed.structuredContent).toEqual({ bookings: [], next_cursor: null });
      const invalid = await call(connected.client, 'find_slots', {
        resource_ids: ['not-a-uuid'],
        start: 'soon',
        end: tomorrowAt('10:00'),
        duration_minutes: 30,
      });
      expect(invalid.isError).toBe(true);
      expect(invalid.structuredContent).toMatchObject({ status: 400 });
      expect(connected.stderr()).toMatch(/acting as api_key:[0-9a-f-]{36}, using the embedded database/);

      // While the agent's server runs, it is the data dir's one owner.
      const refused = await runBuilt(['api-keys', 'create', '--org', 'acme', '--scopes', 'read'], {
        SCHED_DATA_DIR: dataDir,
      });
      expect(refused.code).not.toBe(0);
      expect(refused.stderr).toContain('is in use by another Sched process');
    } finally {
      await connected.client.close();
    }
  });

  it('answers what was asked before stdin ended, then closes the database and exits 0', async () => {
    const dataDir = freshDataDir();
    const key = await createKey(dataDir);
    const mcp = spawnMcp({ SCHED_DATA_DIR: dataDir, SCHED_API_KEY: key, LOG_LEVEL: 'info' });
    await mcp.request(1, 'initialize', INITIALIZE);
    // A call and the end of input at once: the answer still comes.
    mcp.child.stdin.write(`${JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' })}\n`);
    const answered = mcp.request(2, 'tools/call', { name: 'list_bookings', arguments: {} });
    mcp.child.stdin.end();
    const answer = await answered;
    expect(answer.result.structuredContent).toEqual({ bookings: [], next_cursor: null });
    const ended = await mcp.exited;
    expect(ended.code, ended.stderr).toBe(0);
    expectOnlyProtocol(ended.stdout);
    expect(fs.existsSync(path.join(dataDir, 'sched.pid'))).toBe(false);
    expect(ended.stderr).toContain('The client closed standard input');
  });

  it('says plainly that a running server holds the data dir, and exits non-zero', async () => {
    const dataDir = freshDataDir();
    const key = await createKey(dataDir);
    const server = await spawnServer({ SCHED_DATA_DIR: dataDir }, 60_000, { entry: 'built' });
    servers.push(server);
    const result = await runBuilt(['mcp'], { SCHED_DATA_DIR: dataDir, SCHED_API_KEY: key });
    expect(result.code).not.toBe(0);
    expect(result.stdout).toBe('');
    expect(result.stderr).toContain(`is in use by another Sched process (pid ${server.pid})`);
    expect(result.stderr).toContain('/mcp');
    expect(result.stderr).not.toMatch(/^\s+at /m);
  });
});
