/** What Sched writes for a booking. Adapters render it in their own format. */
export type OutgoingEvent = {
  /** Stable for the life of the booking: `<booking_id>@sched`. */
  uid: string;
  bookingId: string;
  /** RFC 5545 SEQUENCE; rises with every change Sched makes. */
  sequence: number;
  startsAt: number;
  endsAt: number;
  /**
   * The resource's zone. Providers whose events carry a zone (Google, Graph) are given it; iCalendar
   * objects are written in UTC, which every client shows in its own local time.
   */
  timeZone: string;
  title: string;
  description: string | null;
  status: 'confirmed' | 'cancelled';
  attendees: { email: string; name?: string | undefined }[];
  /** When Sched last changed the booking (epoch ms): LAST-MODIFIED / DTSTAMP. */
  updatedAt: number;
};
