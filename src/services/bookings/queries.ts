import { sql } from 'kysely';
import type { BookingRow, Db } from '../../storage/database.js';
import type { Actor } from '../context.js';
import { ErrorCode, SchedError, validationError } from '../errors.js';
import { afterKey, finishPage, pageOf, timeKey } from '../pagination.js';
import { type BookingStatus, type BookingView, bookingView } from './view.js';

export async function findBooking(
  db: Db,
  actor: Actor,
  bookingId: string,
  forUpdate = false,
): Promise<BookingRow> {
  let select = db
    .selectFrom('bookings')
    .selectAll()
    .where('booking_id', '=', bookingId)
    .where('organization_id', '=', actor.organizationId);
  if (forUpdate) select = select.forUpdate();
  const row = await select.executeTakeFirst();
  if (!row) throw new SchedError(ErrorCode.BOOKING_NOT_FOUND, `no booking ${bookingId}`);
  return row;
}

export async function getBooking(db: Db, actor: Actor, bookingId: string): Promise<BookingView> {
  return bookingView(await findBooking(db, actor, bookingId));
}

export type BookingListQuery = {
  resource_id?: string | undefined;
  start?: number | undefined;
  end?: number | undefined;
  status?: BookingStatus | undefined;
  limit?: number | undefined;
  cursor?: string | undefined;
};

export async function listBookings(
  db: Db,
  actor: Actor,
  query: BookingListQuery,
): Promise<{ bookings: BookingView[]; next_cursor: string | null }> {
  if (query.start !== undefined && query.end !== undefined && query.end <= query.start) {
    throw validationError('end', 'must be after start');
  }
  const page = pageOf(query);
  let select = db
    .selectFrom('bookings')
    .selectAll()
    .select(timeKey('start_time').as('cursor_time'))
    .where('organization_id', '=', actor.organizationId);
  if (query.resource_id) {
    select = select.where(sql<boolean>`resource_ids @> array[${query.resource_id}]::uuid[]`);
  }
  // A booking is listed when it overlaps the window, so one running across `start` is included.
  if (query.start !== undefined) select = select.where('end_time', '>', new Date(query.start));
  if (query.end !== undefined) select = select.where('start_time', '<', new Date(query.end));
  if (query.status) select = select.where('status', '=', query.status);
  if (page.after) select = select.where(afterKey('start_time', 'booking_id', page.after));
  const rows = await select
    .orderBy('start_time')
    .orderBy('booking_id')
    .limit(page.limit + 1)
    .execute();
  const { items, nextCursor } = finishPage(rows, page.limit, (row) => row.booking_id);
  return { bookings: items.map(bookingView), next_cursor: nextCursor };
}
