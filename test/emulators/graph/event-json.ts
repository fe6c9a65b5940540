import { createHash } from 'node:crypto';
import { encodeId } from './ids.js';
import type { Instance } from './mailbox.js';
import type { ExtendedExpand } from './odata.js';
import { floatingDate, fromInstant, isoUtc } from './times.js';

/** What the request's Prefer headers and query ask of an event's JSON. */
export type RenderOptions = {
  /** Prefer: outlook.timezone; UTC when absent. */
  timeZone: string | null;
  /** Prefer: IdType="ImmutableId". */
  immutable: boolean;
  /** Prefer: outlook.body-content-type. */
  bodyType: 'text' | 'html' | null;
  expand: ExtendedExpand;
  baseUrl: string;
};

export const ORGANIZER = { emailAddress: { name: 'Emulated User', address: 'user@emulator.test' } };

function stripHtml(html: string): string {
  return html
    .replace(/<br\s*\/?>/gi, '\n')
    .replace(/<[^>]*>/g, '')
    .replace(/&nbsp;/g, ' ')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&')
    .trim();
}

function escapeHtml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/\n/g, '<br>');
}

/** Graph's iCalUId differs per occurrence; derived here from the series' and the original start. */
function occurrenceUid(seriesUid: string, originalStart: number): string {
  return createHash('sha256')
    .update(`${seriesUid}|${originalStart}`)
    .digest('hex')
    .toUpperCase()
    .slice(0, 112);
}

export function eventId(instance: Instance, immutable: boolean): string {
  return encodeId(instance.key, instance.event.calendarId, immutable);
}

export function etagOf(changeKey: string): string {
  return `W/"${changeKey}"`;
}

export function renderEvent(instance: Instance, options: RenderOptions): Record<string, unknown> {
  const { event, fields, key } = instance;
  const zone = options.timeZone ?? 'UTC';
  const id = eventId(instance, options.immutable);
  const originalStart = key.originalStart;
  const occurrence = originalStart !== null;
  let body = fields.body;
  if (options.bodyType && options.bodyType !== body.contentType) {
    body = {
      contentType: options.bodyType,
      content: options.bodyType === 'text' ? stripHtml(body.content) : escapeHtml(body.content),
    };
  }
  const json: Record<string, unknown> = {
    '@odata.etag': etagOf(instance.changeKey),
    id,
    createdDateTime: isoUtc(event.created),
    lastModifiedDateTime: isoUtc(instance.modified),
    changeKey: instance.changeKey,
    categories: fields.categories,
    ...(event.transactionId === null ? {} : { transactionId: event.transactionId }),
    originalStartTimeZone: event.start.timeZone,
    originalEndTimeZone: event.end.timeZone,
    iCalUId: originalStart !== null ? occurrenceUid(event.iCalUId, originalStart) : event.iCalUId,
    reminderMinutesBeforeStart: fields.reminderMinutesBeforeStart,
    isReminderOn: fields.isReminderOn,
    hasAttachments: false,
    subject: fields.subject,
    bodyPreview: stripHtml(fields.body.content).slice(0, 255),
    importance: fields.importance,
    sensitivity: fields.sensitivity,
    isAllDay: instance.days !== null,
    isCancelled: fields.isCancelled,
    isOrganizer: true,
    responseRequested: true,
    seriesMasterId: occurrence
      ? encodeId({ eventId: event.id, originalStart: null }, event.calendarId, options.immutable)
      : null,
    showAs: fields.showAs,
    type: instance.type,
    webLink: `${options.baseUrl}/owa/?itemid=${encodeURIComponent(id)}&exvsurl=1&path=/calendar/item`,
    onlineMeetingUrl: null,
    isOnlineMeeting: false,
    onlineMeetingProvider: 'unknown',
    allowNewTimeProposals: true,
    isDraft: false,
    hideAttendees: false,
    responseStatus: { response: 'organizer', time: '0001-01-01T00:00:00Z' },
    body,
    start: instance.days ? floatingDate(instance.days.start, zone) : fromInstant(instance.start, zone),
    end: instance.days ? floatingDate(instance.days.end, zone) : fromInstant(instance.end, zone),
    location: { displayName: fields.location.displayName, locationType: 'default', uniqueIdType: 'unknown' },
    locations: fields.location.displayName ? [{ displayName: fields.location.displayName }] : [],
    recurrence: instance.type === 'seriesMaster' ? event.recurrence : null,
    attendees: fields.attendees,
    organizer: ORGANIZER,
  };
  if (originalStart !== null) json.originalStart = isoUtc(originalStart).replace(/\.\d+Z$/, 'Z');
  const wanted = options.expand;
  if (wanted) {
    const ids = wanted.ids === 'all' ? null : new Set(wanted.ids.map((i) => i.toLowerCase()));
    const found = event.extended.filter((p) => ids === null || ids.has(p.id.toLowerCase()));
    if (found.length > 0) json.singleValueExtendedProperties = found;
  }
  return json;
}
