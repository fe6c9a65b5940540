/** SQLSTATE 23P01: the double-booking exclusion constraint refused a row. */
export function isExclusionViolation(error: unknown): boolean {
  return typeof error === 'object' && error !== null && (error as { code?: unknown }).code === '23P01';
}
