import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { NotificationParser, NotificationRequest } from '../../src/calendar/port/notifications.js';
import {
  canPush,
  type CalendarProvider,
  type KnownEvents,
  type OutgoingEvent,
  type RemoteChanges,
  type RemoteEvent,
  type WatchChannel,
  type WrittenEvent,
} from '../../src/calendar/port/provider.js';
import { expandObject } from '../../src/ical/expand-object.js';
import { ProviderError } from '../../src/integrations/errors.js';
import { BERLIN_VTIMEZONE } from '../support/berlin-vtimezone.js';

/** What a provider's test gives the suite: the provider, and a way to change its calendar behind its back. */
export type ContractFixture = {
  provider: CalendarProvider;
  /** Changes the calendar as a user would in their calendar app. */
  external: {
    /** Stores one VCALENDAR object; `name` is a hint for providers that let the client name objects. */
    put(ics: string, name?: string): Promise<void>;
    remove(remoteId: string): Promise<void>;
  };
  close(): Promise<void>;
  /** For providers that push (capabilities.push): where the emulator delivers, and how it is read. */
  push?: PushFixture;
};

export type PushFixture = {
  callbackUrl: string;
  lifecycleUrl: string;
  /** The parser of the hook at callbackUrl, as production runs it. */
  parse: NotificationParser;
  /** The requests the emulator delivered to callbackUrl so far, oldest first. */
  delivered(): NotificationRequest[];
  /** Resolves once every notification the emulator has sent so far has been answered. */
  idle(): Promise<void>;
};

export const CONTRACT_CASES = [
  'create-read',
  'create-idempotent',
  'find-by-uid',
  'full-listing',
  'incremental-own',
  'incremental-external',
  'garbage-cursor',
  'stale-etag',
  'update-moves',
  'delete',
  'recurring-external',
  'push',
] as const;
export type ContractCase = (typeof CONTRACT_CASES)[number];

export type ContractOptions = {
  /** Cases the provider cannot pass, each with the missing feature as the reason. */
  skip?: Partial<Record<ContractCase, string>>;
  /**
   * The provider lists a series as its instances, each its own object (Graph's calendarView), rather
   * than as one object with its rule and overrides: the series cases check the instants across objects.
   */
  seriesAsInstances?: boolean;
};

const HOUR = 3_600_000;
const WINDOW = { start: Date.UTC(2025, 0, 1), end: Date.UTC(2028, 0, 1) };

export function bookingEvent(overrides: Partial<OutgoingEvent> = {}): OutgoingEvent {
  const bookingId = randomUUID();
  return {
    uid: `${bookingId}@sched`,
    bookingId,
    sequence: 0,
    startsAt: Date.UTC(2026, 2, 2, 9),
    endsAt: Date.UTC(2026, 2, 2, 10),
    timeZone: 'Europe/Berlin',
    title: 'Contract: room 4, "quoted"; ümlauts',
    description: 'Line one\nline two',
    status: 'confirmed',
    attendees: [{ email: 'ana@example.com', name: 'Ana' }],
    updatedAt: Date.UTC(2026, 0, 1),
    ...overrides,
  };
}

/** A plain event as another calendar app would store it. */
export function externalEvent(uid: string, summary = 'Made elsewhere'): string {
  return calendar([
    'BEGIN:VEVENT',
    `UID:${uid}`,
    'DTSTAMP:20260101T000000Z',
    'DTSTART:20260310T140000Z',
    'DTEND:20260310T150000Z',
    `SUMMARY:${summary}`,
    'END:VEVENT',
  ]);
}

/** Weekly, five times, across the March DST change in Berlin, with one EXDATE and one moved instance. */
export function externalSeries(uid: string): string {
  return calendar([
    ...BERLIN_VTIMEZONE,
    'BEGIN:VEVENT',
    `UID:${uid}`,
    'DTSTAMP:20260101T000000Z',
    'DTSTART;TZID=Europe/Berlin:20260316T090000',
    'DTEND;TZID=Europe/Berlin:20260316T100000',
    'RRULE:FREQ=WEEKLY;COUNT=5',
    'EXDATE;TZID=Europe/Berlin:20260323T090000',
    'SUMMARY:Weekly',
    'END:VEVENT',
    'BEGIN:VEVENT',
    `UID:${uid}`,
    'DTSTAMP:20260101T000000Z',
    'RECURRENCE-ID;TZID=Europe/Berlin:20260330T090000',
    'DTSTART;TZID=Europe/Berlin:20260330T110000',
    'DTEND;TZID=Europe/Berlin:20260330T120000',
    'SUMMARY:Weekly (moved)',
    'END:VEVENT',
  ]);
}

function calendar(body: string[]): string {
  return ['BEGIN:VCALENDAR', 'VERSION:2.0', 'PRODID:-//Sched tests//EN', ...body, 'END:VCALENDAR', ''].join(
    '\r\n',
  );
}

export function readBack(ics: string) {
  const result = expandObject(ics, WINDOW, { floatingZone: 'UTC' });
  if (!result.ok) throw new Error(`unreadable object: ${result.error}\n${ics}`);
  return result;
}

function byUid(changes: RemoteChanges, uid: string): RemoteEvent[] {
  return changes.changed.filter((event) => readBack(event.ics).summary.uid === uid);
}

function knownFrom(...events: { remoteId: string; etag: string | null }[]): Map<string, string | null> {
  return new Map(events.map((event) => [event.remoteId, event.etag]));
}

async function expectCode(promise: Promise<unknown>, code: ProviderError['code']): Promise<void> {
  const error: unknown = await promise.then(
    () => undefined,
    (thrown: unknown) => thrown,
  );
  expect(error, `expected ProviderError ${code}`).toBeInstanceOf(ProviderError);
  expect((error as ProviderError).code).toBe(code);
}

/**
 * One behaviour suite for every calendar provider that writes. Each case gets a fresh, empty calendar
 * from `setup`.
 */
export function describeProviderContract(
  name: string,
  setup: () => Promise<ContractFixture>,
  options: ContractOptions = {},
): void {
  describe(`provider contract: ${name}`, () => {
    let fixture: ContractFixture;
    let provider: CalendarProvider;
    const none: KnownEvents = new Map();

    beforeEach(async () => {
      fixture = await setup();
      provider = fixture.provider;
    });
    afterEach(async () => {
      await fixture?.close();
    });

    const test = (key: ContractCase, title: string, body: () => Promise<void>) => {
      const reason = options.skip?.[key];
      if (reason) it.skip(`${title} (skipped: ${reason})`, body);
      else it(title, body);
    };

    /** Incremental providers must answer from the cursor; the others may list everything. */
    const expectIncremental = (changes: RemoteChanges) => {
      if (provider.capabilities.incremental) expect(changes.full).toBe(false);
    };

    test('create-read', 'creates an event and reads it back', async () => {
      const event = bookingEvent();
      const written = await provider.createEvent(event);
      const read = await provider.getEvent(written.remoteId);
      expect(read?.remoteId).toBe(written.remoteId);
      expect(read?.etag).toBe(written.etag);
      const { summary } = readBack(read!.ics);
      expect(summary.uid).toBe(event.uid);
      expect(summary.bookingId).toBe(event.bookingId);
      expect(summary.title).toBe(event.title);
      expect(summary.master).toMatchObject({ startsAt: event.startsAt, endsAt: event.endsAt });
    });

    test('create-idempotent', 'a second create with the same UID returns the first object', async () => {
      const event = bookingEvent();
      const first = await provider.createEvent(event);
      const second = await provider.createEvent({ ...event, sequence: 1 });
      expect(second.remoteId).toBe(first.remoteId);
      const listing = await provider.listChanges(null, none);
      expect(byUid(listing, event.uid)).toHaveLength(1);
    });

    test('find-by-uid', 'finds an object by UID, wherever it is stored', async () => {
      const event = bookingEvent();
      const written = await provider.createEvent(event);
      expect(await provider.findEvent(event.uid)).toMatchObject({
        remoteId: written.remoteId,
        etag: written.etag,
      });
      const uid = `${randomUUID()}@elsewhere`;
      await fixture.external.put(externalEvent(uid), 'named-by-another-app.ics');
      const listed = byUid(await provider.listChanges(null, none), uid);
      expect(listed).toHaveLength(1);
      expect((await provider.findEvent(uid))?.remoteId).toBe(listed[0]!.remoteId);
      expect(await provider.findEvent(`${randomUUID()}@nowhere`)).toBeNull();
    });

    test(
      'full-listing',
      'a listing without a cursor lists everything, and bodies only where etags differ',
      async () => {
        const written = await provider.createEvent(bookingEvent());
        const listing = await provider.listChanges(null, none);
        expect(listing.full).toBe(true);
        expect(listing.removed).toEqual([]);
        expect(listing.changed.map((e) => [e.remoteId, e.etag])).toEqual([[written.remoteId, written.etag]]);
        const again = await provider.listChanges(null, knownFrom(written));
        expect(again.changed).toEqual([]);
        expect(again.removed).toEqual([]);
      },
    );

    test(
      'incremental-own',
      'changes made through the provider show up from the previous cursor',
      async () => {
        const start = await provider.listChanges(null, none);
        const event = bookingEvent();
        const created = await provider.createEvent(event);
        const afterCreate = await provider.listChanges(start.cursor, none);
        expectIncremental(afterCreate);
        expect(afterCreate.changed.map((e) => [e.remoteId, e.etag])).toEqual([
          [created.remoteId, created.etag],
        ]);
        expect(afterCreate.removed).toEqual([]);

        const updated = await provider.updateEvent(created.remoteId, created.etag, {
          ...event,
          sequence: 1,
          title: 'Renamed',
        });
        const afterUpdate = await provider.listChanges(afterCreate.cursor, knownFrom(created));
        expectIncremental(afterUpdate);
        expect(afterUpdate.changed.map((e) => [e.remoteId, e.etag])).toEqual([
          [created.remoteId, updated.etag],
        ]);
        expect(readBack(afterUpdate.changed[0]!.ics).summary.title).toBe('Renamed');

        await provider.deleteEvent(created.remoteId, updated.etag);
        const afterDelete = await provider.listChanges(afterUpdate.cursor, knownFrom(updated));
        expectIncremental(afterDelete);
        expect(afterDelete.changed).toEqual([]);
        expect(afterDelete.removed).toEqual([created.remoteId]);
      },
    );

    test('incremental-external', 'changes made elsewhere show up from the previous cursor', async () => {
      const own = await provider.createEvent(bookingEvent());
      const start = await provider.listChanges(null, none);
      const uid = `${randomUUID()}@elsewhere`;
      await fixture.external.put(externalEvent(uid), 'made-elsewhere');
      const afterPut = await provider.listChanges(start.cursor, knownFrom(own));
      expectIncremental(afterPut);
      expect(afterPut.changed).toHaveLength(1);
      const theirs = afterPut.changed[0]!;
      expect(readBack(theirs.ics).summary.title).toBe('Made elsewhere');
      expect(readBack(theirs.ics).summary.uid).toBe(uid);

      await fixture.external.remove(theirs.remoteId);
      const afterRemove = await provider.listChanges(afterPut.cursor, knownFrom(own, theirs));
      expectIncremental(afterRemove);
      expect(afterRemove.changed).toEqual([]);
      expect(afterRemove.removed).toEqual([theirs.remoteId]);
    });

    test(
      'garbage-cursor',
      'a cursor the provider cannot use falls back to a full listing diffed against known',
      async () => {
        const kept = await provider.createEvent(bookingEvent());
        const dropped = await provider.createEvent(bookingEvent());
        const listing = await provider.listChanges(null, none);
        const known = new Map(listing.changed.map((e) => [e.remoteId, e.etag]));
        expect([...known.keys()].sort()).toEqual([kept.remoteId, dropped.remoteId].sort());
        await fixture.external.remove(dropped.remoteId);
        const changes = await provider.listChanges('not a cursor at all: {"[', known);
        expect(changes.full).toBe(true);
        expect(changes.changed).toEqual([]);
        expect(changes.removed).toEqual([dropped.remoteId]);
        if (provider.capabilities.incremental) expect(changes.cursor).not.toBeNull();
      },
    );

    test('stale-etag', 'a write with a stale etag fails with PRECONDITION_FAILED', async () => {
      const event = bookingEvent();
      const created = await provider.createEvent(event);
      const updated = await provider.updateEvent(created.remoteId, created.etag, { ...event, sequence: 1 });
      expect(updated.etag).not.toBe(created.etag);
      await expectCode(
        provider.updateEvent(created.remoteId, created.etag, { ...event, sequence: 2 }),
        'PRECONDITION_FAILED',
      );
      await expectCode(provider.deleteEvent(created.remoteId, created.etag), 'PRECONDITION_FAILED');
      expect(await provider.getEvent(created.remoteId)).not.toBeNull();
    });

    test('update-moves', 'an update moves the event', async () => {
      const event = bookingEvent();
      const created = await provider.createEvent(event);
      const moved = {
        ...event,
        sequence: 1,
        startsAt: event.startsAt + 26 * HOUR,
        endsAt: event.endsAt + 27 * HOUR,
      };
      const updated = await provider.updateEvent(created.remoteId, created.etag, moved);
      expect(updated.remoteId).toBe(created.remoteId);
      const read = await provider.getEvent(created.remoteId);
      expect(read?.etag).toBe(updated.etag);
      expect(readBack(read!.ics).summary.master).toMatchObject({
        startsAt: moved.startsAt,
        endsAt: moved.endsAt,
      });
    });

    test(
      'delete',
      'a deleted event is gone, deleting it again succeeds, updating it is NOT_FOUND',
      async () => {
        const event = bookingEvent();
        const created = await provider.createEvent(event);
        await provider.deleteEvent(created.remoteId, created.etag);
        expect(await provider.getEvent(created.remoteId)).toBeNull();
        await provider.deleteEvent(created.remoteId, created.etag);
        await provider.deleteEvent(created.remoteId, null);
        await expectCode(provider.updateEvent(created.remoteId, created.etag, event), 'NOT_FOUND');
        await expectCode(provider.updateEvent(created.remoteId, null, event), 'NOT_FOUND');
      },
    );

    const seriesTitle = options.seriesAsInstances
      ? 'a recurring series with an override is listed as its instances, at the right instants'
      : 'a recurring series with an override is listed as one object';
    test('recurring-external', seriesTitle, async () => {
      const uid = `${randomUUID()}@elsewhere`;
      await fixture.external.put(externalSeries(uid), 'weekly-series');
      const listing = await provider.listChanges(null, none);
      let occurrences;
      if (options.seriesAsInstances) {
        occurrences = listing.changed.flatMap((object) => readBack(object.ics).occurrences);
      } else {
        expect(listing.changed).toHaveLength(1);
        const series = readBack(listing.changed[0]!.ics);
        expect(series.summary).toMatchObject({ uid, recurring: true });
        occurrences = series.occurrences;
      }
      // 16, 30 (moved to 11:00 local), 6 and 13 April: 08:00Z before the change, 07:00Z after.
      expect(occurrences.map((o) => new Date(o.startsAt).toISOString()).sort()).toEqual([
        '2026-03-16T08:00:00.000Z',
        '2026-03-30T09:00:00.000Z',
        '2026-04-06T07:00:00.000Z',
        '2026-04-13T07:00:00.000Z',
      ]);
    });

    test('push', 'push: a watch notifies of changes with its secret, is renewed, and stops', async () => {
      // A provider that says it pushes implements the watch calls, and its test can receive them.
      expect(canPush(provider)).toBe(provider.capabilities.push);
      expect(fixture.push !== undefined).toBe(provider.capabilities.push);
      if (!canPush(provider) || !fixture.push) return;
      const push = fixture.push;
      const request = {
        callbackUrl: push.callbackUrl,
        lifecycleUrl: push.lifecycleUrl,
        secret: randomUUID(),
        ttlSeconds: 3600,
      };
      /** What the hook reads from the notifications sent while `change` ran. */
      const during = async (change: () => Promise<unknown>) => {
        await push.idle();
        const before = push.delivered().length;
        await change();
        await push.idle();
        return push
          .delivered()
          .slice(before)
          .flatMap((delivered) => push.parse(delivered));
      };
      const expectChanged = (received: ReturnType<NotificationParser>, channel: WatchChannel) => {
        const about = received.filter((notification) => notification.channelId === channel.id);
        expect(about.length).toBeGreaterThan(0);
        const held = { channelId: channel.id, token: request.secret, resourceId: channel.resourceId };
        expect(about).toEqual(about.map(() => ({ ...held, state: 'changed' })));
      };

      const channel = await provider.startWatch(request);
      expect(channel.expiresAt).toBeGreaterThan(Date.now());
      const event = bookingEvent();
      let created: WrittenEvent | undefined;
      expectChanged(await during(async () => (created = await provider.createEvent(event))), channel);

      const renewed = await provider.renewWatch(channel, request);
      let updated: WrittenEvent | undefined;
      const afterRenewal = await during(
        async () =>
          (updated = await provider.updateEvent(created!.remoteId, created!.etag, { ...event, sequence: 1 })),
      );
      expectChanged(afterRenewal, renewed);
      if (renewed.id !== channel.id) {
        // A channel replaced on renewal no longer notifies.
        expect(afterRenewal.filter((notification) => notification.channelId === channel.id)).toEqual([]);
      }

      await provider.stopWatch(renewed);
      await provider.stopWatch(renewed);
      const afterStop = await during(() => provider.deleteEvent(created!.remoteId, updated!.etag));
      expect(afterStop.filter((notification) => notification.channelId === renewed.id)).toEqual([]);
    });
  });
}
