import type { CalendarProvider } from '../port/provider.js';
import type { ConnectionRow } from '../../storage/database.js';
import type { CalendarDeps } from '../store/connections.js';
import type { CalendarBudget } from '../parsing/expand.js';
import type { Actor } from '../../services/context.js';

export type SyncStats = {
  fetched: number;
  created: number;
  updated: number;
  deleted: number;
  pushed: number;
  conflicts: number;
};

export type SyncContext = {
  deps: CalendarDeps;
  connection: ConnectionRow;
  provider: CalendarProvider;
  zone: string;
  actor: Actor;
  stats: SyncStats;
  now: number;
  /** Set when a pull decided that Sched's version must be written again. */
  pushAgain: boolean;
  /** What this sync may still spend on parsing, expanding and storing the calendar. */
  budget: CalendarBudget;
  /** What this sync's full read said of the calendar as a whole; unset when it read nothing whole. */
  calendarWarnings?: string[];
};

export function syncActor(connection: ConnectionRow): Actor {
  return {
    organizationId: connection.organization_id,
    label: `sync:${connection.provider}:${connection.connection_id}`,
    scopes: ['write'],
  };
}
