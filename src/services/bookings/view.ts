import { formatInstant } from '../../domain/index.js';
import type { Attendee, BookingRow, BookingStatusValue } from '../../storage/database.js';

export type BookingStatus = BookingStatusValue;

export type BookingView = {
  booking_id: string;
  status: BookingStatus;
  resource_ids: string[];
  start_time: string;
  end_time: string;
  title: string;
  description: string | null;
  attendees: Attendee[];
  metadata: Record<string, unknown>;
  cancel_reason: string | null;
  created_at: string;
  updated_at: string;
  /** The series this booking is an occurrence of (POST /bookings with `recurrence`); null otherwise. */
  series_id: string | null;
};

export function bookingView(row: BookingRow): BookingView {
  return {
    booking_id: row.booking_id,
    status: row.status,
    resource_ids: row.resource_ids,
    start_time: formatInstant(row.start_time.getTime()),
    end_time: formatInstant(row.end_time.getTime()),
    title: row.title,
    description: row.description,
    attendees: row.attendees,
    metadata: row.metadata,
    cancel_reason: row.cancel_reason,
    created_at: row.created_at.toISOString(),
    updated_at: row.updated_at.toISOString(),
    series_id: row.series_id,
  };
}
