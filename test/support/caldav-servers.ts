import { spawn, spawnSync, type ChildProcess, type SpawnOptions } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { mkcalendarBody } from '../../src/calendar/providers/caldav/caldav-xml.js';
import { waitFor } from './wait-for.js';

export type CalDavServerKind = 'radicale' | 'xandikos' | 'davical';
export const CALDAV_SERVER_KINDS: readonly CalDavServerKind[] = ['radicale', 'xandikos', 'davical'];

export type CalDavServer = {
  kind: CalDavServerKind;
  /** Where a user would point a client: the host root, or DAViCal's /caldav.php/. */
  rootUrl: string;
  /** A calendar made at startup. */
  calendarUrl: string;
  username: string;
  password: string;
  /** From spawn to a ready calendar. */
  startupMs: number;
  /** Makes a new empty calendar and returns its collection URL (with a trailing slash). */
  newCalendar(name: string): Promise<string>;
  /** A request with the user's credentials, for changing calendars behind a provider's back. */
  request(
    method: string,
    url: string,
    init?: { body?: string; headers?: Record<string, string> },
  ): Promise<Response>;
  stop(): Promise<void>;
};

const INSTALL_HINT = 'run scripts/install-caldav-servers.sh';
const DAVICAL_HTDOCS = '/usr/share/davical/htdocs';
const DAVICAL_CREATE_DB = '/usr/share/davical/dba/create-database.sh';
// Non-ASCII on purpose: Basic credentials are UTF-8 (RFC 7617), and both servers check them byte for byte.
const PASSWORD = 'pässwörd-1';

/** Whether a missing server must fail the run rather than skip (CI must never skip silently). */
function skippingForbidden(): boolean {
  const ci = process.env.CI;
  return ci !== undefined && ci !== '' && ci !== 'false' && ci !== '0';
}

/**
 * Why this server's tests cannot run here, or undefined when they can. Under CI nothing is skipped:
 * the start fails instead, naming what is missing.
 */
export function calDavServerSkipReason(kind: CalDavServerKind): string | undefined {
  const missing = missingPart(kind);
  if (!missing || skippingForbidden()) return undefined;
  return `${missing} (${INSTALL_HINT})`;
}

function missingPart(kind: CalDavServerKind): string | undefined {
  if (kind === 'radicale') return which('radicale') ? undefined : 'radicale is not installed';
  if (kind === 'xandikos') return which('xandikos') ? undefined : 'xandikos is not installed';
  if (!which('php')) return 'php-cli is not installed (DAViCal needs it)';
  if (!fs.existsSync(path.join(DAVICAL_HTDOCS, 'caldav.php')) || !fs.existsSync('/etc/davical')) {
    return 'davical is not installed';
  }
  const pgsql = spawnSync('php', ['-r', 'exit(extension_loaded("pgsql") ? 0 : 1);']);
  if (pgsql.status !== 0) return 'php-pgsql is not installed (DAViCal needs it)';
  if (!postgresBin()) return 'PostgreSQL server binaries are not installed (DAViCal needs them)';
  if (!which('psql')) return 'psql is not installed (DAViCal needs it)';
  if (process.getuid?.() === 0 && !postgresUser()) return 'there is no postgres user to run PostgreSQL as';
  return undefined;
}

function which(command: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    const candidate = path.join(dir, command);
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      return candidate;
    } catch {
      // not in this directory
    }
  }
  return undefined;
}

function postgresBin(): string | undefined {
  const root = '/usr/lib/postgresql';
  const versions = fs.existsSync(root) ? fs.readdirSync(root).sort((a, b) => Number(b) - Number(a)) : [];
  const version = versions.find((v) => fs.existsSync(path.join(root, v, 'bin', 'initdb')));
  return version ? path.join(root, version, 'bin') : undefined;
}

function postgresUser(): { uid: number; gid: number } | undefined {
  const line = fs
    .readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((entry) => entry.startsWith('postgres:'));
  const [, , uid, gid] = line?.split(':') ?? [];
  return uid && gid ? { uid: Number(uid), gid: Number(gid) } : undefined;
}

type Running = { dir: string; children: ChildProcess[]; postmaster?: ChildProcess };
const running = new Set<Running>();

// A worker that dies without running afterAll still takes its servers with it.
process.once('exit', () => {
  for (const server of running) {
    for (const child of server.children) child.kill('SIGKILL');
    server.postmaster?.kill('SIGQUIT');
    fs.rmSync(server.dir, { recursive: true, force: true, maxRetries: 2 });
  }
});

export async function startCalDavServer(kind: CalDavServerKind): Promise<CalDavServer> {
  const missing = missingPart(kind);
  if (missing) throw new Error(`cannot start ${kind}: ${missing} (${INSTALL_HINT})`);
  const started = Date.now();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `sched-${kind}-`));
  const state: Running = { dir, children: [] };
  running.add(state);
  try {
    const base =
      kind === 'radicale'
        ? await startRadicale(state)
        : kind === 'xandikos'
          ? await startXandikos(state)
          : await startDavical(state);
    const authorization = `Basic ${Buffer.from(`${base.username}:${base.password}`).toString('base64')}`;
    const request: CalDavServer['request'] = (method, url, init = {}) =>
      fetch(url, {
        method,
        headers: { authorization, ...init.headers },
        ...(init.body === undefined ? {} : { body: init.body }),
      });
    const newCalendar = async (name: string) => {
      const url = new URL(`${encodeURIComponent(name)}/`, base.homeUrl).toString();
      const response = await request('MKCALENDAR', url, {
        body: mkcalendarBody(name),
        headers: { 'content-type': 'application/xml; charset=utf-8' },
      });
      const text = await response.text();
      if (response.status !== 201) throw new Error(`MKCALENDAR ${url} answered ${response.status}: ${text}`);
      return url;
    };
    const calendarUrl = base.calendarUrl ?? (await newCalendar('calendar'));
    return {
      kind,
      rootUrl: base.rootUrl,
      calendarUrl,
      username: base.username,
      password: base.password,
      startupMs: Date.now() - started,
      newCalendar,
      request,
      stop: () => stop(state),
    };
  } catch (error) {
    await stop(state);
    throw error;
  }
}

type Base = { rootUrl: string; homeUrl: string; calendarUrl?: string; username: string; password: string };

async function startRadicale(state: Running): Promise<Base> {
  const dir = state.dir;
  fs.writeFileSync(path.join(dir, 'users'), `alice:${PASSWORD}\n`);
  const port = await serve(state, 'radicale', (port) => {
    fs.writeFileSync(
      path.join(dir, 'config'),
      [
        '[server]',
        `hosts = 127.0.0.1:${port}`,
        '[auth]',
        'type = htpasswd',
        `htpasswd_filename = ${path.join(dir, 'users')}`,
        'htpasswd_encryption = plain',
        '[rights]',
        'type = owner_only',
        '[storage]',
        `filesystem_folder = ${path.join(dir, 'collections')}`,
        '[web]',
        'type = none',
        '[logging]',
        'level = warning',
        '',
      ].join('\n'),
    );
    return {
      command: 'radicale',
      args: ['--config', path.join(dir, 'config')],
      readyPath: '/',
      env: { ...process.env, PYTHONPATH: withoutPytz(dir) },
    };
  });
  const root = `http://127.0.0.1:${port}/`;
  return { rootUrl: root, homeUrl: `${root}alice/`, username: 'alice', password: PASSWORD };
}

/**
 * Radicale reads a TZID that has no VTIMEZONE in the object through vobject, which knows zones by name
 * only when python3-tz is importable. Debian installs that package only as a dependency of Xandikos's
 * python3-icalendar (for python3-vobject it is a mere recommendation), so whether such an object is
 * accepted or refused with 400 depended on what else the machine had installed, or had finished
 * installing. Radicale runs without it everywhere, so an object missing its VTIMEZONE fails every time.
 */
function withoutPytz(dir: string): string {
  const shadow = path.join(dir, 'python');
  fs.mkdirSync(path.join(shadow, 'pytz'), { recursive: true });
  fs.writeFileSync(
    path.join(shadow, 'pytz', '__init__.py'),
    'raise ImportError("pytz is hidden from the test Radicale")\n',
  );
  return [shadow, process.env.PYTHONPATH].filter(Boolean).join(path.delimiter);
}

async function startXandikos(state: Running): Promise<Base> {
  const data = path.join(state.dir, 'data');
  const port = await serve(state, 'xandikos', (port) => ({
    command: 'xandikos',
    args: ['-d', data, '--defaults', '-l', '127.0.0.1', '-p', String(port)],
    readyPath: '/',
  }));
  const root = `http://127.0.0.1:${port}/`;
  // Xandikos checks no credentials at all; these only travel along.
  return {
    rootUrl: root,
    homeUrl: `${root}user/calendars/`,
    calendarUrl: `${root}user/calendars/calendar/`,
    username: 'user',
    password: PASSWORD,
  };
}

/**
 * DAViCal on PHP's built-in server, with a PostgreSQL cluster of its own that listens on a Unix
 * socket in the temporary folder only. DAViCal reads its settings from
 * /etc/davical/<SERVER_NAME>-conf.php; a router script sets SERVER_NAME to a relative path that leads
 * back into the temporary folder, so parallel servers never share a settings file and nothing is
 * written to /etc.
 */
async function startDavical(state: Running): Promise<Base> {
  const bin = postgresBin()!;
  const pgDir = path.join(state.dir, 'pg');
  const data = path.join(pgDir, 'data');
  const sock = path.join(pgDir, 'sock');
  fs.mkdirSync(sock, { recursive: true });
  const asRoot = process.getuid?.() === 0;
  const owner = asRoot ? postgresUser() : undefined;
  if (owner) {
    fs.chmodSync(state.dir, 0o755);
    for (const p of [pgDir, sock]) fs.chownSync(p, owner.uid, owner.gid);
  }
  const pgEnv = { ...process.env, HOME: pgDir, PGHOST: sock, PGPORT: '5432', PGUSER: 'postgres' };
  const asPostgres: SpawnOptions = { env: pgEnv, ...(owner ?? {}) };
  await run(
    path.join(bin, 'initdb'),
    ['-D', data, '-A', 'trust', '-U', 'postgres', '-E', 'UTF8', '--locale=C', '-N'],
    asPostgres,
  );
  const log = fs.openSync(path.join(state.dir, 'postgres.log'), 'a');
  state.postmaster = spawn(
    path.join(bin, 'postgres'),
    ['-D', data, '-k', sock, '-p', '5432', '-c', 'listen_addresses=', '-c', 'fsync=off'],
    { ...asPostgres, stdio: ['ignore', log, log] },
  );
  await waitUntilReady(() => fs.readFileSync(path.join(data, 'postmaster.pid'), 'utf8').includes('ready'), {
    what: 'PostgreSQL',
    child: state.postmaster,
    logFile: path.join(state.dir, 'postgres.log'),
  });
  await run(DAVICAL_CREATE_DB, ['davical', PASSWORD], { ...asPostgres, cwd: pgDir });

  const relative = path.relative('/etc/davical', path.join(state.dir, 'davical'));
  fs.writeFileSync(
    path.join(state.dir, 'router.php'),
    `<?php\n$_SERVER['SERVER_NAME'] = ${phpString(relative)};\nreturn false;\n`,
  );
  fs.writeFileSync(
    path.join(state.dir, 'davical-conf.php'),
    [
      '<?php',
      `$c->pg_connect[] = ${phpString(`host=${sock} port=5432 dbname=davical user=davical_app`)};`,
      "$c->system_name = 'DAViCal loopback test';",
      // The real name, for the URLs DAViCal writes (redirects, hrefs).
      "$c->domain_name = '127.0.0.1';",
      "$_SERVER['SERVER_NAME'] = '127.0.0.1';",
      '',
    ].join('\n'),
  );
  const port = await serve(state, 'davical', (port) => ({
    command: 'php',
    args: ['-S', `127.0.0.1:${port}`, '-t', DAVICAL_HTDOCS, path.join(state.dir, 'router.php')],
    readyPath: '/caldav.php/',
  }));
  const root = `http://127.0.0.1:${port}/caldav.php/`;
  return { rootUrl: root, homeUrl: `${root}admin/`, username: 'admin', password: PASSWORD };
}

function phpString(value: string): string {
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

type Launch = { command: string; args: string[]; readyPath: string; env?: NodeJS.ProcessEnv };

/** Starts a server on a free port; another process can take the port in between, so try again. */
async function serve(state: Running, name: string, launch: (port: number) => Launch): Promise<number> {
  const logFile = path.join(state.dir, `${name}.log`);
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const { command, args, readyPath, env } = launch(port);
    const log = fs.openSync(logFile, 'a');
    const child = spawn(command, args, {
      stdio: ['ignore', log, log],
      cwd: state.dir,
      ...(env ? { env } : {}),
    });
    fs.closeSync(log);
    state.children.push(child);
    try {
      await waitUntilReady(() => answers(`http://127.0.0.1:${port}${readyPath}`), {
        what: name,
        child,
        logFile,
      });
      return port;
    } catch (error) {
      if (child.exitCode === null && child.signalCode === null) throw error;
      if (attempt >= 3) throw error;
    }
  }
}

async function answers(url: string): Promise<boolean> {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(2000) });
    await response.arrayBuffer();
    return true;
  } catch {
    return false;
  }
}

/** Until `ready` holds; fails at once, with the log's tail, when the child exits first. */
async function waitUntilReady(
  ready: () => boolean | Promise<boolean>,
  { what, child, logFile }: { what: string; child: ChildProcess; logFile: string },
): Promise<void> {
  const exited = () => child.exitCode !== null || child.signalCode !== null;
  try {
    await waitFor(
      what,
      async () => {
        if (exited()) {
          const code = String(child.exitCode ?? child.signalCode);
          throw new Error(`${what} exited (${code}) before answering:\n${tail(logFile)}`);
        }
        try {
          return await ready();
        } catch {
          return false; // not there yet
        }
      },
      30_000,
      50,
    );
  } catch (error) {
    if (exited()) throw error;
    throw new Error(`${what} did not answer within 30 s:\n${tail(logFile)}`);
  }
}

function tail(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8').split('\n').slice(-20).join('\n');
  } catch {
    return '(no log)';
  }
}

async function run(command: string, args: string[], options: SpawnOptions): Promise<void> {
  const child = spawn(command, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', resolve);
  });
  if (code !== 0) throw new Error(`${path.basename(command)} failed (${code}):\n${output.slice(-2000)}`);
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

async function stop(state: Running): Promise<void> {
  const exits = state.children.map((child) => exited(child, 'SIGTERM'));
  // SIGINT is PostgreSQL's fast shutdown: it does not wait for clients to leave.
  if (state.postmaster) exits.push(exited(state.postmaster, 'SIGINT'));
  await Promise.all(exits);
  running.delete(state);
  fs.rmSync(state.dir, { recursive: true, force: true, maxRetries: 3 });
}

async function exited(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const done = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await done;
  clearTimeout(timer);
}
