/** The parts of Calendar v3 JSON the adapter reads and writes. */
export type GoogleDateTime = { date?: string; dateTime?: string; timeZone?: string };

export type GoogleAttendee = {
  email?: string;
  displayName?: string;
  responseStatus?: string;
  organizer?: boolean;
  self?: boolean;
};

export type GoogleEvent = {
  id: string;
  etag?: string;
  status?: 'confirmed' | 'tentative' | 'cancelled';
  updated?: string;
  created?: string;
  summary?: string;
  description?: string;
  location?: string;
  start?: GoogleDateTime;
  end?: GoogleDateTime;
  recurrence?: string[];
  recurringEventId?: string;
  originalStartTime?: GoogleDateTime;
  transparency?: 'opaque' | 'transparent';
  iCalUID?: string;
  sequence?: number;
  attendees?: GoogleAttendee[];
  organizer?: { email?: string; displayName?: string };
  extendedProperties?: { private?: Record<string, string>; shared?: Record<string, string> };
  eventType?: string;
};

export type GoogleEventList = {
  items?: GoogleEvent[];
  nextPageToken?: string;
  nextSyncToken?: string;
  timeZone?: string;
};

export type GoogleChannel = {
  id: string;
  resourceId?: string;
  resourceUri?: string;
  token?: string;
  /** Epoch ms, as a string. */
  expiration?: string;
};

export type GoogleErrorBody = {
  error?: {
    code?: number;
    message?: string;
    status?: string;
    errors?: { domain?: string; reason?: string; message?: string }[];
  };
};
