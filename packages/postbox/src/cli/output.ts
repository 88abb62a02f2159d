import type { Writable } from 'node:stream';
import { redactUrl as redact } from '../sql/connection-secrets.js';
import { CliError } from './errors.js';

export interface CliIo {
  stdout: Writable;
  stderr: Writable;
  env: Record<string, string | undefined>;
}

function write(stream: Writable, text: string): Promise<void> {
  return new Promise((resolve, reject) => {
    stream.write(text, (error) => (error ? reject(error) : resolve()));
  });
}

/** Results go to stdout; notices and errors to stderr. Each write resolves once the stream took it. */
export class Output {
  constructor(readonly io: CliIo) {}

  async text(text: string): Promise<void> {
    try {
      await write(this.io.stdout, text);
    } catch (error) {
      throw new CliError('POSTBOX_ERR_OUTPUT', `Cannot write to stdout: ${(error as Error).message}.`, { cause: error });
    }
  }

  async line(text: string): Promise<void> {
    await this.text(`${text}\n`);
  }

  notice(text: string): Promise<void> {
    return write(this.io.stderr, `postbox: ${redact(text)}\n`);
  }

  error(line: string): Promise<void> {
    return write(this.io.stderr, `${line}\n`);
  }
}

/** JSON with bigints as strings, since positions outgrow Number. */
export function toJson(value: unknown, pretty = false): string {
  return JSON.stringify(value, (_key, item) => (typeof item === 'bigint' ? item.toString() : item), pretty ? 2 : undefined);
}

/** A plain text table: one header row, columns padded to their widest cell. */
export function table(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = headers.map((header, column) => Math.max(header.length, ...rows.map((row) => (row[column] ?? '').length)));
  const render = (cells: readonly string[]) =>
    cells
      .map((cell, column) => (column === cells.length - 1 ? cell : cell.padEnd(widths[column] ?? 0)))
      .join('  ')
      .trimEnd();
  return [render(headers), ...rows.map(render)].join('\n');
}
