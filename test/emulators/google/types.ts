/** The subset of Calendar v3 JSON the emulator stores and serves. */
export type EventDateTime = { date?: string; dateTime?: string; timeZone?: string };

export type Attendee = {
  email: string;
  displayName?: string;
  responseStatus?: string;
  optional?: boolean;
  organizer?: boolean;
  self?: boolean;
};

export type ExtendedProperties = { private?: Record<string, string>; shared?: Record<string, string> };

export type GoogleEvent = {
  kind: 'calendar#event';
  etag: string;
  id: string;
  status: 'confirmed' | 'tentative' | 'cancelled';
  htmlLink?: string;
  created?: string;
  updated?: string;
  summary?: string;
  description?: string;
  location?: string;
  creator?: { email: string; self?: boolean };
  organizer?: { email: string; self?: boolean };
  start?: EventDateTime;
  end?: EventDateTime;
  endTimeUnspecified?: boolean;
  recurrence?: string[];
  recurringEventId?: string;
  originalStartTime?: EventDateTime;
  transparency?: 'opaque' | 'transparent';
  visibility?: string;
  iCalUID: string;
  sequence: number;
  attendees?: Attendee[];
  extendedProperties?: ExtendedProperties;
  reminders?: { useDefault: boolean; overrides?: { method: string; minutes: number }[] };
  eventType: string;
  colorId?: string;
};

/** Bookkeeping the API never shows. */
export type StoredEvent = {
  body: GoogleEvent;
  /** Position in the calendar's change log of the last change. */
  changeSeq: number;
  /** Position at creation; listings page on it, so a change while paging never shifts a page. */
  createdSeq: number;
  /** Whether the whole event was deleted (as opposed to a cancelled instance of a live series). */
  deleted: boolean;
  /** The Send-Updates choice of the last write: recorded, nothing is sent. */
  sendUpdates?: string;
  /**
   * Which identifiers the insert supplied. Google's docs say only one of `id` and `iCalUID` should be
   * given at creation (advice, not an error Google documents), so both are accepted and recorded here.
   */
  insertedWith?: InsertedWith;
};

export type InsertedWith = { id: boolean; iCalUID: boolean };

export type Calendar = {
  id: string;
  summary: string;
  timeZone: string;
  events: Map<string, StoredEvent>;
  /** Incremented on every token expiry knob: tokens of an older generation answer 410. */
  generation: number;
  /** Tokens older than this change position lost their tombstones and answer 410. */
  purgedThrough: number;
};
