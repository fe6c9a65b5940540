#!/usr/bin/env node
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { type CommandSpec, COMMAND_GROUPS, commandHelp, COMMANDS, findCommand, USAGE } from './help.js';

// Only node: modules and the help text are loaded up front: `--help` and usage errors answer at
// once, and a command loads the application (database, Fastify, providers) when it runs.

export { USAGE };

const SCOPES = ['read', 'write', 'admin'] as const;
type Scope = (typeof SCOPES)[number];

class UsageError extends Error {
  constructor(
    message: string,
    /** The command whose help follows the message; the general usage when absent. */
    readonly command?: CommandSpec,
  ) {
    super(message);
  }
}

/** Every flag of every command, so the command is found wherever its flags stand. */
const ALL_OPTIONS: NonNullable<ParseArgsConfig['options']> = Object.fromEntries(
  COMMANDS.flatMap((command) =>
    Object.entries(command.flags).map(([name, flag]) => [
      name,
      { type: flag.type, ...(flag.short ? { short: flag.short } : {}) },
    ]),
  ),
);

export type Invocation =
  { kind: 'help'; text: string } | { kind: 'run'; command: CommandSpec; values: Record<string, unknown> };

/** node:util's own refusal, in this CLI's words: the flag it is about, and what is wrong with it. */
function flagProblem(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  const flag = /'(-[^' ]+)/.exec(message)?.[1];
  const code = (error as { code?: unknown }).code;
  if (flag && code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') return `unknown option ${flag}`;
  if (flag && code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') return `${flag} needs a value`;
  return message;
}

export function parseInvocation(argv: readonly string[]): Invocation {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      options: ALL_OPTIONS,
      allowPositionals: true,
      strict: true,
      tokens: true,
    });
  } catch (error) {
    throw new UsageError(flagProblem(error));
  }
  const { positionals, values, tokens } = parsed;
  const helpAsked = values.help === true || positionals[0] === 'help';
  const words = positionals[0] === 'help' ? positionals.slice(1) : positionals;
  if (words.length === 0 && helpAsked) return { kind: 'help', text: USAGE };
  const [first = 'serve', second] = words;
  const grouped = COMMAND_GROUPS.includes(first);
  const name = grouped && second !== undefined ? `${first} ${second}` : first;
  const command = findCommand(name);
  if (!command) {
    if (grouped && second === undefined && helpAsked) return { kind: 'help', text: USAGE };
    if (grouped) {
      const known = COMMANDS.filter((c) => c.name.startsWith(`${first} `)).map(
        (c) => `"${c.name.slice(first.length + 1)}"`,
      );
      throw new UsageError(`the ${first} command knows only ${known.join(' and ')}`);
    }
    throw new UsageError(`unknown command "${name}"`);
  }
  const extra = words.slice(name.split(' ').length);
  if (extra.length > 0) throw new UsageError(`unexpected argument "${extra[0]}"`, command);
  for (const token of tokens) {
    if (token.kind === 'option' && !(token.name in command.flags)) {
      throw new UsageError(`${token.rawName} is not an option of "sched ${command.name}"`, command);
    }
  }
  if (helpAsked) return { kind: 'help', text: commandHelp(command) };
  return { kind: 'run', command, values };
}

function requireFlag(values: Record<string, unknown>, name: string, command: CommandSpec): string {
  const value = values[name];
  if (typeof value !== 'string' || value.trim() === '')
    throw new UsageError(`--${name} needs a value`, command);
  return value.trim();
}

function batchSizeFlag(values: Record<string, unknown>, command: CommandSpec): number {
  if (values['batch-size'] === undefined) return 500;
  const raw = requireFlag(values, 'batch-size', command);
  const size = /^[0-9]+$/.test(raw) ? Number(raw) : NaN;
  if (!(size >= 1 && size <= 10_000)) {
    throw new UsageError(`--batch-size must be a whole number from 1 to 10000, got "${raw}"`, command);
  }
  return size;
}

async function run(argv: readonly string[]): Promise<number> {
  const invocation = parseInvocation(argv);
  if (invocation.kind === 'help') {
    process.stdout.write(invocation.text);
    return 0;
  }
  const { command, values } = invocation;
  if (command.name === 'api-keys create') {
    const scopes = requireFlag(values, 'scopes', command)
      .split(',')
      .map((scope) => scope.trim());
    for (const scope of scopes) {
      if (!SCOPES.includes(scope as Scope)) {
        throw new UsageError(`--scopes: unknown scope "${scope}"; use ${SCOPES.join(', ')}`, command);
      }
    }
    const organization = requireFlag(values, 'org', command);
    const commands = await import('./commands.js');
    const config = commands.loadServerConfig();
    return commands.createApiKeyCommand(config, {
      organization,
      scopes: scopes as Scope[],
      ...(typeof values.name === 'string' ? { name: values.name } : {}),
    });
  }
  if (command.name === 'keys rotate') {
    const batchSize = batchSizeFlag(values, command);
    const commands = await import('./commands.js');
    return commands.keysRotateCommand(commands.loadServerConfig(), {
      resealOnly: values['reseal-only'] === true,
      retire: values.retire === true,
      batchSize,
    });
  }
  const commands = await import('./commands.js');
  const config = commands.loadServerConfig();
  if (command.name === 'keys status')
    return commands.keysStatusCommand(config, { check: values.check === true });
  if (command.name === 'serve') return commands.serveCommand(config);
  if (command.name === 'mcp') return commands.mcpCommand(config);
  if (command.name === 'worker') return commands.workerCommand(config);
  return commands.migrateCommand(config);
}

run(process.argv.slice(2)).then(
  (code) => {
    if (code !== 0) process.exitCode = code;
  },
  async (error: unknown) => {
    if (error instanceof UsageError) {
      const help = error.command ? commandHelp(error.command) : USAGE;
      process.stderr.write(`sched: ${error.message}\n\n${help}`);
      process.exitCode = 2;
      return;
    }
    const { operatorMessage } = await import('./commands.js');
    const plain = operatorMessage(error);
    process.stderr.write(
      `sched: ${plain ?? (error instanceof Error ? (error.stack ?? error.message) : String(error))}\n`,
    );
    // Nothing is left to finish after a failed start: exit now rather than when timers drain.
    process.exit(1);
  },
);
