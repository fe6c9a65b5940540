/**
 * What every integration stands on (calendars now; notifications and task managers next): outbound
 * HTTP through the guard with one error mapping, OAuth 2.0, the closed set of provider failures, and
 * the registry of providers. Outside this folder, import from here only.
 */
export {
  CALENDAR_REGISTRY,
  PROVIDER_DISPLAY_NAMES,
  PROVIDER_NAMES,
  type Capabilities,
  type RegistryEntry,
} from './registry.js';
export { ProviderError, ProviderErrorCode } from './errors.js';
export {
  DEFAULT_MAX_BYTES,
  DEFAULT_TIMEOUT_MS,
  GuardedHttp,
  type HttpRequest,
  type HttpResponse,
} from './http/guarded-http.js';
export {
  OutboundGuard,
  OutboundRefusedError,
  parseAllowList,
  type OutboundPolicy,
} from './http/outbound-guard.js';
export {
  OAuthClient,
  type AuthorizationStart,
  type OAuthEndpoints,
  type TokenSet,
} from './oauth/oauth-client.js';
export { parseRetryAfter } from './http/retry-after.js';
