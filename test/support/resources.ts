import { expect } from 'vitest';
import { roundTheClockWeekly } from './schedules.js';
import type { TestApp } from './test-app.js';

export type ResourceInput = { name: string; kind: 'person' | 'room' | 'equipment'; time_zone: string };

/**
 * A resource bookable around the clock, every day, through the API: for tests about bookings and
 * calendars rather than working hours. `schedule` adds to or replaces the schedule's other fields.
 */
export async function createOpenResource(
  t: TestApp,
  resource: ResourceInput,
  schedule: Record<string, unknown> = {},
): Promise<string> {
  const created = await t.request('POST', '/resources', { body: resource });
  expect(created.statusCode, created.body).toBe(201);
  const resourceId = created.json().resource_id as string;
  const scheduled = await t.request('PUT', `/resources/${resourceId}/schedule`, {
    body: { weekly: roundTheClockWeekly(), ...schedule },
  });
  expect(scheduled.statusCode, scheduled.body).toBe(200);
  return resourceId;
}
