import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { appDefaults } from '../src/defaults.js';
import { decodeHistoryEvent, readTimestamp } from '../src/history/history-event.js';
import { readHistoryEvent } from '../src/history/history-event-reader.js';
import { historyEventSchema } from '../src/history/history-event-schema.js';
import { entities, eventTypes } from '../src/todos/todo-events.js';

const { limits } = appDefaults;

/** Strings near every rule of the schema: empty, at and over a limit, with NUL or a lone surrogate. */
function text(max: number): fc.Arbitrary<string> {
  return fc.oneof(
    { weight: 8, arbitrary: fc.string({ minLength: 1, maxLength: 20 }) },
    { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: max + 2 }) },
    fc.constantFrom('', 'x'.repeat(max), 'x'.repeat(max + 1), 'a\u0000b', 'a\ud800b', '\udc00', 'é😀'),
  );
}

const oddValue = fc.constantFrom<unknown>(null, 0, 1.5, true, false, [], ['x'], {}, { a: 1 });
const field = (max: number) => fc.option(fc.oneof({ weight: 20, arbitrary: text(max) }, oddValue), { nil: undefined, freq: 5 });

const payload = fc.record(
  {
    entity: fc.oneof(
      { weight: 10, arbitrary: fc.constantFrom<unknown>(...entities) },
      fc.constantFrom<unknown>('group', 'Comment', '', null, 1),
    ),
    entityId: field(limits.id),
    groupId: field(limits.id),
    groupName: field(limits.name),
    taskId: field(limits.id),
    taskName: field(limits.name),
    changes: field(3_000),
    user: field(limits.user),
    workspace: field(limits.workspace),
    timestamp: fc.option(fc.oneof(fc.string(), oddValue), { nil: undefined }),
    extra: fc.option(fc.string(), { nil: undefined }),
  },
  { requiredKeys: ['entity', 'entityId'] },
);

const body = fc.record(
  {
    eventType: fc.oneof(
      { weight: 10, arbitrary: fc.constantFrom<unknown>(...eventTypes) },
      fc.constantFrom<unknown>('Created', 'removed', '', null, 3),
    ),
    timestamp: fc.option(fc.oneof(fc.string(), oddValue), { nil: undefined }),
    payload: fc.oneof({ weight: 20, arbitrary: payload }, oddValue),
    extra: fc.option(fc.string(), { nil: undefined }),
  },
  { requiredKeys: ['eventType', 'payload'] },
);

describe('reading history events', () => {
  it('accepts exactly what the schema accepts, with the same result', () => {
    let accepted = 0;
    fc.assert(
      fc.property(body, (candidate) => {
        const expected = historyEventSchema.safeParse(candidate);
        const read = readHistoryEvent(candidate as Record<string, unknown>);
        if (expected.success) {
          accepted += 1;
          expect(read).toEqual(expected.data);
        } else {
          expect(read).toBeUndefined();
        }
      }),
      { numRuns: 5_000 },
    );
    // Both sides of the rule were exercised.
    expect(accepted).toBeGreaterThan(100);
    expect(accepted).toBeLessThan(5_000);
  });

  it('keeps the event as it arrived, as JSON text, and still says what is wrong with a bad one', () => {
    const event = {
      eventType: 'created',
      timestamp: '2025-01-02T03:04:05.678Z',
      payload: { entity: 'Task', entityId: 't-1', groupId: 'g-1', taskName: 'A', user: 'ann', unknown: [1, 2] },
      note: 'kept',
    };
    const message = { id: 'm-1', payload: event } as Parameters<typeof decodeHistoryEvent>[0];
    const decoded = decodeHistoryEvent(message, 65_536);
    expect(JSON.parse(decoded.json)).toEqual(event);
    expect(decoded.event.payload).toMatchObject({ entityId: 't-1', groupId: 'g-1', taskId: null, taskName: 'A', changes: null });
    const bad = { id: 'm-2', payload: { ...event, payload: { ...event.payload, entityId: '' } } } as typeof message;
    expect(() => decodeHistoryEvent(bad, 65_536)).toThrow(
      'event does not match the todo-history event format: payload.entityId must not be empty',
    );
  });

  it('reads a timestamp the short way exactly as the long way does', () => {
    // The long way alone accepts a lower-case t and z, so the same instant written so takes it.
    const longWay = (value: string) => readTimestamp(value.replace('T', 't').replace('Z', 'z'));
    const instants = fc.date({ min: new Date('0900-01-01T00:00:00Z'), max: new Date('9999-12-31T23:59:59.999Z'), noInvalidDate: true });
    const lookalikes = fc
      .tuple(
        fc.integer({ min: 0, max: 9999 }),
        fc.integer({ min: 0, max: 19 }),
        fc.integer({ min: 0, max: 39 }),
        fc.integer({ min: 0, max: 29 }),
        fc.integer({ min: 0, max: 69 }),
        fc.integer({ min: 0, max: 69 }),
        fc.integer({ min: 0, max: 999 }),
      )
      .map(([y, mo, d, h, mi, s, ms]) => {
        const two = (n: number) => String(n).padStart(2, '0');
        return `${String(y).padStart(4, '0')}-${two(mo)}-${two(d)}T${two(h)}:${two(mi)}:${two(s)}.${String(ms).padStart(3, '0')}Z`;
      });
    fc.assert(
      fc.property(
        fc.oneof(
          instants.map((date) => date.toISOString()),
          lookalikes,
        ),
        (value) => {
          expect(readTimestamp(value)).toBe(longWay(value));
        },
      ),
      { numRuns: 5_000 },
    );
    expect(readTimestamp('2025-02-28T10:00:00.123Z')).toBe('2025-02-28T10:00:00.123000Z');
    expect(readTimestamp('2025-02-30T10:00:00.123Z')).toBeUndefined();
    expect(readTimestamp('0999-12-31T23:59:59.999Z')).toBeUndefined();
    for (const leapDay of [
      '2000-02-29T12:00:00.000Z',
      '2024-02-29T12:00:00.000Z',
      '1900-02-29T12:00:00.000Z',
      '2023-02-29T12:00:00.000Z',
    ]) {
      expect(readTimestamp(leapDay)).toBe(longWay(leapDay));
    }
    expect(readTimestamp('2000-02-29T12:00:00.000Z')).toBe('2000-02-29T12:00:00.000000Z');
    expect(readTimestamp('1900-02-29T12:00:00.000Z')).toBeUndefined();
  });
});
