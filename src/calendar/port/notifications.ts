/**
 * Push notifications, as the hooks routes receive them, read by one parser per hook. Each parser lives
 * with its provider; the routes' store code (store/watches.ts) only ever sees the items below, checks
 * each against the channel it holds, and turns it into "sync this connection now".
 */
import { parseGoogleNotification } from '../providers/google/google-notification.js';
import { parseGraphLifecycle, parseGraphNotifications } from '../providers/outlook/outlook-notification.js';

/** What arrived at a hook: headers (names in any case) and the parsed body, if any. */
export type NotificationRequest = {
  headers: Readonly<Record<string, string | string[] | undefined>>;
  body: unknown;
};

/** One notification: which channel it names, the secret it carries, and what it asks of us. */
export type WatchNotification = {
  /** Google's channel id or Graph's subscription id, as in WatchChannel.id. */
  channelId: string;
  /** The secret given at watch time (Google channel token, Graph clientState); null when absent. */
  token: string | null;
  /** The watched resource (Google's resourceId, as in WatchChannel.resourceId); null for Graph. */
  resourceId: string | null;
  /**
   * `confirmed`: a new channel works, nothing changed (Google's `sync`). `changed`: something changed or
   * notifications were lost, so the connection syncs. `renew`: the channel must be renewed or made
   * anew (Graph's reauthorizationRequired, subscriptionRemoved), and the connection syncs too.
   */
  state: 'confirmed' | 'changed' | 'renew';
};

/** Reads a request into its notifications; none when it holds no well-formed one. */
export type NotificationParser = (request: NotificationRequest) => WatchNotification[];

/** The parser of each hook: /hooks/google, /hooks/outlook and /hooks/outlook/lifecycle. */
export const NOTIFICATION_PARSERS = {
  google: parseGoogleNotification,
  outlook: parseGraphNotifications,
  outlookLifecycle: parseGraphLifecycle,
} as const satisfies Record<string, NotificationParser>;
