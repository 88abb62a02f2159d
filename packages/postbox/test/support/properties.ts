import fc from 'fast-check';

/**
 * fast-check settings for the property tests: few runs, so each file takes seconds, and a fixed
 * seed on demand. fast-check prints the seed and path of a failure; replay it with
 * POSTBOX_PROPERTY_SEED=<seed> (and more runs with POSTBOX_PROPERTY_RUNS=<n>).
 */
export function propertyRuns(numRuns: number): fc.Parameters<unknown> {
  const seed = process.env.POSTBOX_PROPERTY_SEED;
  const runs = process.env.POSTBOX_PROPERTY_RUNS;
  return {
    numRuns: runs ? Number(runs) : numRuns,
    ...(seed ? { seed: Number(seed) } : {}),
  };
}

/** Whether PostgreSQL text (and jsonb strings) can hold the value: no NUL, no lone surrogate. */
export function storable(text: string): boolean {
  return !text.includes('\u0000') && text.isWellFormed();
}

/** Characters that break naive SQL, JSON, array literals, shells or PostgreSQL text. */
const hostileUnits = [
  "'",
  '"',
  '\\',
  ';',
  '--',
  '/*',
  '$$',
  '$1',
  '{',
  '}',
  ',',
  '(',
  ')',
  'NULL',
  '%',
  '_',
  '\n',
  '\r',
  '\t',
  ' ',
  '\u0000',
  '\u0001',
  '\u001f',
  '\u007f',
  '\u00a0',
  '\u2028',
  '\ufeff',
  '\uffff',
  '\ud800',
  '\udc00',
  '\ud83d\ude00',
  'é',
  'ß',
  '中',
  '\u0301',
];

/** One unit of a hostile string: a metacharacter, a control or unicode character, or any code point. */
export const hostileUnit: fc.Arbitrary<string> = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...hostileUnits) },
  { weight: 3, arbitrary: fc.string({ unit: 'grapheme-ascii', minLength: 1, maxLength: 1 }) },
  { weight: 2, arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }) },
);

const storableUnit = hostileUnit.filter((unit) => storable(unit));

/**
 * Short hostile text: mostly SQL and JSON metacharacters, controls and unicode that PostgreSQL can
 * store, now and then NUL, a lone surrogate, a blank, or a whole SQL injection attempt.
 */
export const hostileText: fc.Arbitrary<string> = fc.oneof(
  { weight: 16, arbitrary: fc.string({ unit: storableUnit, minLength: 1, maxLength: 24 }) },
  { weight: 1, arbitrary: fc.string({ unit: hostileUnit, maxLength: 24 }) },
  { weight: 1, arbitrary: fc.constantFrom('', ' ', '\t\n') },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      "x'); drop table postbox.messages; --",
      'x"; drop table postbox.messages; --',
      "' or '1'='1",
      '$$; select pg_sleep(10); $$',
      '{"a":1}',
      '{NULL,"x"}',
    ),
  },
);

/** Text of a length around a limit: just under, at, and just over it. */
export function textAround(limit: number): fc.Arbitrary<string> {
  return fc
    .tuple(fc.integer({ min: limit - 2, max: limit + 2 }), fc.constantFrom('x', 'é', '中', '\ud83d\ude00'))
    .map(([length, unit]) => unit.repeat(Math.max(1, Math.ceil(length / unit.length))).slice(0, length));
}
