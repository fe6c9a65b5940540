import { randomUUID } from 'node:crypto';
import type { BookingPageLocation, BookingPageQuestion, BookingPageRow, Db } from '../storage/database.js';
import { isUniqueViolation } from '../storage/errors.js';
import { recordAudit } from './audit.js';
import type { Assign } from './bookings/assign.js';
import { loadBookableResources } from './bookable-resources.js';
import type { Actor } from './context.js';
import { ErrorCode, type FieldError, SchedError, validationErrors } from './errors.js';
import { afterKey, finishPage, pageOf, timeKey } from './pagination.js';

export const DEFAULT_HOLD_MINUTES = 5;
export const DEFAULT_WINDOW_DAYS = 60;

export type BookingPageFields = {
  slug: string;
  title: string;
  description: string | null;
  durations_minutes: number[];
  resource_ids: string[];
  assign: Assign;
  interval_minutes: number | null;
  location: BookingPageLocation | null;
  questions: BookingPageQuestion[];
  requires_confirmation: boolean;
  hold_minutes: number;
  window_days: number;
  published: boolean;
};

export type BookingPageInput = Partial<
  Omit<BookingPageFields, 'slug' | 'title' | 'durations_minutes' | 'questions'>
> &
  Pick<BookingPageFields, 'slug' | 'title' | 'durations_minutes' | 'resource_ids'> & {
    questions?: QuestionInput[] | undefined;
  };

export type QuestionInput = Omit<BookingPageQuestion, 'required'> & { required?: boolean | undefined };

export type BookingPagePatch = Partial<Omit<BookingPageInput, 'questions'>> & {
  questions?: QuestionInput[] | undefined;
};

export type BookingPageView = BookingPageFields & {
  booking_page_id: string;
  url: string;
  created_at: string;
  updated_at: string;
};

/** Where public pages live: SCHED_PUBLIC_URL, or the host the request came to. */
export type PageUrls = { base: string; organizationSlug: string };

export function pageUrl(urls: PageUrls, pageSlug: string): string {
  return `${urls.base}/book/${urls.organizationSlug}/${pageSlug}`;
}

export function bookingPageView(row: BookingPageRow, urls: PageUrls): BookingPageView {
  return {
    booking_page_id: row.booking_page_id,
    slug: row.slug,
    url: pageUrl(urls, row.slug),
    title: row.title,
    description: row.description,
    durations_minutes: row.durations_minutes,
    resource_ids: row.resource_ids,
    assign: row.assign,
    interval_minutes: row.interval_minutes,
    location: row.location,
    questions: row.questions,
    requires_confirmation: row.requires_confirmation,
    hold_minutes: row.hold_minutes,
    window_days: row.window_days,
    published: row.published,
    created_at: row.created_at.toISOString(),
    updated_at: row.updated_at.toISOString(),
  };
}

/**
 * What the schema cannot say: question keys are unique, a `select` has options and only a `select`
 * does, its options are distinct, and durations are listed once each.
 */
function checkFields(fields: Pick<BookingPageFields, 'durations_minutes' | 'questions'>): void {
  const errors: FieldError[] = [];
  const durations = new Set<number>();
  fields.durations_minutes.forEach((minutes, index) => {
    if (durations.has(minutes))
      errors.push({ field: `durations_minutes[${index}]`, message: 'is listed twice' });
    durations.add(minutes);
  });
  const keys = new Set<string>();
  fields.questions.forEach((question, index) => {
    const at = `questions[${index}]`;
    if (keys.has(question.key))
      errors.push({ field: `${at}.key`, message: `"${question.key}" is used twice` });
    keys.add(question.key);
    if (question.kind === 'select') {
      if (!question.options || question.options.length === 0) {
        errors.push({ field: `${at}.options`, message: 'a select question needs its options' });
      } else if (new Set(question.options).size !== question.options.length) {
        errors.push({ field: `${at}.options`, message: 'options must be distinct' });
      }
    } else if (question.options !== undefined) {
      errors.push({ field: `${at}.options`, message: 'only a select question has options' });
    }
  });
  if (errors.length > 0) throw validationErrors(errors);
}

function normalizeQuestions(questions: QuestionInput[] | undefined): BookingPageQuestion[] {
  return (questions ?? []).map((question) => ({
    key: question.key,
    label: question.label,
    kind: question.kind,
    required: question.required ?? false,
    ...(question.options !== undefined ? { options: question.options } : {}),
  }));
}

function slugTaken(slug: string): SchedError {
  return new SchedError(
    ErrorCode.SLUG_TAKEN,
    `another booking page of this organization has the slug "${slug}"`,
  );
}

function pageNotFound(id: string): SchedError {
  return new SchedError(ErrorCode.BOOKING_PAGE_NOT_FOUND, `no booking page ${id}`);
}

async function checkResources(db: Db, actor: Actor, resourceIds: readonly string[]): Promise<void> {
  await loadBookableResources(db, actor, resourceIds, { field: 'resource_ids' });
}

export async function createBookingPage(
  deps: { db: Db; clock: () => number },
  actor: Actor,
  input: BookingPageInput,
  urls: PageUrls,
): Promise<BookingPageView> {
  const fields: BookingPageFields = {
    slug: input.slug,
    title: input.title,
    description: input.description ?? null,
    durations_minutes: input.durations_minutes,
    resource_ids: input.resource_ids,
    assign: input.assign ?? 'all',
    interval_minutes: input.interval_minutes ?? null,
    location: input.location ?? null,
    questions: normalizeQuestions(input.questions),
    requires_confirmation: input.requires_confirmation ?? false,
    hold_minutes: input.hold_minutes ?? DEFAULT_HOLD_MINUTES,
    window_days: input.window_days ?? DEFAULT_WINDOW_DAYS,
    published: input.published ?? true,
  };
  checkFields(fields);
  await checkResources(deps.db, actor, fields.resource_ids);
  const at = new Date(deps.clock());
  try {
    return await deps.db.transaction().execute(async (trx) => {
      const row = await trx
        .insertInto('booking_pages')
        .values({
          ...fields,
          booking_page_id: randomUUID(),
          organization_id: actor.organizationId,
          location: fields.location === null ? null : JSON.stringify(fields.location),
          questions: JSON.stringify(fields.questions),
          created_at: at,
          updated_at: at,
        })
        .returningAll()
        .executeTakeFirstOrThrow();
      const view = bookingPageView(row, urls);
      await recordAudit(trx, actor, {
        action: 'booking_page.created',
        targetType: 'booking_page',
        targetId: row.booking_page_id,
        details: { booking_page: view },
      });
      return view;
    });
  } catch (error) {
    if (isUniqueViolation(error)) throw slugTaken(fields.slug);
    throw error;
  }
}

async function findPage(db: Db, actor: Actor, id: string, forUpdate = false): Promise<BookingPageRow> {
  let select = db
    .selectFrom('booking_pages')
    .selectAll()
    .where('booking_page_id', '=', id)
    .where('organization_id', '=', actor.organizationId);
  if (forUpdate) select = select.forUpdate();
  const row = await select.executeTakeFirst();
  if (!row) throw pageNotFound(id);
  return row;
}

export async function getBookingPage(db: Db, actor: Actor, id: string, urls: PageUrls) {
  return bookingPageView(await findPage(db, actor, id), urls);
}

export async function listBookingPages(
  db: Db,
  actor: Actor,
  query: { limit?: number | undefined; cursor?: string | undefined },
  urls: PageUrls,
): Promise<{ booking_pages: BookingPageView[]; next_cursor: string | null }> {
  const page = pageOf(query);
  let select = db
    .selectFrom('booking_pages')
    .selectAll()
    .select(timeKey('created_at').as('cursor_time'))
    .where('organization_id', '=', actor.organizationId);
  if (page.after) select = select.where(afterKey('created_at', 'booking_page_id', page.after));
  const rows = await select
    .orderBy('created_at')
    .orderBy('booking_page_id')
    .limit(page.limit + 1)
    .execute();
  const { items, nextCursor } = finishPage(rows, page.limit, (row) => row.booking_page_id);
  return { booking_pages: items.map((row) => bookingPageView(row, urls)), next_cursor: nextCursor };
}

export async function updateBookingPage(
  deps: { db: Db; clock: () => number },
  actor: Actor,
  id: string,
  patch: BookingPagePatch,
  urls: PageUrls,
): Promise<BookingPageView> {
  if (patch.resource_ids) await checkResources(deps.db, actor, patch.resource_ids);
  try {
    return await deps.db.transaction().execute(async (trx) => {
      const before = await findPage(trx, actor, id, true);
      const fields: BookingPageFields = {
        slug: patch.slug ?? before.slug,
        title: patch.title ?? before.title,
        description: patch.description !== undefined ? patch.description : before.description,
        durations_minutes: patch.durations_minutes ?? before.durations_minutes,
        resource_ids: patch.resource_ids ?? before.resource_ids,
        assign: patch.assign ?? before.assign,
        interval_minutes:
          patch.interval_minutes !== undefined ? patch.interval_minutes : before.interval_minutes,
        location: patch.location !== undefined ? patch.location : before.location,
        questions: patch.questions !== undefined ? normalizeQuestions(patch.questions) : before.questions,
        requires_confirmation: patch.requires_confirmation ?? before.requires_confirmation,
        hold_minutes: patch.hold_minutes ?? before.hold_minutes,
        window_days: patch.window_days ?? before.window_days,
        published: patch.published ?? before.published,
      };
      checkFields(fields);
      const row = await trx
        .updateTable('booking_pages')
        .set({
          ...fields,
          location: fields.location === null ? null : JSON.stringify(fields.location),
          questions: JSON.stringify(fields.questions),
          updated_at: new Date(deps.clock()),
        })
        .where('booking_page_id', '=', id)
        .returningAll()
        .executeTakeFirstOrThrow();
      const view = bookingPageView(row, urls);
      await recordAudit(trx, actor, {
        action: 'booking_page.updated',
        targetType: 'booking_page',
        targetId: id,
        details: { before: bookingPageView(before, urls), after: view },
      });
      return view;
    });
  } catch (error) {
    if (isUniqueViolation(error)) throw slugTaken(patch.slug ?? '');
    throw error;
  }
}

/** The page goes; bookings made through it stay, and their manage links keep working. */
export async function deleteBookingPage(db: Db, actor: Actor, id: string): Promise<void> {
  await db.transaction().execute(async (trx) => {
    const row = await trx
      .deleteFrom('booking_pages')
      .where('booking_page_id', '=', id)
      .where('organization_id', '=', actor.organizationId)
      .returning('slug')
      .executeTakeFirst();
    if (!row) throw pageNotFound(id);
    await recordAudit(trx, actor, {
      action: 'booking_page.deleted',
      targetType: 'booking_page',
      targetId: id,
      details: { slug: row.slug },
    });
  });
}
