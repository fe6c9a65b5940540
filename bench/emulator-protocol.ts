import type { GoogleEndpoints, GraphEndpoints } from '../test/emulators/environment.js';

/** The emulator process (bench/emulator-child.ts) is up: where its two emulators listen. */
export type EmulatorsReady = { kind: 'ready'; google: GoogleEndpoints; graph: GraphEndpoints };

/** Load the first-sync benchmark's events (bench/provider-events.ts) for the day `today` into both. */
export type LoadEvents = { kind: 'load'; id: number; today: number };

/** The events loaded: where, with what tokens to read them, and how long each emulator took. */
export type EventsLoaded =
  | {
      kind: 'loaded';
      id: number;
      ok: true;
      googleCalendarId: string;
      graphCalendarId: string;
      googleToken: string;
      graphToken: string;
      loadMs: { google: number; outlook: number };
    }
  | { kind: 'loaded'; id: number; ok: false; error: string };
