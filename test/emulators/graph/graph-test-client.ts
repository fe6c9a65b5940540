import type { GraphEmulator } from './graph-emulator.js';

export type Answer = { status: number; headers: Headers; json: Record<string, any> };

/**
 * Graph calls as the mailbox's owner makes them in Outlook: a fresh token each time (so knobs that
 * expire tokens do not get in the way) and immutable ids unless the caller's headers say otherwise.
 */
export function graphCaller(emulator: () => GraphEmulator) {
  return async function call(
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<Answer> {
    const { accessToken } = emulator().control.mintToken();
    const url = /^https?:/.test(path) ? path : `${emulator().apiUrl}/${path}`;
    const response = await fetch(url, {
      method,
      headers: {
        authorization: `Bearer ${accessToken}`,
        prefer: 'IdType="ImmutableId"',
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        ...headers,
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await response.text();
    return { status: response.status, headers: response.headers, json: text ? JSON.parse(text) : {} };
  };
}

/** A dateTimeTimeZone in UTC from an ISO text or epoch ms. */
export function utc(at: string | number): { dateTime: string; timeZone: string } {
  const text = typeof at === 'number' ? new Date(at).toISOString() : at;
  return { dateTime: text.replace(/Z$/, '').slice(0, 19), timeZone: 'UTC' };
}
