import { describe, expect, it } from 'vitest';
import { RequestDurations } from '../../src/http/metrics.js';

describe('request duration histogram', () => {
  it('renders cumulative buckets, sum and count per method, route and status', () => {
    const durations = new RequestDurations();
    durations.observe('GET', '/healthz', 200, 0.002);
    durations.observe('GET', '/healthz', 200, 0.03);
    durations.observe('GET', '/healthz', 200, 7);
    durations.observe('POST', '/bookings', 409, 0.2);
    const text = durations.render();
    const labels = 'method="GET",route="/healthz",status="200"';
    expect(text).toContain('# TYPE sched_http_request_duration_seconds histogram');
    expect(text).toContain(`sched_http_request_duration_seconds_bucket{${labels},le="0.005"} 1`);
    expect(text).toContain(`sched_http_request_duration_seconds_bucket{${labels},le="0.025"} 1`);
    expect(text).toContain(`sched_http_request_duration_seconds_bucket{${labels},le="0.05"} 2`);
    expect(text).toContain(`sched_http_request_duration_seconds_bucket{${labels},le="5"} 2`);
    expect(text).toContain(`sched_http_request_duration_seconds_bucket{${labels},le="+Inf"} 3`);
    expect(text).toContain(`sched_http_request_duration_seconds_sum{${labels}} 7.032`);
    expect(text).toContain(`sched_http_request_duration_seconds_count{${labels}} 3`);
    expect(text).toContain(
      'sched_http_request_duration_seconds_count{method="POST",route="/bookings",status="409"} 1',
    );
  });

  it('escapes quotes and backslashes in label values', () => {
    const durations = new RequestDurations();
    durations.observe('GET', '/a"b\\c', 404, 0.001);
    expect(durations.render()).toContain('route="/a\\"b\\\\c"');
  });
});
