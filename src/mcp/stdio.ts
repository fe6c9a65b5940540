import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import {
  isJSONRPCErrorResponse,
  isJSONRPCRequest,
  isJSONRPCResultResponse,
  type JSONRPCMessage,
  type MessageExtraInfo,
  type RequestId,
} from '@modelcontextprotocol/sdk/types.js';
import { type Config, ConfigError } from '../config.js';
import { createDependencies, type Dependencies } from '../dependencies.js';
import type { App } from '../http/build-app.js';
import { authenticateKeyHash, hashApiKey, hasScope } from '../services/api-keys.js';
import type { Actor } from '../services/context.js';
import { EmbeddedDatabaseBusyError } from '../storage/embedded-lock.js';
import { buildMcpServer } from './server.js';

export const API_KEY_VARIABLE = 'SCHED_API_KEY';

/** The agent's API key from the environment; missing or blank is a ConfigError naming the variable. */
export function mcpApiKey(env: Readonly<Record<string, string | undefined>>): string {
  const key = env[API_KEY_VARIABLE]?.trim();
  if (!key) {
    throw new ConfigError(
      API_KEY_VARIABLE,
      'is not set; give sched mcp the API key the agent acts with (make one with POST /api-keys or sched api-keys create)',
    );
  }
  return key;
}

/** The embedded database is held by another process: said for `sched mcp`, with its way out. */
export class McpDatabaseBusyError extends EmbeddedDatabaseBusyError {
  constructor(busy: EmbeddedDatabaseBusyError) {
    super(busy.dataDir, busy.ownerPid);
    this.message =
      `the embedded database in ${busy.dataDir} is in use by another Sched process (pid ${busy.ownerPid}), ` +
      'and it has one owner. Stop that process, point the agent at that server’s /mcp endpoint over HTTP ' +
      'instead, or use DATABASE_URL for a shared PostgreSQL.';
  }
}

/**
 * The stdio transport, counting the requests it has been given and not yet answered, so that the end of
 * input ("the client is done sending") still lets every answer out before the process closes.
 */
class AnsweringTransport implements Transport {
  onclose?: () => void;
  onerror?: (error: Error) => void;
  onmessage?: <T extends JSONRPCMessage>(message: T, extra?: MessageExtraInfo) => void;
  private readonly unanswered = new Set<RequestId>();
  private waiters: (() => void)[] = [];

  constructor(private readonly inner: StdioServerTransport) {
    inner.onclose = () => this.onclose?.();
    inner.onerror = (error) => this.onerror?.(error);
    inner.onmessage = (message: JSONRPCMessage) => {
      if (isJSONRPCRequest(message)) this.unanswered.add(message.id);
      this.onmessage?.(message);
    };
  }

  start(): Promise<void> {
    return this.inner.start();
  }

  async send(message: JSONRPCMessage): Promise<void> {
    try {
      await this.inner.send(message);
    } finally {
      if (isJSONRPCResultResponse(message) || isJSONRPCErrorResponse(message)) {
        if (message.id !== undefined) this.unanswered.delete(message.id);
        if (this.unanswered.size === 0) for (const wake of this.waiters.splice(0)) wake();
      }
    }
  }

  close(): Promise<void> {
    return this.inner.close();
  }

  /** Resolves once every request received so far is answered. */
  answered(): Promise<void> {
    if (this.unanswered.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }
}

export type StdioMcp = {
  /** Who the agent acts as: the key's organization and its audit label. */
  actor: Actor;
  /** Resolves when the client is gone: standard input ended or closed, or standard output broke. */
  ended: Promise<void>;
  /** Answers what was asked (up to `graceMs`), then closes the server, the app and the database. */
  close(graceMs?: number): Promise<void>;
};

/** The key's actor as the API's auth makes it, or a ConfigError naming SCHED_API_KEY. */
async function actorForKey(deps: Dependencies, apiKey: string): Promise<Actor> {
  const found = await authenticateKeyHash(deps.database.db, hashApiKey(apiKey));
  if (!found) throw new ConfigError(API_KEY_VARIABLE, 'the API key is not valid or has been revoked');
  if (!hasScope(found.scopes, 'read')) {
    throw new ConfigError(API_KEY_VARIABLE, 'the API key needs the "read" scope at least');
  }
  return { organizationId: found.organizationId, label: `api_key:${found.apiKeyId}`, scopes: found.scopes };
}

/**
 * `sched mcp`: the app built by the one dependency builder, not listening on any port, and the same MCP
 * server as /mcp connected to standard input and output. Standard output carries the protocol only, so
 * every log line goes to standard error. Background work (webhook deliveries, calendar sync) is left to
 * `sched serve` and `sched worker`.
 */
export async function startStdioMcp(config: Config, apiKey: string): Promise<StdioMcp> {
  let deps: Dependencies;
  try {
    deps = await createDependencies(config, { logTo: 'stderr' });
  } catch (error) {
    throw error instanceof EmbeddedDatabaseBusyError && !(error instanceof McpDatabaseBusyError)
      ? new McpDatabaseBusyError(error)
      : error;
  }
  let app: App | undefined;
  try {
    const actor = await actorForKey(deps, apiKey);
    app = await deps.buildApp();
    await app.ready();
    const built = app;
    const server = buildMcpServer({ app: built, db: deps.database.db, apiKey, actor });
    const transport = new AnsweringTransport(new StdioServerTransport(process.stdin, process.stdout));

    let signalEnded!: () => void;
    const ended = new Promise<void>((resolve) => (signalEnded = resolve));
    process.stdin.once('end', () => signalEnded());
    process.stdin.once('close', () => signalEnded());
    process.stdout.on('error', () => signalEnded());
    transport.onerror = (error) => built.log.warn({ err: error }, 'MCP stdio transport error');

    await server.connect(transport);

    let closing: Promise<void> | undefined;
    const close = (graceMs = 10_000) =>
      (closing ??= (async () => {
        let timer: NodeJS.Timeout | undefined;
        try {
          await Promise.race([
            transport.answered(),
            new Promise<void>((resolve) => (timer = setTimeout(resolve, graceMs))),
          ]);
        } finally {
          clearTimeout(timer);
        }
        try {
          await server.close();
          await built.close();
        } finally {
          await deps.close();
        }
      })());
    return { actor, ended, close };
  } catch (error) {
    try {
      await app?.close();
    } finally {
      await deps.close();
    }
    throw error;
  }
}
