import net from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type App, buildApp } from '../../src/http/build-app.js';
import { describeOnBackends } from '../support/backends.js';

const REQUEST_TIMEOUT_MS = 400;
const CONNECTION_TIMEOUT_MS = 1_500;
/** Far beyond either timeout: a connection still open by then was not cut. */
const GIVE_UP_MS = 8_000;

type Outcome = { closedAfterMs: number; received: string; bodyBytesSent: number };

/**
 * A raw connection to 127.0.0.1:port: sends `head`, then one body byte every `trickleMs` (never the
 * whole announced body), until the server closes the connection or GIVE_UP_MS passes.
 */
function slowClient(port: number, head: string, trickleMs: number | null): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const startedAt = performance.now();
    const socket = net.connect({ host: '127.0.0.1', port });
    let received = '';
    let bodyBytesSent = 0;
    let trickle: NodeJS.Timeout | undefined;
    const giveUp = setTimeout(() => {
      clearInterval(trickle);
      socket.destroy();
      reject(new Error(`the server kept the connection open for ${GIVE_UP_MS} ms`));
    }, GIVE_UP_MS);
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (received += chunk));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearInterval(trickle);
      clearTimeout(giveUp);
      resolve({ closedAfterMs: performance.now() - startedAt, received, bodyBytesSent });
    });
    socket.on('connect', () => {
      if (head) socket.write(head);
      if (trickleMs === null) return;
      trickle = setInterval(() => {
        if (socket.writable) {
          socket.write(' ');
          bodyBytesSent++;
        }
      }, trickleMs);
    });
  });
}

describeOnBackends('request and connection timeouts', (t) => {
  let app: App;
  let port: number;

  beforeAll(async () => {
    app = await buildApp({
      db: t().database.db,
      databaseKind: t().database.kind,
      clock: () => t().clock.now,
      requestTimeoutMs: REQUEST_TIMEOUT_MS,
      connectionTimeoutMs: CONNECTION_TIMEOUT_MS,
    });
    await app.listen({ host: '127.0.0.1', port: 0 });
    port = (app.server.address() as net.AddressInfo).port;
  });
  afterAll(async () => app?.close());

  it('a body that trickles in is cut with a 408 once the request timeout passes', async () => {
    const head =
      'POST /hooks/outlook HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n' +
      'Content-Length: 10000\r\n\r\n';
    // A route without an API key, which reads the body. A byte every 100 ms keeps the socket busy,
    // so only the request timeout can end this.
    const outcome = await slowClient(port, head, 100);
    expect(outcome.received).toMatch(/^HTTP\/1\.1 408 /);
    expect(outcome.closedAfterMs).toBeGreaterThanOrEqual(REQUEST_TIMEOUT_MS);
    expect(outcome.closedAfterMs).toBeLessThan(CONNECTION_TIMEOUT_MS + REQUEST_TIMEOUT_MS);
    expect(outcome.bodyBytesSent).toBeLessThan(10_000);
  });

  it('a connection that never sends its request is cut the same way', async () => {
    const outcome = await slowClient(port, 'POST /hooks/outlook HTTP/1.1\r\nHost: 127.0.0.1\r\n', null);
    expect(outcome.received).toMatch(/^HTTP\/1\.1 408 /);
    expect(outcome.closedAfterMs).toBeGreaterThanOrEqual(REQUEST_TIMEOUT_MS);
    expect(outcome.closedAfterMs).toBeLessThan(CONNECTION_TIMEOUT_MS + REQUEST_TIMEOUT_MS);
  });

  it('a request sent at a normal pace is answered as usual', async () => {
    const response = await fetch(`http://127.0.0.1:${port}/health`, { signal: AbortSignal.timeout(5_000) });
    expect(response.status).toBeLessThan(500);
  });
});
