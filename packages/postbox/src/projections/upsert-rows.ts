import { ValidationError } from '../errors/postbox-error.js';
import type { Executor } from '../sql/database.js';

/** A read-model row: column name to value. */
export type Row = Record<string, unknown>;

export interface UpsertOptions {
  /** The conflict target: the primary key's or a unique index's columns. */
  key: string | readonly string[];
  /** On a key already there: `update` its other columns (the default), or `ignore` the new row. */
  onConflict?: 'update' | 'ignore';
}

const maxIdentifierLength = 63;

function quoteIdentifier(name: unknown, what: string): string {
  if (typeof name !== 'string' || name === '' || name.length > maxIdentifierLength || name.includes('\u0000')) {
    throw new ValidationError(
      'POSTBOX_ERR_BAD_OPTION',
      `${what} must be 1 to ${maxIdentifierLength} characters (got ${JSON.stringify(name)}).`,
      {
        option: what,
      },
    );
  }
  return `"${name.replaceAll('"', '""')}"`;
}

/** `schema.table` or `table`, each part quoted as written (so lower case unless the table was created quoted). */
function quoteTable(table: string): string {
  if (typeof table !== 'string') throw new ValidationError('POSTBOX_ERR_BAD_OPTION', 'The table must be a string.', { option: 'table' });
  const parts = table.split('.');
  if (parts.length > 2) {
    throw new ValidationError('POSTBOX_ERR_BAD_OPTION', `The table must be "name" or "schema.name" (got ${JSON.stringify(table)}).`, {
      option: 'table',
    });
  }
  return parts.map((part) => quoteIdentifier(part, 'table')).join('.');
}

function keyColumns(key: UpsertOptions['key']): readonly string[] {
  const columns = typeof key === 'string' ? [key] : key;
  if (!Array.isArray(columns) || columns.length === 0) {
    throw new ValidationError('POSTBOX_ERR_BAD_OPTION', 'An upsert needs the key columns of a primary key or unique index.', {
      option: 'key',
    });
  }
  return columns;
}

function jsonValue(value: unknown): string {
  switch (typeof value) {
    case 'number':
      return Number.isFinite(value) ? String(value) : 'null';
    case 'bigint':
      return value.toString();
    case 'undefined':
      return 'null';
    case 'object':
      if (value === null) return 'null';
      if (value instanceof Date) return JSON.stringify(value);
      return JSON.stringify(value, (_name, item) => (typeof item === 'bigint' ? item.toString() : item));
    default:
      return JSON.stringify(value) ?? 'null';
  }
}

/**
 * The rows as a JSON array for json_populate_recordset, written column by column (a replacer
 * function would take JSON.stringify off its fast path): bigint as its digits, dates as ISO text.
 */
function toJson(rows: readonly Row[], columns: readonly string[]): string {
  const names = columns.map((column) => JSON.stringify(column));
  const parts: string[] = [];
  for (const row of rows) {
    let text = '{';
    for (let index = 0; index < columns.length; index++) {
      text += `${index === 0 ? '' : ','}${names[index]}:${jsonValue(row[columns[index] as string])}`;
    }
    parts.push(`${text}}`);
  }
  return `[${parts.join(',')}]`;
}

/** The same text for values the database compares as equal keys (1n, 1 and '1'). */
function keyText(row: Row, key: readonly string[]): string {
  return key
    .map((column) => {
      const value = row[column];
      if (value instanceof Date) return value.toISOString();
      if (typeof value === 'bigint' || typeof value === 'number' || typeof value === 'string') return String(value);
      return JSON.stringify(value) ?? 'null';
    })
    .join('\u0000');
}

/** Rows that share one column list, in order. */
function sameColumns(row: Row, columns: readonly string[]): boolean {
  let count = 0;
  for (const column in row) {
    if (column !== columns[count]) return false;
    count++;
  }
  return count === columns.length;
}

function runsOfSameColumns(rows: readonly Row[]): { columns: string[]; rows: Row[] }[] {
  const runs: { columns: string[]; rows: Row[] }[] = [];
  let current: { columns: string[]; rows: Row[] } | undefined;
  for (const row of rows) {
    if (typeof row !== 'object' || row === null || Array.isArray(row)) {
      throw new ValidationError('POSTBOX_ERR_BAD_OPTION', 'Every row must be an object of column values.', { option: 'rows' });
    }
    if (!current || !sameColumns(row, current.columns)) {
      current = { columns: Object.keys(row), rows: [] };
      runs.push(current);
    }
    current.rows.push(row);
  }
  return runs;
}

/**
 * Keeps, per key, what applying the rows one after another would leave: the last row when they
 * update, the first when they are ignored on conflict. One statement cannot touch a row twice.
 */
function oneRowPerKey(rows: readonly Row[], key: readonly string[], onConflict: 'update' | 'ignore'): Row[] {
  const byKey = new Map<string, Row>();
  for (const row of rows) {
    const text = keyText(row, key);
    if (onConflict === 'update') byKey.delete(text);
    else if (byKey.has(text)) continue;
    byKey.set(text, row);
  }
  return [...byKey.values()];
}

const statements = new Map<string, string>();

function upsertSql(table: string, columns: readonly string[], key: readonly string[], onConflict: 'update' | 'ignore'): string {
  const cacheKey = [table, onConflict, key.join('\u0000'), ...columns].join('\u0001');
  let sql = statements.get(cacheKey);
  if (sql) return sql;
  const target = quoteTable(table);
  const quoted = columns.map((column) => quoteIdentifier(column, 'column'));
  const quotedKey = key.map((column) => {
    if (!columns.includes(column)) {
      throw new ValidationError('POSTBOX_ERR_BAD_OPTION', `The key column ${JSON.stringify(column)} is not a column of the rows.`, {
        option: 'key',
      });
    }
    return quoteIdentifier(column, 'key');
  });
  const others = quoted.filter((_column, index) => !key.includes(columns[index] as string));
  const action =
    onConflict === 'ignore' || others.length === 0
      ? 'do nothing'
      : `do update set ${others.map((column) => `${column} = excluded.${column}`).join(', ')}`;
  sql = `insert into ${target} (${quoted.join(', ')})
select ${quoted.join(', ')} from json_populate_recordset(null::${target}, $1::json)
on conflict (${quotedKey.join(', ')}) ${action}`;
  if (statements.size > 1_000) statements.clear();
  statements.set(cacheKey, sql);
  return sql;
}

/**
 * Inserts or updates many rows in one statement per run of rows with the same columns, leaving
 * what upserting them one by one in order would leave. Values go as JSON and are converted to the
 * columns' types by the table's row type (bigint as digits, dates as ISO text, objects for json
 * columns); `undefined` is stored as NULL. Returns the number of rows written.
 */
export async function upsertRows(tx: Executor, table: string, rows: readonly Row[], options: UpsertOptions): Promise<number> {
  const key = keyColumns(options.key);
  const onConflict = options.onConflict ?? 'update';
  if (onConflict !== 'update' && onConflict !== 'ignore') {
    throw new ValidationError('POSTBOX_ERR_BAD_OPTION', `onConflict must be 'update' or 'ignore' (got ${JSON.stringify(onConflict)}).`, {
      option: 'onConflict',
    });
  }
  let written = 0;
  for (const run of runsOfSameColumns(rows)) {
    const unique = oneRowPerKey(run.rows, key, onConflict);
    const sql = upsertSql(table, run.columns, key, onConflict);
    written += (await tx.query(sql, [toJson(unique, run.columns)])).rowCount;
  }
  return written;
}
