import type { Migration } from 'kysely';
import * as core from './2026-11-21-0001-core.js';
import * as webhooks from './2026-11-21-0002-webhooks.js';
import * as webhookNotify from './2026-11-21-0003-webhook-notify.js';
import * as calendars from './2026-11-21-0004-calendars.js';
import * as calendarWarnings from './2026-12-01-0002-calendar-warnings.js';
import * as webhookUrlSealed from './2026-12-02-0001-webhook-url-sealed.js';
import * as eventReadWarnings from './2026-12-02-0002-event-read-warnings.js';
import * as busyNotify from './2026-12-03-0001-busy-notify.js';
import * as keyNotifyAuditKey from './2026-12-03-0002-key-notify-audit-key.js';
import * as seriesSpan from './2026-12-04-0001-series-span.js';
import * as occurrenceBtrees from './2026-12-04-0002-occurrence-btrees.js';
import * as holdsStatuses from './2026-12-05-0001-holds-statuses.js';
import * as organizationSlug from './2026-12-05-0002-organization-slug.js';
import * as bookingPages from './2026-12-05-0003-booking-pages.js';
import * as bookingSeries from './2026-12-05-0004-booking-series.js';
import * as seriesCalendarLinks from './2026-12-05-0005-series-calendar-links.js';
import * as fairnessIndex from './2026-12-05-0006-fairness-index.js';
import * as publicBookingDeferred from './2026-12-05-0007-public-booking-deferred.js';

/** Every migration, in order. Listed statically so the compiled build and the TypeScript sources agree. */
export const migrations: Record<string, Migration> = {
  '2026-11-21-0001-core': core,
  '2026-11-21-0002-webhooks': webhooks,
  '2026-11-21-0003-webhook-notify': webhookNotify,
  '2026-11-21-0004-calendars': calendars,
  '2026-12-01-0002-calendar-warnings': calendarWarnings,
  '2026-12-02-0001-webhook-url-sealed': webhookUrlSealed,
  '2026-12-02-0002-event-read-warnings': eventReadWarnings,
  '2026-12-03-0001-busy-notify': busyNotify,
  '2026-12-03-0002-key-notify-audit-key': keyNotifyAuditKey,
  '2026-12-04-0001-series-span': seriesSpan,
  '2026-12-04-0002-occurrence-btrees': occurrenceBtrees,
  '2026-12-05-0001-holds-statuses': holdsStatuses,
  '2026-12-05-0002-organization-slug': organizationSlug,
  '2026-12-05-0003-booking-pages': bookingPages,
  '2026-12-05-0004-booking-series': bookingSeries,
  '2026-12-05-0005-series-calendar-links': seriesCalendarLinks,
  '2026-12-05-0006-fairness-index': fairnessIndex,
  '2026-12-05-0007-public-booking-deferred': publicBookingDeferred,
};
