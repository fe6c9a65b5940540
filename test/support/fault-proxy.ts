import http from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * How the proxy treats the next requests:
 * - pass: forwards them;
 * - error: answers 503 without forwarding;
 * - hang: never answers (the client's timeout must end the wait);
 * - lose-answer: forwards, lets the server act, then answers 502: the write happened, the client
 *   does not know it.
 */
export type FaultMode = 'pass' | 'error' | 'hang' | 'lose-answer';

export type FaultProxy = {
  url: string;
  mode: FaultMode;
  /** Requests seen, by method, whatever the mode. */
  seen: Record<string, number>;
  close(): Promise<void>;
};

/** An HTTP proxy on 127.0.0.1 in front of one upstream server, failing on demand. */
export async function startFaultProxy(upstream: string): Promise<FaultProxy> {
  const target = new URL(upstream);
  const hanging = new Set<http.ServerResponse>();
  const proxy: FaultProxy = {
    url: '',
    mode: 'pass',
    seen: {},
    close: () =>
      new Promise<void>((resolve) => {
        for (const response of hanging) response.destroy();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  const server = http.createServer((request, response) => {
    const method = request.method ?? 'GET';
    proxy.seen[method] = (proxy.seen[method] ?? 0) + 1;
    const mode = proxy.mode;
    if (mode === 'error') {
      request.resume();
      response.writeHead(503, { 'retry-after': '0' }).end('unavailable');
      return;
    }
    if (mode === 'hang') {
      request.resume();
      hanging.add(response);
      return;
    }
    const forwarded = http.request(
      {
        host: target.hostname,
        port: target.port,
        method,
        path: request.url,
        headers: { ...request.headers, host: target.host },
      },
      (answer) => {
        if (mode === 'lose-answer') {
          answer.resume();
          answer.on('end', () => response.writeHead(502).end('bad gateway'));
          return;
        }
        const headers = { ...answer.headers };
        // Redirects and hrefs name the upstream; the client must keep talking to the proxy.
        if (typeof headers.location === 'string')
          headers.location = headers.location.replace(target.origin, proxy.url);
        response.writeHead(answer.statusCode ?? 502, headers);
        answer.pipe(response);
      },
    );
    forwarded.on('error', () => response.writeHead(502).end());
    request.pipe(forwarded);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  proxy.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return proxy;
}
