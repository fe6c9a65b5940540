import { expect } from 'vitest';
import type { TestApp } from './test-app.js';

/**
 * The user's trip to the provider and back: open the authorization URL, consent (the emulators
 * approve at once unless told otherwise), and follow the redirect to our callback.
 */
export async function consent(t: TestApp, provider: 'google' | 'outlook', authorizationUrl: string) {
  const answer = await fetch(authorizationUrl, { redirect: 'manual' });
  expect(answer.status).toBe(302);
  const location = new URL(answer.headers.get('location')!);
  expect(location.pathname).toBe(`/oauth/${provider}/callback`);
  return t.request('GET', `${location.pathname}${location.search}`, { key: null });
}
