import { Type, type TSchema } from 'typebox';

// Custom formats are registered with the validator in build-app.ts, so a bad value fails validation
// with its field named, before any handler runs.
export const Instant = Type.String({
  format: 'instant',
  description:
    'RFC 3339 instant with an offset, in the years 1900–9999, e.g. 2026-05-18T10:00:00Z or 2026-05-18T12:00:00+02:00',
  examples: ['2026-05-18T10:00:00Z'],
});
export const TimeZone = Type.String({
  format: 'time-zone',
  description: 'IANA time zone name, e.g. Europe/Berlin',
  examples: ['Europe/Berlin'],
});
/** The canonical 8-4-4-4-12 hex form, either case; no `urn:uuid:` prefix, no braces. */
export const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
export const Uuid = Type.String({ format: 'uuid', description: 'A UUID: 8-4-4-4-12 hex digits' });
export const LocalDate = Type.String({ format: 'local-date', description: 'YYYY-MM-DD' });
export const WallTime = Type.String({ format: 'wall-time', description: 'HH:MM, 00:00 to 24:00' });
export const Email = Type.String({ format: 'email', maxLength: 320 });

export const Limit = Type.Integer({ minimum: 1, maximum: 500, default: 50 });
export const Cursor = Type.String({ maxLength: 512 });
export const PageQuery = { limit: Type.Optional(Limit), cursor: Type.Optional(Cursor) };

export function Strict<T extends Record<string, TSchema>>(
  properties: T,
  options: { description?: string } = {},
) {
  return Type.Object(properties, { additionalProperties: false, ...options });
}

const Conflict = Type.Object({
  resource_id: Type.String(),
  start_time: Type.String(),
  end_time: Type.String(),
  kind: Type.String(),
});

export const Problem = Type.Object(
  {
    type: Type.String(),
    title: Type.String(),
    status: Type.Integer(),
    detail: Type.String(),
    code: Type.String(),
    instance: Type.Optional(Type.String()),
    errors: Type.Optional(Type.Array(Type.Object({ field: Type.String(), message: Type.String() }))),
    conflicts: Type.Optional(Type.Array(Conflict)),
    occurrences: Type.Optional(
      Type.Array(
        Type.Object({ start_time: Type.String(), end_time: Type.String(), conflicts: Type.Array(Conflict) }),
        { description: 'A recurring booking: each occurrence that cannot be booked, with its conflicts' },
      ),
    ),
  },
  { $id: 'Problem', description: 'RFC 9457 problem details' },
);

export const ProblemRef = Type.Unsafe({ $ref: 'Problem#' });

/** Response schemas for the errors every authenticated route can give. */
export const commonErrors = {
  400: ProblemRef,
  401: ProblemRef,
  403: ProblemRef,
  404: ProblemRef,
};
