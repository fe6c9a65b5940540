import type { FastifyRequest } from 'fastify';

/** Feed URLs carry their secret in the path; logs get a placeholder instead. */
export function redactSecrets(url: string): string {
  return url.replace(/\/feeds\/[^/?#]+\.ics/, '/feeds/[secret].ics');
}

/** What a request log line shows of the request: as Fastify's default, with secrets redacted. */
export const logSerializers = {
  req(request: FastifyRequest) {
    return {
      method: request.method,
      url: redactSecrets(request.url),
      host: request.host,
      remoteAddress: request.ip,
      remotePort: request.socket.remotePort,
    };
  },
};
