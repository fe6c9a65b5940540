import { CompiledQuery, type QueryResult, RawNode } from 'kysely';
import type { Db } from './database.js';
import type { DatabaseKind } from './open-database.js';

/**
 * A statement of fixed text, sent by name on PostgreSQL: each pooled connection parses it once and
 * may keep its plan, instead of parsing and planning the text on every call. For the hot writes
 * (POST /bookings); its parameters are `$1`… in the text.
 */
export type PreparedStatement = { name: string; text: string; raw: RawNode };

export function preparedStatement(name: string, text: string): PreparedStatement {
  return { name, text, raw: RawNode.createWithSql(text) };
}

/**
 * Kysely's PostgreSQL driver hands the compiled `sql` to node-postgres' `client.query(config, values)`,
 * which also takes a query config: given `{ name, text }`, it prepares the statement once per
 * connection and executes it by name afterwards. PGlite (one in-process connection) gets the text.
 */
export function executePrepared<R = unknown>(
  db: Db,
  kind: DatabaseKind | undefined,
  statement: PreparedStatement,
  parameters: readonly unknown[],
): Promise<QueryResult<R>> {
  if (kind !== 'postgres') return db.executeQuery<R>(CompiledQuery.raw(statement.text, [...parameters]));
  const sqlOrConfig = { name: statement.name, text: statement.text } as unknown as string;
  return db.executeQuery<R>({
    sql: sqlOrConfig,
    query: statement.raw,
    parameters,
    queryId: { queryId: statement.name },
  });
}
