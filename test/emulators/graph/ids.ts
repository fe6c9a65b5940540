import { randomBytes } from 'node:crypto';
import { notFound } from './graph-error.js';

/**
 * Item ids. Inside the mailbox an event is its immutable key, and an occurrence is its master's key
 * plus its original start. Outside, Outlook shows two spellings: the immutable one (stable while the
 * item stays in the mailbox) and the default one, which names the folder and so changes when the
 * item moves to another calendar.
 */
const IMMUTABLE = 'AAkALgAAAAAAHYQDEapmEc2byACqAC';
const DEFAULT = 'AAMkAGI2TG93AAAAAAAHYQDEapmEc2byACqAC';

export type ItemKey = { eventId: string; originalStart: number | null };

export function newEventKey(): string {
  return randomBytes(12).toString('hex');
}

export function newChangeKey(): string {
  return randomBytes(16).toString('base64');
}

export function keyText(key: ItemKey): string {
  return key.originalStart === null ? key.eventId : `${key.eventId}@${key.originalStart}`;
}

export function encodeId(key: ItemKey, calendarId: string, immutable: boolean): string {
  const parts = [immutable ? '' : calendarId, key.eventId, key.originalStart ?? ''].join('|');
  return (immutable ? IMMUTABLE : DEFAULT) + Buffer.from(parts, 'utf8').toString('base64url');
}

/** The key an id names; `calendarId` is set for default ids, which stop working once the item moves. */
export function decodeId(id: string): ItemKey & { calendarId: string | null } {
  const prefix = id.startsWith(IMMUTABLE) ? IMMUTABLE : id.startsWith(DEFAULT) ? DEFAULT : null;
  if (prefix === null) throw notFound();
  const parts = Buffer.from(id.slice(prefix.length), 'base64url').toString('utf8').split('|');
  const [calendarId, eventId, start] = parts;
  if (parts.length !== 3 || !eventId || !/^[0-9a-f]{24}$/.test(eventId)) throw notFound();
  if (start !== '' && !/^-?\d+$/.test(start ?? '')) throw notFound();
  return {
    calendarId: prefix === DEFAULT ? (calendarId ?? '') : null,
    eventId,
    originalStart: start === '' || start === undefined ? null : Number(start),
  };
}
