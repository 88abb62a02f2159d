export type Cell = string | number;

function format(cell: Cell): string {
  if (typeof cell === 'string') return cell;
  if (!Number.isFinite(cell)) return String(cell);
  if (Math.abs(cell) >= 100) return Math.round(cell).toLocaleString('en-US');
  return cell.toFixed(2);
}

/** Prints a titled Markdown table, so the output can be pasted into BENCHMARKS.md as it is. */
export function printTable(title: string, header: readonly string[], rows: readonly (readonly Cell[])[]): void {
  const text = [header, ...rows.map((row) => row.map(format))];
  const widths = header.map((_, column) => Math.max(...text.map((row) => (row[column] ?? '').length)));
  const line = (row: readonly string[]) => `| ${row.map((cell, column) => cell.padEnd(widths[column] ?? 0)).join(' | ')} |`;
  console.log(`\n### ${title}\n`);
  console.log(line(text[0] ?? []));
  console.log(`|${widths.map((width) => '-'.repeat(width + 2)).join('|')}|`);
  for (const row of text.slice(1)) console.log(line(row));
  console.log();
}

export function ratio(value: number, baseline: number): string {
  return `${((value / baseline) * 100).toFixed(0)}%`;
}

export function times(value: number, baseline: number, digits = 1): string {
  return `${(value / baseline).toFixed(digits)}×`;
}
