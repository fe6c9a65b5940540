import { randomUUID } from 'node:crypto';
import type { Reply } from './server.js';

export type FaultKind = 410 | 429 | 500 | 502 | 503 | 504 | 'hang' | 'delay';

/**
 * Which calendarView/delta calls a rule targets: `start` a fresh round (window parameters, or the
 * empty `$deltatoken=` of a restart), `deltatoken` a round resumed from a deltaLink, `skiptoken` a
 * later page of a round (a nextLink), `continuation` either token.
 */
export type DeltaCallKind = 'start' | 'deltatoken' | 'skiptoken' | 'continuation';

/** An instant on the emulator's clock: epoch ms or an ISO 8601 text. */
export type ClockInstant = number | string;

export type FaultRule = {
  /**
   * 410 answers a delta call with SyncStateNotFound and a Location that starts the round over (other
   * calls get a bare 410); the numbers answer Graph's error JSON; 'hang' never answers; 'delay'
   * answers normally after `delayMs`.
   */
  kind: FaultKind;
  /** Fail the next `count` matching calls (with `nth`: that many from the nth on; default 1). */
  count?: number;
  /** Only the nth matching call (1-based) and, with `count`, the ones right after it. */
  nth?: number;
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
  /** Only calendarView/delta calls of this kind. */
  delta?: DeltaCallKind;
  /** Only calls made from this instant on (emulator clock). */
  from?: ClockInstant;
  /** Only calls made before this instant (emulator clock). */
  until?: ClockInstant;
};

/** One Graph call as the fault rules see it. */
export type FaultCall = { method: string; path: string; query: URLSearchParams; now: number };

/** What a call gets: a failure to answer with, a hang, a delay, a lost sync state, or nothing. */
export type FaultDecision = Reply | { delayMs: number } | { gone: true } | null;

type ActiveRule = FaultRule & { random: () => number; seen: number };

export const isDeltaPath = (path: string) => /\/calendarView\/delta$/i.test(path);

/** The kind of a delta call, or null for any other call. */
export function deltaCallKind(
  path: string,
  query: URLSearchParams,
): Exclude<DeltaCallKind, 'continuation'> | null {
  if (!isDeltaPath(path)) return null;
  if (query.get('$skiptoken')) return 'skiptoken';
  if (query.get('$deltatoken')) return 'deltatoken';
  return 'start';
}

function instant(value: ClockInstant | undefined): number | null {
  if (value === undefined) return null;
  const at = typeof value === 'number' ? value : Date.parse(value);
  return Number.isNaN(at) ? null : at;
}

function targets(rule: FaultRule, call: FaultCall): boolean {
  if (rule.method && rule.method.toUpperCase() !== call.method) return false;
  if (rule.path && !call.path.toLowerCase().includes(rule.path.toLowerCase())) return false;
  if (rule.delta) {
    const kind = deltaCallKind(call.path, call.query);
    if (kind === null) return false;
    if (rule.delta === 'continuation' ? kind === 'start' : kind !== rule.delta) return false;
  }
  const from = instant(rule.from);
  const until = instant(rule.until);
  if (from !== null && call.now < from) return false;
  if (until !== null && call.now >= until) return false;
  return true;
}

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
  410: ['SyncStateNotFound', 'The sync state generation is not found.'],
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
    this.#rules.push({ ...rule, random: seeded(rule.seed ?? 1), seen: 0 });
  }

  clear(): void {
    this.#rules = [];
  }

  /** What happens to this call: a failure, a hang, a delay, a lost sync state, or null to answer it normally. */
  decide(call: FaultCall): FaultDecision {
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
      if (!targets(rule, call)) continue;
      rule.seen++;
      let hit: boolean;
      if (rule.nth !== undefined) {
        hit = rule.seen >= rule.nth && rule.seen < rule.nth + (rule.count ?? 1);
      } else if (rule.count !== undefined) {
        hit = rule.count > 0;
        if (hit) rule.count--;
      } else {
        hit = rule.random() < (rule.rate ?? 1);
      }
      if (!hit) continue;
      this.injected++;
      if (rule.kind === 'hang') return { hang: true };
      if (rule.kind === 'delay') return { delayMs: rule.delayMs ?? 1000 };
      if (rule.kind === 410 && isDeltaPath(call.path)) return { gone: true };
      return faultReply(rule.kind, rule.retryAfter);
    }
    return null;
  }
}
