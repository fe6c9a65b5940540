import { describe, expect, it } from 'vitest';
import { toGraphEvent } from '../../src/calendar/providers/outlook/map-outlook-event.js';

const event = {
  uid: 'b1@sched',
  bookingId: '6f1c2a44-3b5e-4c1d-9a8e-2f0b7c6d5e4f',
  sequence: 1,
  startsAt: Date.parse('2026-06-01T08:00:00Z'),
  endsAt: Date.parse('2026-06-01T09:00:00Z'),
  timeZone: 'Europe/Berlin',
  title: 'Check-up',
  description: 'Bring the forms',
  status: 'confirmed' as const,
  attendees: [{ email: 'ana@example.com', name: 'Ana' }, { email: 'ben@example.com' }],
  updatedAt: Date.parse('2026-05-01T00:00:00Z'),
};

describe('the Graph event Sched writes for a booking', () => {
  it('names the attendees in the body instead of inviting them, so sync never sends mail', () => {
    const body = toGraphEvent(event, true);
    expect(body).not.toHaveProperty('attendees');
    expect(body.body).toEqual({
      contentType: 'text',
      content: 'Bring the forms\n\nAttendees: Ana <ana@example.com>, ben@example.com',
    });
  });

  it('carries the booking id and a transaction id on create only', () => {
    expect(toGraphEvent(event, true)).toMatchObject({
      transactionId: expect.stringContaining(event.bookingId),
    });
    expect(toGraphEvent(event, false)).not.toHaveProperty('transactionId');
  });
});
