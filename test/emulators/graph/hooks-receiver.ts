import http from 'node:http';
import type { AddressInfo } from 'node:net';

export type Hook = { path: string; body: unknown };

/**
 * What Sched's /hooks/outlook routes do, for tests: echo Graph's validationToken as text/plain, and
 * record notification bodies. `echo` can be switched to test failing handshakes.
 */
export class HooksReceiver {
  readonly received: Hook[] = [];
  readonly validations: string[] = [];
  echo: 'decoded' | 'encoded' | 'none' | 'wrong-type' = 'decoded';
  /** Answer this many notification POSTs with 500, to make Graph retry. */
  failNotifications = 0;
  #waiters: (() => void)[] = [];
  readonly #server = http.createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const url = new URL(request.url ?? '/', 'http://127.0.0.1');
      const token = url.searchParams.get('validationToken');
      if (token !== null) {
        this.validations.push(url.pathname);
        if (this.echo === 'none') {
          response.writeHead(500).end();
          return;
        }
        const text = this.echo === 'encoded' ? encodeURIComponent(token) : token;
        const type = this.echo === 'wrong-type' ? 'application/json' : 'text/plain; charset=utf-8';
        response.writeHead(200, { 'content-type': type }).end(text);
        return;
      }
      const text = Buffer.concat(chunks).toString('utf8');
      this.received.push({ path: url.pathname, body: text ? (JSON.parse(text) as unknown) : null });
      if (this.failNotifications > 0) {
        this.failNotifications--;
        response.writeHead(500).end();
        return;
      }
      response.writeHead(202).end();
      for (const wake of this.#waiters.splice(0)) wake();
    });
  });
  origin = '';

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve));
    this.origin = `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
    return this;
  }

  /** Resolves once a request to `path` satisfying `match` has arrived. */
  async waitFor(
    path: string,
    match: (body: unknown) => boolean = () => true,
    timeoutMs = 5000,
  ): Promise<Hook> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.received.find((hook) => hook.path === path && match(hook.body));
      if (found) return found;
      if (Date.now() > deadline) throw new Error(`nothing arrived at ${path} within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        this.#waiters.push(resolve);
        setTimeout(resolve, 50);
      });
    }
  }

  async stop(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}
