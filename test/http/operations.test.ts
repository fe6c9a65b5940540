import { expect, it } from 'vitest';
import { describeOnBackends } from '../support/backends.js';

describeOnBackends('operations endpoints', (t) => {
  it('answers /healthz without a key', async () => {
    const res = await t().request('GET', '/healthz', { key: null });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ status: 'ok' });
    expect(res.headers['x-request-id']).toBeTruthy();
  });

  it('checks the database in /readyz', async () => {
    const res = await t().request('GET', '/readyz', { key: null });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ status: 'ready', database: t().database.kind });
  });

  it('serves Prometheus metrics', async () => {
    await t().request('GET', '/healthz', { key: null });
    const res = await t().request('GET', '/metrics', { key: null });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/plain/);
    expect(res.body).toContain(
      'sched_http_request_duration_seconds_count{method="GET",route="/healthz",status="200"}',
    );
  });

  it('describes every contract route in /openapi.json', async () => {
    const res = await t().request('GET', '/openapi.json', { key: null });
    expect(res.statusCode).toBe(200);
    const spec = res.json();
    expect(spec.openapi).toBe('3.1.0');
    for (const [path, method] of [
      ['/resources', 'post'],
      ['/resources/{resource_id}', 'patch'],
      ['/resources/{resource_id}/schedule', 'put'],
      ['/availability', 'get'],
      ['/freebusy', 'post'],
      ['/bookings', 'post'],
      ['/bookings/{booking_id}', 'patch'],
      ['/bookings/{booking_id}/cancel', 'post'],
      ['/api-keys', 'post'],
      ['/api-keys/{api_key_id}', 'delete'],
      ['/audit-log', 'get'],
      ['/webhooks', 'post'],
      ['/webhooks/{webhook_id}', 'patch'],
      ['/webhooks/{webhook_id}/deliveries', 'get'],
      ['/webhooks/{webhook_id}/deliveries/{delivery_id}/retry', 'post'],
      ['/webhooks/{webhook_id}/rotate-secret', 'post'],
      ['/healthz', 'get'],
    ] as const) {
      expect(spec.paths[path]?.[method], `${method.toUpperCase()} ${path}`).toBeDefined();
    }
    expect(
      spec.paths['/bookings'].post.requestBody.content['application/json'].schema.additionalProperties,
    ).toBe(false);
  });

  it('serves a docs page at /docs', async () => {
    const res = await t().request('GET', '/docs/', { key: null });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/text\/html/);
    expect(res.body.toLowerCase()).toContain('swagger');
  });

  it('passes a well-formed x-request-id through and never leaks internals on a 500', async () => {
    const res = await t().request('GET', '/healthz', { key: null, headers: { 'x-request-id': 'trace-123' } });
    expect(res.headers['x-request-id']).toBe('trace-123');
  });
});
