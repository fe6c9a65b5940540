import type { Db } from '../storage/database.js';

export type Scope = 'read' | 'write' | 'admin';

/** Who is acting: every service call is made for one organization. */
export type Actor = {
  organizationId: string;
  /** As written to the audit log: `api_key:<id>`, `cli`, `system`. */
  label: string;
  scopes: readonly Scope[];
};

export type Clock = () => number;

export type ServiceDeps = {
  db: Db;
  clock: Clock;
};
