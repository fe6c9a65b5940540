import type { SpawnedServer } from './spawn-server.js';

/** A spawned server's answer: its status and its body, parsed when it is JSON. */
export type Reply = { status: number; body: any };

export async function readReply(response: Response): Promise<Reply> {
  const text = await response.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // Kept as text: a non-JSON answer is itself a finding the assertions will show.
  }
  return { status: response.status, body };
}

/** One request to a spawned server over real HTTP, with an API key or (null) without one. */
export async function callServer(
  server: SpawnedServer,
  key: string | null,
  method: string,
  url: string,
  body?: unknown,
  timeoutMs = 30_000,
): Promise<Reply> {
  const response = await fetch(`${server.url}${url}`, {
    method,
    headers: {
      ...(key ? { authorization: `Bearer ${key}` } : {}),
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    signal: AbortSignal.timeout(timeoutMs),
  });
  return readReply(response);
}

/** Midnight UTC two days ahead: in the future and within any default booking horizon or page window. */
export function baseTime(): number {
  const today = new Date();
  return Date.UTC(today.getUTCFullYear(), today.getUTCMonth(), today.getUTCDate() + 2);
}

export const iso = (ms: number) => new Date(ms).toISOString();
