import { createHash } from 'node:crypto';
import { splitCalendar } from '../../ical/split-calendar.js';
import type { RemoteEvent } from '../port/provider.js';

/**
 * A whole feed read into its objects: one per UID, with a hash of its text standing in for an etag
 * (feeds have no per-object versions). `warnings` are about the feed as a whole (components ignored,
 * duplicate UIDs, time zones dropped); each unreadable event is an object of its own, kept with its text.
 */
export type FeedRead = { ok: true; events: RemoteEvent[]; warnings: string[] } | { ok: false; error: string };

export function readFeed(text: string, maxBytes: number): FeedRead {
  const split = splitCalendar(text, { maxBytes });
  // Events that do not parse go on as they were written: the store keeps each with its reason, and
  // the connection's warnings name it. Only a feed with nothing readable or unreadable at all fails.
  const parts = split.ok ? [...split.parts, ...split.unreadable] : (split.unreadable ?? []);
  if (!split.ok && parts.length === 0) return { ok: false, error: split.error };
  const events = parts.map((part) => ({ remoteId: part.uid, etag: sha256(part.ics), ics: part.ics }));
  return { ok: true, events, warnings: split.ok ? split.warnings : [split.error] };
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}
