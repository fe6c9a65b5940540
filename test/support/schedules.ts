import { WEEKDAYS } from '../../src/domain/index.js';

/** The `weekly` of a schedule open all day, every day: tests that care about bookings, not hours. */
export function roundTheClockWeekly(): Record<string, [string, string][]> {
  return Object.fromEntries(WEEKDAYS.map((day) => [day, [['00:00', '24:00']]]));
}
