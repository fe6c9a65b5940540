/** SQLSTATE 23P01: the double-booking exclusion constraint refused a row. */
export function isExclusionViolation(error: unknown): boolean {
  return typeof error === 'object' && error !== null && (error as { code?: unknown }).code === '23P01';
}

/** SQLSTATE 40P01 (deadlock) and 40001 (serialization failure): the transaction may simply be run again. */
export function isRetryableConflict(error: unknown): boolean {
  const code = typeof error === 'object' && error !== null ? (error as { code?: unknown }).code : undefined;
  return code === '40P01' || code === '40001';
}

/** SQLSTATE 23505: a unique constraint refused a row. */
export function isUniqueViolation(error: unknown): boolean {
  return typeof error === 'object' && error !== null && (error as { code?: unknown }).code === '23505';
}
