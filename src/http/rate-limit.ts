import fastifyRateLimit from '@fastify/rate-limit';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { errorHandler } from './problem-details.js';

const RATE_LIMITED = 'RATE_LIMITED';

/** A 429 from the limiter, as problem+json; Retry-After is already set by the limiter. */
function rateLimitedErrorHandler(error: FastifyError, request: FastifyRequest, reply: FastifyReply) {
  if (error.code !== RATE_LIMITED) return errorHandler(error, request, reply);
  return reply.code(429).type('application/problem+json').send({
    type: 'https://sched.dev/problems/rate-limited',
    title: 'Too Many Requests',
    status: 429,
    detail: error.message,
    code: RATE_LIMITED,
  });
}

/**
 * Limits, per client address, the routes of this plugin (all of them, or those that ask in `config.rateLimit`), and
 * answers the excess with a 429 problem naming when to retry. Counts are kept per process.
 */
export async function registerRateLimit(
  app: FastifyInstance,
  tooMany: string,
  /** Every route of the plugin shares this budget per client address; left out, only routes that ask. */
  shared?: { max: number; timeWindow: number },
): Promise<void> {
  await app.register(fastifyRateLimit, {
    ...(shared ? { global: true, ...shared } : { global: false }),
    errorResponseBuilder: (_request, context) =>
      Object.assign(new Error(`${tooMany}; retry in ${context.after}`), {
        statusCode: 429,
        code: RATE_LIMITED,
      }),
  });
  app.setErrorHandler(rateLimitedErrorHandler);
}

/** Where no public URL is configured, the address the caller used is the best guess at one. */
export function publicBase(publicUrl: string | undefined, request: FastifyRequest): string {
  if (publicUrl) return publicUrl.replace(/\/+$/, '');
  const host = request.host;
  return host ? `${request.protocol}://${host}` : '';
}
