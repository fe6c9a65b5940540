import path from 'node:path';
import { parseAllowList } from './integrations/index.js';
import { type ConfiguredKeys, parseKeyMaterial, readKeyFile } from './security/keys.js';
import type { CalendarProviderName } from './storage/database.js';

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
const LOG_LEVELS: readonly LogLevel[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

export type Config = {
  port: number;
  host: string;
  dataDir: string;
  databaseUrl: string | undefined;
  databasePoolSize: number;
  /** SCHED_ENCRYPTION_KEY or SCHED_ENCRYPTION_KEY_FILE; undefined when neither is set. */
  encryptionKey: ConfiguredKeys | undefined;
  logLevel: LogLevel;
  bootstrapApiKey: string | undefined;
  /** CIDRs that user-given URLs may reach although they are internal (SCHED_OUTBOUND_ALLOW). */
  outboundAllow: string[];
  /** How long a worker holds a claimed webhook delivery (SCHED_WEBHOOK_LEASE_SECONDS). */
  webhookLeaseSeconds: number;
  /** Where this server is reached from outside, for feed URLs and provider callbacks (SCHED_PUBLIC_URL). */
  publicUrl: string | undefined;
  /** The calendar systems this server offers (SCHED_CALENDAR_PROVIDERS); all four unless narrowed. */
  calendarProviders: CalendarProviderName[];
  /** Requests per minute a client address may make to /public/* (SCHED_PUBLIC_RATE_LIMIT). */
  publicRateLimit: number;
  /** Which proxies' X-Forwarded-For is believed (SCHED_TRUST_PROXY): a hop count or addresses; none by default. */
  trustProxy: TrustProxy;
  google: ProviderEndpoints;
  outlook: ProviderEndpoints;
};

/** false: the socket's address is the client's; a number: that many proxies in front; or their addresses. */
export type TrustProxy = false | number | string[];

const PROXY_NAMES = new Set(['loopback', 'linklocal', 'uniquelocal']);
const IPV4_CIDR = /^(\d{1,3})(\.\d{1,3}){3}(\/\d{1,2})?$/;
const IPV6_CIDR = /^[0-9a-f:.]+(\/\d{1,3})?$/i;

function readTrustProxy(env: Env): TrustProxy {
  const raw = env.SCHED_TRUST_PROXY?.trim();
  if (raw === undefined || raw === '' || raw === 'false') return false;
  if (/^\d+$/.test(raw)) {
    const hops = Number(raw);
    if (hops < 1 || hops > 10)
      throw new ConfigError('SCHED_TRUST_PROXY', `a hop count must be 1 to 10, got "${raw}"`);
    return hops;
  }
  const entries = raw.split(',').map((entry) => entry.trim());
  for (const entry of entries) {
    const ipv4 =
      IPV4_CIDR.test(entry) &&
      entry
        .split('/')[0]!
        .split('.')
        .every((part) => Number(part) <= 255);
    if (!PROXY_NAMES.has(entry) && !ipv4 && !(entry.includes(':') && IPV6_CIDR.test(entry))) {
      throw new ConfigError(
        'SCHED_TRUST_PROXY',
        `"${entry}" is neither a hop count, an address or CIDR, nor one of ${[...PROXY_NAMES].join(', ')}`,
      );
    }
  }
  return entries;
}

const CALENDAR_PROVIDERS: readonly CalendarProviderName[] = ['google', 'outlook', 'caldav', 'ics'];

function readCalendarProviders(env: Env): CalendarProviderName[] {
  const raw = env.SCHED_CALENDAR_PROVIDERS;
  if (raw === undefined || raw.trim() === '') return [...CALENDAR_PROVIDERS];
  if (raw.trim() === 'none') return [];
  const names = raw.split(',').map((name) => name.trim());
  for (const name of names) {
    if (!CALENDAR_PROVIDERS.includes(name as CalendarProviderName)) {
      throw new ConfigError(
        'SCHED_CALENDAR_PROVIDERS',
        `unknown calendar provider "${name}"; use a comma-separated list of ${CALENDAR_PROVIDERS.join(', ')}, or none`,
      );
    }
  }
  return [...new Set(names as CalendarProviderName[])];
}

/** Where an OAuth calendar provider is reached, and our client's credentials there. */
export type ProviderEndpoints = {
  apiUrl: string;
  authUrl: string;
  tokenUrl: string;
  /** Google has a revocation endpoint; Microsoft has none for refresh tokens. */
  revokeUrl: string | undefined;
  clientId: string | undefined;
  clientSecret: string | undefined;
};

function readUrl(env: Env, name: string, fallback: string): string {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ConfigError(name, `is not a URL, got "${raw}"`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new ConfigError(name, 'must start with https:// or http://');
  }
  return raw.replace(/\/+$/, '');
}

function readOptional(env: Env, name: string): string | undefined {
  const raw = env[name];
  return raw === undefined || raw === '' ? undefined : raw;
}

/** Defaults are the real services; every value can point at an emulator instead. */
function readProviders(env: Env): Pick<Config, 'google' | 'outlook'> {
  return {
    google: {
      apiUrl: readUrl(env, 'SCHED_GOOGLE_API_URL', 'https://www.googleapis.com/calendar/v3'),
      authUrl: readUrl(env, 'SCHED_GOOGLE_AUTH_URL', 'https://accounts.google.com/o/oauth2/v2/auth'),
      tokenUrl: readUrl(env, 'SCHED_GOOGLE_TOKEN_URL', 'https://oauth2.googleapis.com/token'),
      revokeUrl: readUrl(env, 'SCHED_GOOGLE_REVOKE_URL', 'https://oauth2.googleapis.com/revoke'),
      clientId: readOptional(env, 'SCHED_GOOGLE_CLIENT_ID'),
      clientSecret: readOptional(env, 'SCHED_GOOGLE_CLIENT_SECRET'),
    },
    outlook: {
      apiUrl: readUrl(env, 'SCHED_OUTLOOK_API_URL', 'https://graph.microsoft.com/v1.0'),
      authUrl: readUrl(
        env,
        'SCHED_OUTLOOK_AUTH_URL',
        'https://login.microsoftonline.com/common/oauth2/v2.0/authorize',
      ),
      tokenUrl: readUrl(
        env,
        'SCHED_OUTLOOK_TOKEN_URL',
        'https://login.microsoftonline.com/common/oauth2/v2.0/token',
      ),
      revokeUrl: undefined,
      clientId: readOptional(env, 'SCHED_OUTLOOK_CLIENT_ID'),
      clientSecret: readOptional(env, 'SCHED_OUTLOOK_CLIENT_SECRET'),
    },
  };
}

export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    message: string,
  ) {
    super(`${variable}: ${message}`);
    this.name = 'ConfigError';
  }
}

type Env = Readonly<Record<string, string | undefined>>;

function readInteger(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (!/^\d+$/.test(raw)) throw new ConfigError(name, `must be a whole number, got "${raw}"`);
  const value = Number(raw);
  if (value < min || value > max)
    throw new ConfigError(name, `must be between ${min} and ${max}, got ${value}`);
  return value;
}

function readDatabaseUrl(env: Env): string | undefined {
  const raw = env.DATABASE_URL;
  if (raw === undefined || raw === '') return undefined;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ConfigError(
      'DATABASE_URL',
      'is not a URL (expected postgres://user:password@host:5432/database)',
    );
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') {
    throw new ConfigError(
      'DATABASE_URL',
      `must start with postgres:// or postgresql://, got "${url.protocol}//"`,
    );
  }
  return raw;
}

/**
 * The encryption keys: inline in SCHED_ENCRYPTION_KEY, or in the file SCHED_ENCRYPTION_KEY_FILE names
 * (kept away from the data), never both. Either holds one key or versioned keys (security/keys.ts).
 */
function readEncryptionKeys(env: Env, cwd: string): ConfiguredKeys | undefined {
  const inline = env.SCHED_ENCRYPTION_KEY === '' ? undefined : env.SCHED_ENCRYPTION_KEY;
  const file = env.SCHED_ENCRYPTION_KEY_FILE === '' ? undefined : env.SCHED_ENCRYPTION_KEY_FILE;
  if (inline !== undefined && file !== undefined) {
    throw new ConfigError(
      'SCHED_ENCRYPTION_KEY_FILE',
      'is set and so is SCHED_ENCRYPTION_KEY; give the keys in one of them only',
    );
  }
  if (file !== undefined) {
    const read = readKeyFile(path.resolve(cwd, file));
    if ('error' in read) throw new ConfigError('SCHED_ENCRYPTION_KEY_FILE', read.error);
    return { source: 'SCHED_ENCRYPTION_KEY_FILE', ...read };
  }
  if (inline === undefined) return undefined;
  const parsed = parseKeyMaterial(inline);
  if ('error' in parsed) throw new ConfigError('SCHED_ENCRYPTION_KEY', parsed.error);
  return { source: 'SCHED_ENCRYPTION_KEY', keyring: parsed.keyring };
}

function readHost(env: Env): string {
  const host = env.HOST ?? '127.0.0.1';
  if (host === '' || /\s/.test(host))
    throw new ConfigError('HOST', `must be a host name or address, got "${host}"`);
  return host;
}

function readBootstrapKey(env: Env): string | undefined {
  const raw = env.SCHED_BOOTSTRAP_API_KEY;
  if (raw === undefined || raw === '') return undefined;
  if (raw.length < 24 || !/^[\x21-\x7e]+$/.test(raw)) {
    throw new ConfigError(
      'SCHED_BOOTSTRAP_API_KEY',
      'must be at least 24 printable characters without spaces',
    );
  }
  return raw;
}

function readOutboundAllow(env: Env): string[] {
  const parsed = parseAllowList(env.SCHED_OUTBOUND_ALLOW);
  if ('error' in parsed) throw new ConfigError('SCHED_OUTBOUND_ALLOW', parsed.error);
  return parsed.cidrs;
}

function readPublicUrl(env: Env): string | undefined {
  const raw = env.SCHED_PUBLIC_URL;
  if (raw === undefined || raw === '') return undefined;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ConfigError('SCHED_PUBLIC_URL', `is not a URL, got "${raw}"`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new ConfigError('SCHED_PUBLIC_URL', 'must start with https:// or http://');
  }
  return raw.replace(/\/+$/, '');
}

/** Parses and validates the environment once, at start. A bad value names its variable. */
export function loadConfig(env: Env = process.env, cwd = process.cwd()): Config {
  const logLevel = (env.LOG_LEVEL ?? 'info') as LogLevel;
  if (!LOG_LEVELS.includes(logLevel)) {
    throw new ConfigError('LOG_LEVEL', `must be one of ${LOG_LEVELS.join(', ')}, got "${env.LOG_LEVEL}"`);
  }
  return {
    port: readInteger(env, 'PORT', 3000, 0, 65535),
    host: readHost(env),
    dataDir: path.resolve(cwd, env.SCHED_DATA_DIR || './data'),
    databaseUrl: readDatabaseUrl(env),
    databasePoolSize: readInteger(env, 'DATABASE_POOL_SIZE', 10, 1, 200),
    encryptionKey: readEncryptionKeys(env, cwd),
    logLevel,
    bootstrapApiKey: readBootstrapKey(env),
    outboundAllow: readOutboundAllow(env),
    // Longer than the 15 s an attempt may take, so a live delivery is never claimed twice.
    webhookLeaseSeconds: readInteger(env, 'SCHED_WEBHOOK_LEASE_SECONDS', 60, 20, 3600),
    publicUrl: readPublicUrl(env),
    calendarProviders: readCalendarProviders(env),
    publicRateLimit: readInteger(env, 'SCHED_PUBLIC_RATE_LIMIT', 120, 1, 1_000_000),
    trustProxy: readTrustProxy(env),
    ...readProviders(env),
  };
}
