import { setTimeout as sleep } from 'node:timers/promises';
import { EmulatorState, GraphControl, type GraphEmulatorOptions, type RequestRecord } from './control.js';
import { controlRoutes } from './control-routes.js';
import { GraphError } from './graph-error.js';
import { graphRoutes } from './graph-routes.js';
import { DEFAULT_CLIENT } from './identity.js';
import { type Handler, type Route, serve } from './server.js';
import { selfSignedCertificate } from '../tls.js';

export type { GraphEmulatorOptions } from './control.js';
export type { GraphControl } from './control.js';
export type { FaultRule } from './faults.js';

export type GraphEmulator = {
  /** Origin, e.g. http://127.0.0.1:41234, or https://127.0.0.1:41234 with `tls`. */
  url: string;
  /** With `tls`: the self-signed certificate (PEM) a client must trust as its CA; null over http. */
  caCertificate: string | null;
  /** SCHED_OUTLOOK_API_URL. */
  apiUrl: string;
  /** SCHED_OUTLOOK_AUTH_URL. */
  authUrl: string;
  /** SCHED_OUTLOOK_TOKEN_URL. */
  tokenUrl: string;
  /** The registered client (SCHED_OUTLOOK_CLIENT_ID / SCHED_OUTLOOK_CLIENT_SECRET). */
  clientId: string;
  clientSecret: string | null;
  control: GraphControl;
  stop(): Promise<void>;
};

const TENANT = '(common|organizations|consumers|[0-9a-f-]{36}|[a-z0-9.-]+)';

function buildRoutes(state: EmulatorState, control: GraphControl): Route[] {
  const api =
    (write: boolean, handler: Handler): Handler =>
    async (ctx) => {
      const record: RequestRecord = {
        method: ctx.method,
        path: ctx.path,
        query: ctx.query.toString(),
        prefer: typeof ctx.headers.prefer === 'string' ? ctx.headers.prefer : null,
        ifMatch: typeof ctx.headers['if-match'] === 'string' ? ctx.headers['if-match'] : null,
        status: 0,
      };
      state.requests.push(record);
      if (state.requests.length > 2000) state.requests.splice(0, 1000);
      const fault = state.faults.decide({
        method: ctx.method,
        path: ctx.path,
        query: ctx.query,
        now: state.clock(),
      });
      if (fault && 'delayMs' in fault) await sleep(fault.delayMs);
      else if (fault && 'gone' in fault) ctx.syncStateLost = true;
      else if (fault) {
        record.status = 'hang' in fault ? -1 : fault.status;
        return fault;
      }
      state.faults.inFlight++;
      try {
        state.identity.authenticate(
          typeof ctx.headers.authorization === 'string' ? ctx.headers.authorization : undefined,
          write,
        );
        const reply = await handler(ctx);
        record.status = 'status' in reply ? reply.status : -1;
        return reply;
      } catch (error) {
        record.status = error instanceof GraphError ? error.status : 500;
        throw error;
      } finally {
        state.faults.inFlight--;
      }
    };
  return [
    ...controlRoutes(control),
    {
      method: 'GET',
      pattern: new RegExp(`^/${TENANT}/oauth2/v2\\.0/authorize$`, 'i'),
      handler: (ctx) => state.identity.authorize(ctx),
    },
    {
      method: 'POST',
      pattern: new RegExp(`^/${TENANT}/oauth2/v2\\.0/token$`, 'i'),
      handler: (ctx) => state.identity.token(ctx),
    },
    ...graphRoutes({ mailbox: state.mailbox, delta: state.delta, subscriptions: state.subscriptions, api }),
  ];
}

/**
 * Starts a stateful, in-memory Microsoft Graph v1.0 calendar emulator with the identity platform's
 * authorize and token endpoints, on 127.0.0.1. See README.md for the surface and the knobs.
 */
export async function startGraphEmulator(options: GraphEmulatorOptions = {}): Promise<GraphEmulator> {
  let state = new EmulatorState(options);
  let routes: Route[] = [];
  const control = new GraphControl(
    () => state,
    () => {
      state.subscriptions.close();
      state = new EmulatorState(options);
      routes = buildRoutes(state, control);
    },
  );
  routes = buildRoutes(state, control);
  const tls = options.tls ? selfSignedCertificate() : undefined;
  const running = await serve(() => routes, options.port ?? 0, tls);
  const client = options.clients?.[0] ?? DEFAULT_CLIENT;
  return {
    url: running.origin,
    caCertificate: tls?.cert ?? null,
    apiUrl: `${running.origin}/v1.0`,
    authUrl: `${running.origin}/common/oauth2/v2.0/authorize`,
    tokenUrl: `${running.origin}/common/oauth2/v2.0/token`,
    clientId: client.clientId,
    clientSecret: client.clientSecret,
    control,
    async stop() {
      state.subscriptions.close();
      await running.close();
    },
  };
}
