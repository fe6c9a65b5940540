import {
  canonicalTimeZone,
  defaultSchedule,
  type Schedule,
  type Weekday,
  validateSchedule,
} from '../domain/index.js';
import type { Db, ScheduleRow, StoredWeekly } from '../storage/database.js';
import { recordAudit } from './audit.js';
import type { Actor, ServiceDeps } from './context.js';
import { validationError, validationErrors } from './errors.js';
import { findResource } from './resources.js';

type WallPair = [string, string];

export type ScheduleView = {
  resource_id: string;
  time_zone: string;
  weekly: Partial<Record<Weekday, WallPair[]>>;
  overrides: { date: string; intervals: WallPair[] }[];
  buffer_before_minutes: number;
  buffer_after_minutes: number;
  minimum_notice_minutes: number;
  booking_horizon_days: number;
  is_default: boolean;
};

export type ScheduleInput = {
  time_zone?: string | undefined;
  weekly?: Partial<Record<Weekday, WallPair[]>> | undefined;
  overrides?: { date: string; intervals: WallPair[] }[] | undefined;
  buffer_before_minutes?: number | undefined;
  buffer_after_minutes?: number | undefined;
  minimum_notice_minutes?: number | undefined;
  booking_horizon_days?: number | undefined;
};

export type ScheduleFields = Pick<
  ScheduleRow,
  | 'time_zone'
  | 'weekly'
  | 'overrides'
  | 'buffer_before_minutes'
  | 'buffer_after_minutes'
  | 'minimum_notice_minutes'
  | 'booking_horizon_days'
>;

export function scheduleFromRow(row: ScheduleFields): Schedule {
  return {
    timeZone: row.time_zone,
    weekly: row.weekly,
    overrides: row.overrides.map((override) => ({ localDate: override.date, intervals: override.intervals })),
    bufferBeforeMinutes: row.buffer_before_minutes,
    bufferAfterMinutes: row.buffer_after_minutes,
    minimumNoticeMinutes: row.minimum_notice_minutes,
    bookingHorizonDays: row.booking_horizon_days,
  };
}

function scheduleView(resourceId: string, schedule: Schedule, isDefault: boolean): ScheduleView {
  const weekly: Partial<Record<Weekday, WallPair[]>> = {};
  for (const [day, intervals] of Object.entries(schedule.weekly)) {
    weekly[day as Weekday] = (intervals ?? []).map(([start, end]) => [start, end]);
  }
  return {
    resource_id: resourceId,
    time_zone: schedule.timeZone,
    weekly,
    overrides: schedule.overrides.map((override) => ({
      date: override.localDate,
      intervals: override.intervals.map(([start, end]) => [start, end]),
    })),
    buffer_before_minutes: schedule.bufferBeforeMinutes,
    buffer_after_minutes: schedule.bufferAfterMinutes,
    minimum_notice_minutes: schedule.minimumNoticeMinutes,
    booking_horizon_days: schedule.bookingHorizonDays,
    is_default: isDefault,
  };
}

export async function getSchedule(db: Db, actor: Actor, resourceId: string): Promise<ScheduleView> {
  const resource = await findResource(db, actor, resourceId);
  const row = await db
    .selectFrom('schedules')
    .selectAll()
    .where('resource_id', '=', resourceId)
    .executeTakeFirst();
  return row
    ? scheduleView(resourceId, scheduleFromRow(row), false)
    : scheduleView(resourceId, defaultSchedule(resource.time_zone), true);
}

function scheduleOfInput(input: ScheduleInput, base: Schedule): Schedule {
  return {
    // Stored under its canonical IANA name, whichever alias was given.
    timeZone:
      input.time_zone === undefined ? base.timeZone : (canonicalTimeZone(input.time_zone) ?? input.time_zone),
    weekly: input.weekly ?? base.weekly,
    overrides: input.overrides
      ? input.overrides.map((o) => ({ localDate: o.date, intervals: o.intervals }))
      : base.overrides,
    bufferBeforeMinutes: input.buffer_before_minutes ?? base.bufferBeforeMinutes,
    bufferAfterMinutes: input.buffer_after_minutes ?? base.bufferAfterMinutes,
    minimumNoticeMinutes: input.minimum_notice_minutes ?? base.minimumNoticeMinutes,
    bookingHorizonDays: input.booking_horizon_days ?? base.bookingHorizonDays,
  };
}

/** Validates and stores a whole schedule, with its audit entry, in the caller's transaction. */
async function storeSchedule(
  trx: Db,
  actor: Actor,
  resourceId: string,
  schedule: Schedule,
  now: number,
): Promise<ScheduleView> {
  const problems = validateSchedule(schedule);
  if (problems.length > 0) throw validationErrors(problems);
  const view = scheduleView(resourceId, schedule, false);
  const values = {
    time_zone: schedule.timeZone,
    weekly: JSON.stringify(view.weekly satisfies StoredWeekly),
    overrides: JSON.stringify(view.overrides),
    buffer_before_minutes: schedule.bufferBeforeMinutes,
    buffer_after_minutes: schedule.bufferAfterMinutes,
    minimum_notice_minutes: schedule.minimumNoticeMinutes,
    booking_horizon_days: schedule.bookingHorizonDays,
    updated_at: new Date(now),
  };
  await trx
    .insertInto('schedules')
    .values({ resource_id: resourceId, organization_id: actor.organizationId, ...values })
    .onConflict((oc) => oc.column('resource_id').doUpdateSet(values))
    .execute();
  await recordAudit(trx, actor, {
    action: 'schedule.updated',
    targetType: 'resource',
    targetId: resourceId,
    details: { schedule: view },
  });
  return view;
}

/**
 * PUT replaces the whole schedule: `weekly` is required (the route says so), and the other fields
 * left out take their defaults, not their previous values.
 */
export async function putSchedule(
  { db, clock }: ServiceDeps,
  actor: Actor,
  resourceId: string,
  input: ScheduleInput,
): Promise<ScheduleView> {
  // Checked here rather than in the body schema, so that a bad value of another field is named too.
  if (input.weekly === undefined) {
    throw validationError(
      'weekly',
      'is required: PUT replaces the whole schedule; PATCH changes some fields',
    );
  }
  return db.transaction().execute(async (trx) => {
    const resource = await findResource(trx, actor, resourceId);
    const base = { ...defaultSchedule(resource.time_zone), weekly: {}, overrides: [] };
    return storeSchedule(trx, actor, resourceId, scheduleOfInput(input, base), clock());
  });
}

/** PATCH changes only the fields given; the others keep their stored values (or the defaults). */
export async function patchSchedule(
  { db, clock }: ServiceDeps,
  actor: Actor,
  resourceId: string,
  input: ScheduleInput,
): Promise<ScheduleView> {
  return db.transaction().execute(async (trx) => {
    const resource = await findResource(trx, actor, resourceId);
    const row = await trx
      .selectFrom('schedules')
      .selectAll()
      .where('resource_id', '=', resourceId)
      .forUpdate()
      .executeTakeFirst();
    const base = row ? scheduleFromRow(row) : defaultSchedule(resource.time_zone);
    return storeSchedule(trx, actor, resourceId, scheduleOfInput(input, base), clock());
  });
}
