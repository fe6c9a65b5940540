import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { getOrganization, SLUG_PATTERN, updateOrganization } from '../../services/organizations.js';
import { validationError } from '../../services/errors.js';
import { actorOf } from '../auth.js';
import type { RouteDeps } from '../build-app.js';
import { commonErrors, ProblemRef, Strict, TimeZone } from '../schemas.js';

export const Slug = Type.String({
  pattern: SLUG_PATTERN,
  minLength: 1,
  maxLength: 63,
  description: 'Lowercase letters, digits and `-` (not first or last); at most 63 characters',
});
const LogoUrl = Type.String({
  pattern: '^https://\\S+$',
  maxLength: 2048,
  description: 'An https:// URL of the logo shown on public pages',
});
const AccentColor = Type.String({
  pattern: '^#[0-9a-fA-F]{6}$',
  description: 'A colour as #rrggbb',
});
const Organization = Type.Object({
  organization_id: Type.String(),
  name: Type.String(),
  slug: Type.String(),
  time_zone: Type.String(),
  branding: Type.Object({
    logo_url: Type.Union([Type.String(), Type.Null()]),
    accent_color: Type.Union([Type.String(), Type.Null()]),
  }),
  created_at: Type.String(),
});

export function organizationRoutes(deps: RouteDeps): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.get(
      '/organization',
      {
        config: { scope: 'read' },
        schema: {
          tags: ['organization'],
          summary: "The key's organization: name, slug (its part of public URLs), time zone and branding",
          response: { 200: Organization, ...commonErrors },
        },
      },
      async (request) => getOrganization(deps.db, actorOf(request)),
    );

    app.patch(
      '/organization',
      {
        config: { scope: 'admin' },
        schema: {
          tags: ['organization'],
          summary: 'Rename, change the slug, the default time zone of public pages, or the branding',
          description:
            'A slug another organization has is a 409 `SLUG_TAKEN`, a name another has a 409 `NAME_TAKEN`. ' +
            'Changing the slug changes every public URL of the organization at once. `null` clears a ' +
            'branding field.',
          body: Strict({
            name: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
            slug: Type.Optional(Slug),
            time_zone: Type.Optional(TimeZone),
            branding: Type.Optional(
              Strict({
                logo_url: Type.Optional(Type.Union([LogoUrl, Type.Null()])),
                accent_color: Type.Optional(Type.Union([AccentColor, Type.Null()])),
              }),
            ),
          }),
          response: { 200: Organization, ...commonErrors, 409: ProblemRef },
        },
      },
      async (request) => {
        const logo = request.body.branding?.logo_url;
        if (typeof logo === 'string' && !URL.canParse(logo)) {
          throw validationError('branding.logo_url', 'must be an https:// URL');
        }
        return updateOrganization(deps.db, actorOf(request), request.body);
      },
    );
  };
}
