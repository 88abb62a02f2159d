/** `1 group`, `3 groups`: a count and its noun, in the plural unless the count is one. */
export function plural(count: number | bigint, noun: string): string {
  return `${count} ${noun}${count === 1 || count === 1n ? '' : 's'}`;
}
