import { randomUUID } from 'node:crypto';
import type { Reply } from './server.js';

export type FaultKind = 429 | 500 | 502 | 503 | 504 | 'hang' | 'delay';

export type FaultRule = {
  kind: FaultKind;
  /** Fail the next `count` matching calls. */
  count?: number;
  /** Or fail this fraction of matching calls, drawn from a generator seeded with `seed`. */
  rate?: number;
  seed?: number;
  /** Retry-After as sent: "2", "2.5"; null or absent sends none. */
  retryAfter?: string | null;
  /** For kind 'delay': how long before the call is answered normally. */
  delayMs?: number;
  /** Only calls with this method. */
  method?: string;
  /** Only calls whose path contains this text (case-insensitive). */
  path?: string;
};

type ActiveRule = FaultRule & { random: () => number };

/** mulberry32: small, seedable, good enough to make a fault rate reproducible. */
function seeded(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const MESSAGES: Record<number, [string, string]> = {
  429: ['TooManyRequests', 'Please retry again later.'],
  500: ['InternalServerError', 'An internal server error occurred.'],
  502: ['BadGateway', 'Bad gateway.'],
  503: ['serviceNotAvailable', 'The service is temporarily unavailable.'],
  504: ['GatewayTimeout', 'The gateway did not receive a response in time.'],
};

export function faultReply(status: number, retryAfter: string | null | undefined): Reply {
  const [code, message] = MESSAGES[status] ?? ['UnknownError', 'Error'];
  const date = new Date().toISOString().replace(/\.\d{3}Z$/, '');
  const innerError = {
    code: String(status),
    date,
    message: 'Please retry after',
    'request-id': randomUUID(),
    status: String(status),
  };
  return {
    status,
    json: { error: { code, innerError, message } },
    headers: { 'content-type': 'application/json', ...(retryAfter ? { 'retry-after': retryAfter } : {}) },
  };
}

/** Injected failures for Graph calls, and Outlook's limit of concurrent requests per mailbox. */
export class Faults {
  #rules: ActiveRule[] = [];
  /** Outlook allows 4 concurrent requests per app and mailbox; null means no limit. */
  maxConcurrent: number | null = null;
  inFlight = 0;
  /** Calls failed so far, for tests to assert on. */
  injected = 0;

  add(rule: FaultRule): void {
    this.#rules.push({ ...rule, random: seeded(rule.seed ?? 1) });
  }

  clear(): void {
    this.#rules = [];
  }

  /** What happens to this call: a failure, a hang, a delay, or null to answer it normally. */
  decide(method: string, path: string): Reply | { delayMs: number } | null {
    if (this.maxConcurrent !== null && this.inFlight >= this.maxConcurrent) {
      const reply = faultReply(429, '1');
      if ('json' in reply) {
        reply.json = {
          error: {
            code: 'ApplicationThrottled',
            message: 'Application is over its MailboxConcurrency limit.',
          },
        };
      }
      return reply;
    }
    for (const rule of this.#rules) {
      if (rule.method && rule.method.toUpperCase() !== method) continue;
      if (rule.path && !path.toLowerCase().includes(rule.path.toLowerCase())) continue;
      let hit: boolean;
      if (rule.count !== undefined) {
        hit = rule.count > 0;
        if (hit) rule.count--;
      } else {
        hit = rule.random() < (rule.rate ?? 1);
      }
      if (!hit) continue;
      this.injected++;
      if (rule.kind === 'hang') return { hang: true };
      if (rule.kind === 'delay') return { delayMs: rule.delayMs ?? 1000 };
      return faultReply(rule.kind, rule.retryAfter);
    }
    return null;
  }
}
