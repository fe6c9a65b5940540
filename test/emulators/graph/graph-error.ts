import { randomUUID } from 'node:crypto';

/** A Graph failure, answered as `{error:{code,message,innerError:{date,request-id}}}`. */
export class GraphError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

export function errorBody(code: string, message: string, extra: Record<string, unknown> = {}): string {
  const requestId = randomUUID();
  const date = new Date().toISOString().replace(/\.\d{3}Z$/, '');
  return JSON.stringify({
    error: {
      code,
      message,
      innerError: { date, 'request-id': requestId, 'client-request-id': requestId, ...extra },
    },
  });
}

export const notFound = (what = 'The specified object was not found in the store.') =>
  new GraphError(404, 'ErrorItemNotFound', what);

export const badRequest = (message: string, code = 'ErrorInvalidRequest') =>
  new GraphError(400, code, message);
