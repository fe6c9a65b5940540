import http from 'node:http';
import type { AddressInfo } from 'node:net';

export type Received = { path: string; headers: Record<string, string>; body: string; at: number };

/**
 * What the receiver does with the next request: answer, wait first (a time, or until `hold` resolves),
 * or never answer in time.
 */
export type Behaviour = {
  status?: number;
  delayMs?: number;
  hold?: Promise<void>;
  location?: string;
  body?: string;
};

/** A real HTTP receiver on 127.0.0.1 that records every request and answers as told. */
export class WebhookReceiver {
  readonly received: Received[] = [];
  behaviour: Behaviour = { status: 200, body: 'ok' };
  /** TCP connections accepted so far. */
  connections = 0;
  #server = http.createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const headers: Record<string, string> = {};
      for (const [name, value] of Object.entries(request.headers)) {
        if (typeof value === 'string') headers[name] = value;
      }
      this.received.push({
        path: request.url ?? '/',
        headers,
        body: Buffer.concat(chunks).toString('utf8'),
        at: Date.now(),
      });
      const { status = 200, delayMs = 0, hold, location, body = '' } = this.behaviour;
      const answer = () => {
        if (response.writableEnded || response.destroyed) return;
        if (location) response.setHeader('location', location);
        response.writeHead(status).end(body);
      };
      let timer: NodeJS.Timeout | undefined;
      const wait = () => (timer = setTimeout(answer, delayMs));
      if (hold) void hold.then(wait);
      else wait();
      response.on('close', () => clearTimeout(timer));
    });
  });

  async start(): Promise<this> {
    this.#server.on('connection', () => this.connections++);
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve));
    return this;
  }

  url(path = '/hook'): string {
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}${path}`;
  }

  async stop(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}
