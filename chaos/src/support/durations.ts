/** min / median / max of durations in milliseconds, as text for a report line. */
export function describeDurations(label: string, values: readonly number[]): string {
  if (values.length === 0) return `${label}: none`;
  const sorted = [...values].sort((a, b) => a - b);
  const median = sorted[Math.floor((sorted.length - 1) / 2)] as number;
  const ms = (value: number) => `${Math.round(value).toLocaleString('en-US')} ms`;
  return `${label}: min ${ms(sorted[0] as number)}, median ${ms(median)}, max ${ms(sorted.at(-1) as number)} (${values.length})`;
}
