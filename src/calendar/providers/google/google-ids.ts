import { createHash } from 'node:crypto';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const BOOKING_UID = /^(.+)@sched$/;

/**
 * The event id a booking's event gets. Google lets clients choose ids in base32hex (a–v, 0–9, 5 to
 * 1024 characters), so a retried insert meets the first attempt's event as a 409 instead of making
 * a second one. Hex digits are base32hex digits, and so is "sched".
 */
export function eventIdForBooking(bookingId: string): string {
  const hex = UUID.test(bookingId)
    ? bookingId.replace(/-/g, '').toLowerCase()
    : createHash('sha256').update(bookingId).digest('hex').slice(0, 40);
  return `sched${hex}`;
}

/** The booking id of a `<booking id>@sched` UID; null for any other UID. */
export function bookingIdOfUid(uid: string): string | null {
  return BOOKING_UID.exec(uid)?.[1] ?? null;
}
