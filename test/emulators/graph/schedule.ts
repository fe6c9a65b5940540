import { ORGANIZER } from './event-json.js';
import { badRequest } from './graph-error.js';
import type { Mailbox } from './mailbox.js';
import { type DateTimeTimeZone, fromInstant, TimeError, toInstant } from './times.js';

/**
 * availabilityView digits. Current docs: working elsewhere counts as free (0) for backward
 * compatibility; older docs said 4. `workingElsewhereDigit` picks.
 */
const DIGITS: Record<string, number> = { free: 0, tentative: 1, busy: 2, oof: 3, unknown: 2 };

export const scheduleOptions = { workingElsewhereDigit: 0 };

function bound(value: unknown, field: string): number {
  try {
    return toInstant(value as DateTimeTimeZone);
  } catch (error) {
    if (error instanceof TimeError || error instanceof TypeError)
      throw badRequest(`${field} is not a dateTimeTimeZone.`);
    throw error;
  }
}

/** POST /me/calendar/getSchedule for the signed-in user's own address; other addresses get an error entry. */
export function getSchedule(mailbox: Mailbox, body: unknown, zone: string | null): Record<string, unknown> {
  const input = (body ?? {}) as Record<string, unknown>;
  const schedules = input.schedules;
  if (!Array.isArray(schedules) || schedules.length === 0) throw badRequest('schedules is required.');
  const start = bound(input.startTime, 'startTime');
  const end = bound(input.endTime, 'endTime');
  const interval = Number(input.availabilityViewInterval ?? 30);
  if (!Number.isInteger(interval) || interval < 5 || interval > 1440) {
    throw badRequest('availabilityViewInterval must be from 5 to 1440.');
  }
  const tz = zone ?? 'UTC';
  const value = schedules.map((scheduleId: unknown) => {
    if (String(scheduleId).toLowerCase() !== ORGANIZER.emailAddress.address) {
      return {
        scheduleId,
        availabilityView: '',
        scheduleItems: [],
        error: {
          message: `Mailbox ${String(scheduleId)} was not found.`,
          responseCode: 'ErrorMailRecipientNotFound',
        },
      };
    }
    const items = mailbox.instancesIn('primary', start, end).filter((i) => !i.fields.isCancelled);
    const slots: number[] = [];
    for (let at = start; at < end; at += interval * 60_000) {
      const slotEnd = Math.min(end, at + interval * 60_000);
      let digit = 0;
      for (const item of items) {
        if (item.start >= slotEnd || item.end <= at) continue;
        const d =
          item.fields.showAs === 'workingElsewhere'
            ? scheduleOptions.workingElsewhereDigit
            : (DIGITS[item.fields.showAs] ?? 2);
        digit = Math.max(digit, d);
      }
      slots.push(digit);
    }
    return {
      scheduleId,
      availabilityView: slots.join(''),
      scheduleItems: items.map((i) => ({
        isPrivate: i.fields.sensitivity === 'private',
        status: i.fields.showAs,
        subject: i.fields.subject,
        location: i.fields.location.displayName,
        start: fromInstant(i.start, tz),
        end: fromInstant(i.end, tz),
      })),
      workingHours: {
        daysOfWeek: ['monday', 'tuesday', 'wednesday', 'thursday', 'friday'],
        startTime: '08:00:00.0000000',
        endTime: '17:00:00.0000000',
        timeZone: { name: 'UTC' },
      },
    };
  });
  return {
    '@odata.context':
      'https://graph.microsoft.com/v1.0/$metadata#Collection(microsoft.graph.scheduleInformation)',
    value,
  };
}
