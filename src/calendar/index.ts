/**
 * The calendar module: two-way sync with Google, Outlook, CalDAV servers and ICS feeds. Inside,
 * `port/` is the provider port, `policy/` the pure decisions, `engine/` a sync (pull, push, settle),
 * `store/` what is kept (connections, events and occurrences, watches, conflicts, tokens),
 * `providers/` one folder per calendar system, and `worker.ts` the background job. Outside this
 * folder, import from here only, or from `busy.ts`: the calendar busy time the booking core reads
 * (kept apart so that the booking core does not load the sync engine, which itself books).
 */
export type { OutgoingEvent } from './port/provider.js';
export { pushUnavailableReason } from './policy/push-availability.js';
export { syncConnection } from './engine/sync.js';
export { createConnectors } from './providers/connectors.js';
export { createParserPool, inlineParser, type CalendarParser } from './parsing/parser.js';
export { finishAuthorization } from './store/authorization.js';
export { loadCalendarBusy } from './busy.js';
export { listConflicts, resolveConflict } from './store/conflicts.js';
export {
  connectCalendar,
  connectionView,
  disconnectCalendar,
  findConnection,
  listConnections,
  PROVIDER_DISPLAY_NAMES,
  updateConnection,
  type CalendarDeps,
  type Connectors,
} from './store/connections.js';
export { listCalendarEvents } from './store/event-listing.js';
export {
  acceptGoogleNotification,
  acceptOutlookLifecycle,
  acceptOutlookNotifications,
} from './store/watches.js';
export { CalendarSyncWorker, type CalendarSyncWorkerOptions } from './worker.js';
