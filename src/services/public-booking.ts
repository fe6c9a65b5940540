import { createHash, randomBytes } from 'node:crypto';
import { sql } from 'kysely';
import { MS_PER_MINUTE } from '../domain/civil-date.js';
import type {
  Attendee,
  BookingPageQuestion,
  BookingPageRow,
  Db,
  OrganizationRow,
} from '../storage/database.js';
import type { DatabaseKind } from '../storage/open-database.js';
import { type AvailabilityDeps, getAvailability } from './availability.js';
import { cancelBooking, createBooking, updateBooking } from './bookings/index.js';
import { type BookingView, bookingView } from './bookings/view.js';
import type { Actor } from './context.js';
import { ErrorCode, type FieldError, SchedError, validationError, validationErrors } from './errors.js';
import { createHold } from './holds.js';
import { isValidSlug } from './organizations.js';

const MS_PER_DAY = 86_400_000;
/** The longest window one public slots request may ask for. */
export const MAX_PUBLIC_WINDOW_DAYS = 62;

export type PublicDeps = AvailabilityDeps & { databaseKind?: DatabaseKind | undefined };

/** A published page with its organization, as a public URL names them. */
export type PublicPage = {
  organization: OrganizationRow;
  page: BookingPageRow;
  actor: Actor;
  /** The page's resources that still exist, in the page's order: a deleted member leaves the page. */
  liveResourceIds: string[];
};

function noSuchPage(): SchedError {
  return new SchedError(ErrorCode.NOT_FOUND, 'no such booking page');
}

/** Who acts for the public: the page's organization, audited as the page. */
function publicActor(organizationId: string, pageId: string | null): Actor {
  return { organizationId, label: pageId ? `public:booking_page:${pageId}` : 'public', scopes: [] };
}

/**
 * A page with its organization and its live resources, in one statement: every public request starts
 * here, so it costs one round trip.
 */
async function loadPage(
  db: Db,
  where: { orgSlug: string; pageSlug: string } | { pageId: string },
): Promise<PublicPage | undefined> {
  let select = db
    .selectFrom('booking_pages as bp')
    .innerJoin('organizations as o', 'o.organization_id', 'bp.organization_id')
    .selectAll('bp')
    .select([
      'o.name as organization_name',
      'o.slug as organization_slug',
      'o.time_zone as organization_time_zone',
      'o.branding as organization_branding',
      'o.created_at as organization_created_at',
      sql<string[]>`array(select r.resource_id from resources r
        where r.resource_id = any(bp.resource_ids) and r.organization_id = bp.organization_id
          and r.deleted_at is null)`.as('live_resource_ids'),
    ]);
  select =
    'pageId' in where
      ? select.where('bp.booking_page_id', '=', where.pageId)
      : select
          .where('o.slug', '=', where.orgSlug)
          .where('bp.slug', '=', where.pageSlug)
          .where('bp.published', '=', true);
  const row = await select.executeTakeFirst();
  if (!row) return undefined;
  const {
    organization_name,
    organization_slug,
    organization_time_zone,
    organization_branding,
    organization_created_at,
    live_resource_ids,
    ...page
  } = row;
  const live = new Set(live_resource_ids.map(String));
  return {
    page,
    organization: {
      organization_id: page.organization_id,
      name: organization_name,
      slug: organization_slug,
      time_zone: organization_time_zone,
      branding: organization_branding,
      created_at: organization_created_at,
    },
    actor: publicActor(page.organization_id, page.booking_page_id),
    liveResourceIds: page.resource_ids.filter((id) => live.has(id)),
  };
}

export async function findPublicPage(db: Db, orgSlug: string, pageSlug: string): Promise<PublicPage> {
  const found =
    isValidSlug(orgSlug) && isValidSlug(pageSlug) ? await loadPage(db, { orgSlug, pageSlug }) : undefined;
  if (!found) throw noSuchPage();
  return found;
}

export type PublicPageView = {
  title: string;
  description: string | null;
  durations_minutes: number[];
  location: { kind: string } | null;
  questions: BookingPageQuestion[];
  time_zone: string;
  requires_confirmation: boolean;
  window_days: number;
  organization: {
    name: string;
    slug: string;
    branding: { logo_url: string | null; accent_color: string | null };
  };
};

/** What anyone may know of a page: never its resources, their names or their bookings. */
export function publicPageView({ organization, page }: PublicPage): PublicPageView {
  return {
    title: page.title,
    description: page.description,
    durations_minutes: page.durations_minutes,
    location: page.location ? { kind: page.location.kind } : null,
    questions: page.questions,
    time_zone: organization.time_zone,
    requires_confirmation: page.requires_confirmation,
    window_days: page.window_days,
    organization: {
      name: organization.name,
      slug: organization.slug,
      branding: {
        logo_url: organization.branding.logo_url ?? null,
        accent_color: organization.branding.accent_color ?? null,
      },
    },
  };
}

/** With none left (all deleted), or a member gone from a page that books all of them, nothing is free. */
function isBookable({ page, liveResourceIds }: PublicPage): boolean {
  return page.assign === 'one'
    ? liveResourceIds.length > 0
    : liveResourceIds.length === page.resource_ids.length;
}

/** The resources a public booking or hold takes. */
function bookableResources(target: PublicPage): string[] {
  if (!isBookable(target)) throw slotGone();
  return target.liveResourceIds;
}

function durationOf(page: BookingPageRow, asked: number | undefined): number {
  const minutes = asked ?? page.durations_minutes[0]!;
  if (!page.durations_minutes.includes(minutes)) {
    throw validationError('duration_minutes', `must be one of ${page.durations_minutes.join(', ')}`);
  }
  return minutes;
}

export type PublicSlotsQuery = { start: number; end: number; duration_minutes?: number; time_zone?: string };

/**
 * The page's free slots: the availability engine with the page's duration and interval, inside the
 * page's window (from now to `window_days` ahead). Round-robin pages offer a time when any member is
 * free, other pages when all are. Slots say nothing of who is free.
 */
export async function publicSlots(
  deps: PublicDeps,
  target: PublicPage,
  query: PublicSlotsQuery,
): Promise<{ time_zone: string; slots: { start_time: string; end_time: string }[] }> {
  const { page, organization, actor } = target;
  if (query.end <= query.start) throw validationError('end', 'must be after start');
  if (query.end - query.start > MAX_PUBLIC_WINDOW_DAYS * MS_PER_DAY) {
    throw validationError('end', `the window may span at most ${MAX_PUBLIC_WINDOW_DAYS} days`);
  }
  const duration = durationOf(page, query.duration_minutes);
  const timeZone = query.time_zone ?? organization.time_zone;
  const now = deps.clock();
  const window = {
    start: Math.max(query.start, now),
    end: Math.min(query.end, now + page.window_days * MS_PER_DAY),
  };
  const resourceIds = target.liveResourceIds;
  if (window.end <= window.start || !isBookable(target)) return { time_zone: timeZone, slots: [] };
  const availability = await getAvailability(deps, actor, {
    resourceIds,
    window,
    durationMinutes: duration,
    intervalMinutes: page.interval_minutes ?? duration,
    mode: page.assign === 'one' ? 'any' : 'all',
    timeZone,
  });
  return {
    time_zone: availability.time_zone,
    slots: availability.slots.map((slot) => ({ start_time: slot.start_time, end_time: slot.end_time })),
  };
}

function slotGone(): SchedError {
  return new SchedError(ErrorCode.SLOT_UNAVAILABLE, 'that time is not available; choose another slot');
}

/**
 * A public request may name any start inside the page's window (from now to `window_days` ahead); the
 * booking engine then applies every rule of the resources (schedule, buffers, notice, horizon, other
 * bookings and holds, calendars). Slots are computed on a grid that depends on the window asked for,
 * so the grid itself is not enforced: a start off it is only a booking nobody was offered.
 */
function requireInWindow(page: BookingPageRow, start: number, duration: number, now: number): void {
  if (start < now || start + duration * MS_PER_MINUTE > now + page.window_days * MS_PER_DAY) throw slotGone();
}

/**
 * Errors of the booking engine name resources and their conflicts; the public learns only that the
 * time is taken, or that its hold does not fit.
 */
function publicError(error: unknown): never {
  if (error instanceof SchedError) {
    if (error.code === ErrorCode.SLOT_UNAVAILABLE || error.code === ErrorCode.RESOURCE_NOT_FOUND)
      throw slotGone();
    if (error.code === ErrorCode.HOLD_MISMATCH) {
      throw new SchedError(ErrorCode.HOLD_MISMATCH, 'the hold is for another time or page');
    }
  }
  throw error;
}

export async function publicHold(
  deps: PublicDeps,
  target: PublicPage,
  input: { start: number; duration_minutes: number },
): Promise<{ hold_id: string; expires_at: string }> {
  const duration = durationOf(target.page, input.duration_minutes);
  requireInWindow(target.page, input.start, duration, deps.clock());
  const hold = await createHold(deps, target.actor, {
    resource_ids: bookableResources(target),
    start: input.start,
    end: input.start + duration * MS_PER_MINUTE,
    assign: target.page.assign,
    ttl_seconds: target.page.hold_minutes * 60,
  }).catch(publicError);
  return { hold_id: hold.hold_id, expires_at: hold.expires_at };
}

export type AnswerValue = string | boolean;

const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;
const PHONE = /^\+?[0-9 ()./-]{3,40}$/;
const MAX_TEXT = { text: 1000, long_text: 10_000, email: 320, phone: 40, select: 200 } as const;

/** Every required question answered, every answer of the page's questions and of the right kind. */
export function checkAnswers(
  questions: readonly BookingPageQuestion[],
  answers: Record<string, AnswerValue>,
): Record<string, AnswerValue> {
  const errors: FieldError[] = [];
  const byKey = new Map(questions.map((question) => [question.key, question]));
  for (const key of Object.keys(answers)) {
    if (!byKey.has(key)) errors.push({ field: `answers.${key}`, message: 'is not a question of this page' });
  }
  for (const question of questions) {
    const field = `answers.${question.key}`;
    const value = answers[question.key];
    if (value === undefined || value === '' || (question.kind === 'checkbox' && value === false)) {
      if (question.required) errors.push({ field, message: `"${question.label}" must be answered` });
      continue;
    }
    if (question.kind === 'checkbox') {
      if (typeof value !== 'boolean') errors.push({ field, message: 'must be true or false' });
      continue;
    }
    if (typeof value !== 'string') {
      errors.push({ field, message: 'must be a string' });
      continue;
    }
    if (value.length > MAX_TEXT[question.kind]) {
      errors.push({ field, message: `must be at most ${MAX_TEXT[question.kind]} characters` });
    } else if (question.kind === 'email' && !EMAIL.test(value)) {
      errors.push({ field, message: 'must be an email address' });
    } else if (question.kind === 'phone' && (!PHONE.test(value) || (value.match(/\d/g)?.length ?? 0) < 3)) {
      errors.push({ field, message: 'must be a phone number' });
    } else if (question.kind === 'select' && !question.options?.includes(value)) {
      errors.push({ field, message: `must be one of: ${question.options?.join(', ')}` });
    }
  }
  if (errors.length > 0) throw validationErrors(errors);
  return Object.fromEntries(Object.entries(answers).filter(([, value]) => value !== ''));
}

export type PublicBookingInput = {
  start: number;
  duration_minutes: number;
  hold_id?: string | undefined;
  attendee: { name: string; email: string; time_zone: string };
  answers?: Record<string, AnswerValue> | undefined;
  guests?: string[] | undefined;
};

export type PublicBookingView = {
  booking_id: string;
  status: string;
  start_time: string;
  end_time: string;
  manage_url: string;
};

/** 32 random bytes, base64url: the attendee's secret; only its SHA-256 is kept. */
function newManageToken(): string {
  return randomBytes(32).toString('base64url');
}

export function hashManageToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

export function manageUrl(base: string, token: string): string {
  return `${base}/manage/${token}`;
}

export async function publicBook(
  deps: PublicDeps,
  target: PublicPage,
  input: PublicBookingInput,
  baseUrl: string,
): Promise<PublicBookingView> {
  const { page, actor } = target;
  const duration = durationOf(page, input.duration_minutes);
  const answers = checkAnswers(page.questions, input.answers ?? {});
  // A hold was inside the window when it was made: it may be booked until it expires.
  if (input.hold_id === undefined) requireInWindow(page, input.start, duration, deps.clock());
  const token = newManageToken();
  const attendees: Attendee[] = [
    { email: input.attendee.email, name: input.attendee.name },
    ...(input.guests ?? [])
      .filter((email) => email.toLowerCase() !== input.attendee.email.toLowerCase())
      .map((email) => ({ email })),
  ];
  const booking = await createBooking(deps, actor, {
    resource_ids: bookableResources(target),
    start: input.start,
    end: input.start + duration * MS_PER_MINUTE,
    title: `${page.title}: ${input.attendee.name}`,
    attendees,
    metadata: {
      booking_page_id: page.booking_page_id,
      booking_page_slug: page.slug,
      attendee_time_zone: input.attendee.time_zone,
      ...(Object.keys(answers).length > 0 ? { answers } : {}),
    },
    status: page.requires_confirmation ? 'pending' : 'confirmed',
    assign: page.assign,
    hold_id: input.hold_id,
    withBooking: async (trx, bookingId) => {
      await trx
        .insertInto('public_bookings')
        .values({
          booking_id: bookingId,
          organization_id: actor.organizationId,
          booking_page_id: page.booking_page_id,
          manage_token_hash: hashManageToken(token),
          attendee_time_zone: input.attendee.time_zone,
          duration_minutes: duration,
          created_at: new Date(deps.clock()),
        })
        .execute();
    },
  }).catch(publicError);
  return {
    booking_id: booking.booking_id,
    status: booking.status,
    start_time: booking.start_time,
    end_time: booking.end_time,
    manage_url: manageUrl(baseUrl, token),
  };
}

/** A booking as its manage token finds it; an unknown token is a 404. */
export type ManagedBooking = {
  booking: BookingView;
  actor: Actor;
  page: PublicPage | null;
  attendeeTimeZone: string;
  durationMinutes: number;
  /** Cancelled or rejected: the link is dead, though a replay of the request that killed it still answers. */
  dead: boolean;
};

function tokenNotFound(): SchedError {
  return new SchedError(ErrorCode.NOT_FOUND, 'this link is no longer valid');
}

export async function findManagedBooking(db: Db, token: string): Promise<ManagedBooking> {
  if (!/^[A-Za-z0-9_-]{43}$/.test(token)) throw tokenNotFound();
  const row = await db
    .selectFrom('public_bookings as p')
    .innerJoin('bookings as b', 'b.booking_id', 'p.booking_id')
    .selectAll('b')
    .select(['p.booking_page_id', 'p.attendee_time_zone', 'p.duration_minutes'])
    .where('p.manage_token_hash', '=', hashManageToken(token))
    .executeTakeFirst();
  if (!row) throw tokenNotFound();
  const page =
    row.booking_page_id === null ? null : ((await loadPage(db, { pageId: row.booking_page_id })) ?? null);
  const { booking_page_id: pageId, attendee_time_zone, duration_minutes, ...bookingRow } = row;
  return {
    booking: bookingView(bookingRow),
    actor: page?.actor ?? publicActor(bookingRow.organization_id, pageId),
    page,
    attendeeTimeZone: attendee_time_zone,
    durationMinutes: duration_minutes,
    dead: bookingRow.status !== 'pending' && bookingRow.status !== 'confirmed',
  };
}

/** The managed booking, unless its link is dead. */
export function liveManaged(managed: ManagedBooking): ManagedBooking {
  if (managed.dead) throw tokenNotFound();
  return managed;
}

export type ManageView = {
  booking_id: string;
  status: string;
  start_time: string;
  end_time: string;
  duration_minutes: number;
  time_zone: string;
  title: string | null;
  location: { kind: string; value: string | null } | null;
  attendee: { name: string | null; email: string } | null;
  booking_page: { slug: string; title: string; organization: { name: string; slug: string } } | null;
};

/** What the attendee may see of their booking: the time, the page and themselves, never who hosts it. */
export function manageView(managed: ManagedBooking, booking = managed.booking): ManageView {
  const attendee = booking.attendees[0];
  const page = managed.page;
  return {
    booking_id: booking.booking_id,
    status: booking.status,
    start_time: booking.start_time,
    end_time: booking.end_time,
    duration_minutes: managed.durationMinutes,
    time_zone: managed.attendeeTimeZone,
    title: page?.page.title ?? null,
    location: page?.page.location
      ? { kind: page.page.location.kind, value: page.page.location.value ?? null }
      : null,
    attendee: attendee ? { name: attendee.name ?? null, email: attendee.email } : null,
    booking_page: page
      ? {
          slug: page.page.slug,
          title: page.page.title,
          organization: { name: page.organization.name, slug: page.organization.slug },
        }
      : null,
  };
}

/** Moves the booking to another time inside its page's window, same length, same resources. */
export async function publicReschedule(
  deps: PublicDeps,
  managed: ManagedBooking,
  start: number,
): Promise<ManageView> {
  const duration = managed.durationMinutes;
  if (managed.page) requireInWindow(managed.page.page, start, duration, deps.clock());
  const moved = await updateBooking(deps, managed.actor, managed.booking.booking_id, {
    start,
    end: start + duration * MS_PER_MINUTE,
  }).catch(publicError);
  return manageView(managed, moved);
}

export async function publicCancel(
  deps: PublicDeps,
  managed: ManagedBooking,
  reason: string | undefined,
): Promise<ManageView> {
  // The token dies with the booking: a link finds only a pending or confirmed one.
  const cancelled = await cancelBooking(deps, managed.actor, managed.booking.booking_id, reason);
  return manageView(managed, cancelled);
}
