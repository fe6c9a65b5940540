import { X509Certificate } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { plainRequest } from './control-client.js';
import { type GoogleEmulator, startGoogleEmulator } from './emulator.js';

const receiver = http.createServer((request, response) => {
  request.resume();
  response.writeHead(200).end();
});
let hook = '';
beforeAll(async () => {
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  hook = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
});
afterAll(() => new Promise<void>((resolve) => receiver.close(() => resolve())));

/** events.watch with a chosen Host header; the channel's resourceUri comes back. */
async function watchAs(emulator: GoogleEmulator, host: string | null, channel: string) {
  const { access_token } = await emulator.control.mintTokens();
  const url = new URL(`${emulator.apiUrl}/calendars/primary/events/watch`);
  const answer = await plainRequest(url, {
    method: 'POST',
    ca: emulator.caCertificate ?? undefined,
    headers: {
      authorization: `Bearer ${access_token}`,
      'content-type': 'application/json',
      ...(host === null ? {} : { host }),
    },
    servername: 'localhost',
    body: JSON.stringify({ id: channel, type: 'web_hook', address: hook }),
  });
  expect(answer.status).toBe(200);
  return (JSON.parse(answer.text) as { resourceUri: string }).resourceUri;
}

describe('the https listener', () => {
  let emulator: GoogleEmulator;
  beforeAll(async () => {
    emulator = await startGoogleEmulator({ tls: true });
  });
  afterAll(() => emulator?.stop());

  it('serves https with a certificate for 127.0.0.1 that it hands out, and control works over it', async () => {
    const port = new URL(emulator.url).port;
    expect(emulator.url).toBe(`https://127.0.0.1:${port}`);
    expect(emulator.apiUrl).toBe(`https://127.0.0.1:${port}/calendar/v3`);
    expect(emulator.tokenUrl).toBe(`https://127.0.0.1:${port}/token`);
    const certificate = new X509Certificate(emulator.caCertificate!);
    expect(certificate.checkIP('127.0.0.1')).toBe('127.0.0.1');
    // A client that does not trust the certificate is refused; one that does gets through.
    await expect(fetch(`${emulator.url}/__control/channels`)).rejects.toThrow();
    await expect(plainRequest(new URL(`${emulator.url}/__control/channels`))).rejects.toThrow(
      /self-signed|certificate/i,
    );
    expect(await emulator.control.channels()).toEqual([]);
    const token = await plainRequest(new URL(emulator.tokenUrl), {
      method: 'POST',
      ca: emulator.caCertificate!,
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'grant_type=refresh_token&refresh_token=unknown',
    });
    expect([token.status, JSON.parse(token.text).error]).toEqual([401, 'invalid_client']);
  });

  it('builds links from the listener scheme and the Host header the client sent', async () => {
    const port = new URL(emulator.url).port;
    expect(await watchAs(emulator, `localhost:${port}`, 'tls-a')).toBe(
      `https://localhost:${port}/calendar/v3/calendars/owner%40example.com/events?alt=json`,
    );
    expect(await watchAs(emulator, null, 'tls-b')).toMatch(
      new RegExp(`^https://127\\.0\\.0\\.1:${port}/calendar/v3/`),
    );
    // A Host header that is not a host falls back to the listener's own address.
    expect(await watchAs(emulator, 'evil/path?x', 'tls-c')).toMatch(
      new RegExp(`^https://127\\.0\\.0\\.1:${port}/calendar/v3/`),
    );
    await emulator.control.pushIdle();
    const deliveries = await emulator.control.deliveries();
    expect(deliveries.map((d) => d.status)).toEqual([200, 200, 200]);
  });
});

describe('the default listener', () => {
  it('stays plain http with no certificate, and echoes the Host header as well', async () => {
    const emulator = await startGoogleEmulator();
    try {
      expect(emulator.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect(emulator.caCertificate).toBeNull();
      const port = new URL(emulator.url).port;
      expect(await watchAs(emulator, `localhost:${port}`, 'plain')).toBe(
        `http://localhost:${port}/calendar/v3/calendars/owner%40example.com/events?alt=json`,
      );
    } finally {
      await emulator.stop();
    }
  });
});
