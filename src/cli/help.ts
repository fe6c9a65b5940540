/**
 * The CLI's words: what each command takes and says about itself. Nothing here imports the
 * application, so `sched --help` answers without loading the database, Fastify or the providers.
 */

export type FlagSpec = { type: 'string' | 'boolean'; short?: string; value?: string; help: string };

export type CommandSpec = {
  /** As typed: "serve", "api-keys create". */
  name: string;
  synopsis: string;
  summary: string;
  flags: Record<string, FlagSpec>;
  details?: string;
};

const HELP_FLAG: FlagSpec = { type: 'boolean', short: 'h', help: 'this command’s help' };

const ENVIRONMENT = `Environment:
  PORT (3000)  HOST (127.0.0.1)  SCHED_DATA_DIR (./data)  DATABASE_URL (PostgreSQL instead of the
  embedded database)  DATABASE_POOL_SIZE (10)  SCHED_ENCRYPTION_KEY or SCHED_ENCRYPTION_KEY_FILE
  (one of them required with DATABASE_URL; the embedded database keeps SCHED_DATA_DIR/encryption.key)
  SCHED_BOOTSTRAP_API_KEY  SCHED_OUTBOUND_ALLOW (CIDRs user-given URLs may reach)
  SCHED_API_KEY (the key sched mcp acts with)  SCHED_WEBHOOK_LEASE_SECONDS (60)  SCHED_PUBLIC_URL (https, for push and OAuth callbacks)
  SCHED_CALENDAR_PROVIDERS (google,outlook,caldav,ics)  LOG_LEVEL (info)
  Google Calendar:  SCHED_GOOGLE_CLIENT_ID  SCHED_GOOGLE_CLIENT_SECRET (OAuth sign-in; without them
    only a given oauth_token connects)  SCHED_GOOGLE_API_URL  SCHED_GOOGLE_AUTH_URL
    SCHED_GOOGLE_TOKEN_URL  SCHED_GOOGLE_REVOKE_URL (Google's own by default)
  Outlook (Microsoft Graph):  SCHED_OUTLOOK_CLIENT_ID  SCHED_OUTLOOK_CLIENT_SECRET
    SCHED_OUTLOOK_API_URL  SCHED_OUTLOOK_AUTH_URL  SCHED_OUTLOOK_TOKEN_URL (Microsoft's by default)
`;

export const COMMANDS: readonly CommandSpec[] = [
  {
    name: 'serve',
    synopsis: 'sched serve',
    summary: 'start the HTTP API (default command)',
    flags: { help: HELP_FLAG },
    details: 'Listens on HOST:PORT and runs the background work too (webhook deliveries, calendar sync).',
  },
  {
    name: 'worker',
    synopsis: 'sched worker',
    summary: 'run background work only (webhook deliveries, calendar sync), beside API processes',
    flags: { help: HELP_FLAG },
  },
  {
    name: 'migrate',
    synopsis: 'sched migrate',
    summary: 'apply database migrations and exit',
    flags: { help: HELP_FLAG },
  },
  {
    name: 'mcp',
    synopsis: 'sched mcp',
    summary: 'serve the MCP tools to an agent over standard input and output',
    flags: { help: HELP_FLAG },
    details:
      'The agent host starts it and speaks MCP on its stdin and stdout; logs go to stderr. It acts with the\n' +
      'API key in SCHED_API_KEY, on DATABASE_URL or the embedded database in SCHED_DATA_DIR (which has one\n' +
      "owner: while a server holds it, point the agent at that server's /mcp instead). Listens on no port.",
  },
  {
    name: 'api-keys create',
    synopsis: 'sched api-keys create --org NAME --scopes admin[,write,read] [--name LABEL]',
    summary: 'print a new API key for an organization (created if new)',
    flags: {
      org: { type: 'string', value: 'NAME', help: 'the organization (created if new)' },
      scopes: { type: 'string', value: 'LIST', help: 'comma-separated: read, write, admin' },
      name: { type: 'string', value: 'LABEL', help: 'a label for the key, shown in GET /api-keys' },
      help: HELP_FLAG,
    },
    details:
      'Only the new key goes to standard output, so KEY=$(npx sched api-keys create --org acme --scopes admin) works.\n' +
      'The embedded database has one owner: stop a server that holds SCHED_DATA_DIR first.',
  },
  {
    name: 'keys rotate',
    synopsis: 'sched keys rotate [--reseal-only] [--retire] [--batch-size N]',
    summary: 'seal every stored secret under a new encryption key version',
    flags: {
      'reseal-only': {
        type: 'boolean',
        help: 'add no key; re-seal what is not under the current version yet',
      },
      retire: {
        type: 'boolean',
        help: 'then drop the older versions from the key file, once nothing needs them',
      },
      'batch-size': { type: 'string', value: 'N', help: 'rows read and written at a time (500)' },
      help: HELP_FLAG,
    },
    details:
      'With the embedded database and its key file (SCHED_DATA_DIR/encryption.key or\n' +
      'SCHED_ENCRYPTION_KEY_FILE), adds a new key version to the file and makes it current first; stop the\n' +
      'server that holds SCHED_DATA_DIR before. With SCHED_ENCRYPTION_KEY or DATABASE_URL, Sched writes no\n' +
      'key: give every process the new key as the current one first (SCHED_ENCRYPTION_KEY="1:<old>,2:<new>"),\n' +
      'then run this; the servers keep serving meanwhile. Every sealed value is then re-sealed under the\n' +
      'current version, in batches, each row changed only if no other write changed it meanwhile.\n' +
      'Prints what it re-sealed per column; exits 1 when values remain under other versions.',
  },
  {
    name: 'keys status',
    synopsis: 'sched keys status [--check]',
    summary: 'count the stored secrets under each encryption key version',
    flags: {
      check: {
        type: 'boolean',
        help: 'exit 1 when any value is not under the current version',
      },
      help: HELP_FLAG,
    },
    details:
      'Once no value is under an old version, that key can be removed from every process\n' +
      '(keep the current one with its version number, for example SCHED_ENCRYPTION_KEY="2:<key>").',
  },
];

/** The first words of commands of two words ("api-keys create", "keys rotate"). */
export const COMMAND_GROUPS: readonly string[] = [
  ...new Set(COMMANDS.filter((c) => c.name.includes(' ')).map((c) => c.name.split(' ')[0]!)),
];

export function findCommand(name: string): CommandSpec | undefined {
  return COMMANDS.find((command) => command.name === name);
}

export const USAGE = `Sched: scheduling that never double-books.

Usage:
${COMMANDS.map((command) =>
  command.synopsis.length < 36
    ? `  ${command.synopsis.padEnd(36)}${command.summary}`
    : `  ${command.synopsis}\n${' '.repeat(38)}${command.summary}`,
).join('\n')}
  sched --help                        this text; sched COMMAND --help for one command

Only the new key goes to standard output, so KEY=$(npx sched api-keys create --org acme --scopes admin) works.

${ENVIRONMENT}`;

/** `sched serve --help` and the like. */
export function commandHelp(command: CommandSpec): string {
  const flags = Object.entries(command.flags).map(([name, flag]) => {
    const spelled = `${flag.short ? `-${flag.short}, ` : ''}--${name}${flag.value ? ` ${flag.value}` : ''}`;
    return `  ${spelled.padEnd(24)}${flag.help}`;
  });
  return [
    `Usage: ${command.synopsis}`,
    '',
    `${command.summary[0]!.toUpperCase()}${command.summary.slice(1)}.`,
    ...(command.details ? [command.details] : []),
    '',
    'Options:',
    ...flags,
    '',
    ENVIRONMENT,
  ].join('\n');
}
