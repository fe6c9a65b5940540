import { createHmac } from 'node:crypto';

/**
 * Standard Webhooks: HMAC-SHA256 over `${id}.${timestamp}.${body}` keyed with the base64 part of the
 * `whsec_` secret; the header lists `v1,<base64>` signatures separated by spaces, one per valid secret.
 */
export function signWebhook(
  secret: string,
  messageId: string,
  timestampSeconds: number,
  body: string,
): string {
  const key = Buffer.from(secret.startsWith('whsec_') ? secret.slice('whsec_'.length) : secret, 'base64');
  const mac = createHmac('sha256', key).update(`${messageId}.${timestampSeconds}.${body}`).digest('base64');
  return `v1,${mac}`;
}
