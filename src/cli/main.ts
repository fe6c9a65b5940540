#!/usr/bin/env node
import { ConfigError, loadConfig } from '../config.js';
import type { Scope } from '../services/context.js';
import { MissingEncryptionKeyError } from '../security/secret-box.js';
import { EmbeddedDatabaseBusyError } from '../storage/embedded-lock.js';
import { parseArgs } from './args.js';
import { createApiKeyCommand, migrateCommand, serveCommand, workerCommand } from './commands.js';

export const USAGE = `Sched: scheduling that never double-books.

Usage:
  sched serve                         start the HTTP API (default command)
  sched worker                        run background work only (webhook deliveries, calendar sync), beside API processes
  sched migrate                       apply database migrations and exit
  sched api-keys create --org NAME --scopes admin[,write,read] [--name LABEL]
                                      print a new API key for an organization (created if new)
  sched --help                        this text

Only the new key goes to standard output, so KEY=$(npx sched api-keys create --org acme --scopes admin) works.

Environment:
  PORT (3000)  HOST (127.0.0.1)  SCHED_DATA_DIR (./data)  DATABASE_URL (PostgreSQL instead of the
  embedded database)  DATABASE_POOL_SIZE (10)  SCHED_ENCRYPTION_KEY (required with DATABASE_URL)
  SCHED_BOOTSTRAP_API_KEY  SCHED_OUTBOUND_ALLOW (CIDRs user-given URLs may reach)
  SCHED_WEBHOOK_LEASE_SECONDS (60)  SCHED_PUBLIC_URL (https, for push and OAuth callbacks)
  SCHED_CALENDAR_PROVIDERS (google,outlook,caldav,ics)  SCHED_GOOGLE_* / SCHED_OUTLOOK_* (README)
  LOG_LEVEL (info)
`;

const SCOPES: readonly Scope[] = ['read', 'write', 'admin'];

class UsageError extends Error {}

function requireFlag(flags: Map<string, string | true>, name: string): string {
  const value = flags.get(name);
  if (typeof value !== 'string' || value.trim() === '') throw new UsageError(`--${name} needs a value`);
  return value.trim();
}

async function run(argv: readonly string[]): Promise<number> {
  const { positionals, flags } = parseArgs(argv);
  if (flags.has('help') || positionals[0] === 'help') {
    process.stdout.write(USAGE);
    return 0;
  }
  const command = positionals[0] ?? 'serve';
  if (!['serve', 'worker', 'migrate', 'api-keys'].includes(command))
    throw new UsageError(`unknown command "${command}"`);
  const config = loadConfig();
  switch (command) {
    case 'serve':
      return serveCommand(config);
    case 'worker':
      return workerCommand(config);
    case 'migrate':
      return migrateCommand(config);
    case 'api-keys': {
      if (positionals[1] !== 'create') throw new UsageError('the api-keys command knows only "create"');
      const scopes = requireFlag(flags, 'scopes')
        .split(',')
        .map((s) => s.trim());
      for (const scope of scopes) {
        if (!SCOPES.includes(scope as Scope)) {
          throw new UsageError(`--scopes: unknown scope "${scope}"; use ${SCOPES.join(', ')}`);
        }
      }
      const name = flags.get('name');
      return createApiKeyCommand(config, {
        organization: requireFlag(flags, 'org'),
        scopes: scopes as Scope[],
        ...(typeof name === 'string' ? { name } : {}),
      });
    }
    default:
      throw new UsageError(`unknown command "${command}"`);
  }
}

run(process.argv.slice(2)).then(
  (code) => {
    if (code !== 0) process.exitCode = code;
  },
  (error: unknown) => {
    if (error instanceof UsageError) {
      process.stderr.write(`sched: ${error.message}\n\n${USAGE}`);
      process.exitCode = 2;
    } else if (
      error instanceof ConfigError ||
      error instanceof EmbeddedDatabaseBusyError ||
      error instanceof MissingEncryptionKeyError
    ) {
      process.stderr.write(`sched: ${error.message}\n`);
      process.exitCode = 1;
      // Nothing is left to finish after a failed start: exit now rather than when timers drain.
      process.exit(1);
    } else {
      process.stderr.write(
        `sched: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
      );
      process.exitCode = 1;
      process.exit(1);
    }
  },
);
