/**
 * Finds the fenced code blocks of a Markdown file and the hidden context written for them.
 *
 * The convention (also in tools/doc-snippets/README.md and docs/development.md):
 *
 * - A ```ts or ```typescript block is type-checked, as a module of its own.
 * - A ```sh, ```sql, ```json or ```text block is not type-checked (a json block must parse).
 *   Any other fence, or a fence without a language, is an error: nothing is skipped silently.
 * - `<!-- snippet: CODE -->` right before a ts block (blank lines may sit between) is hidden
 *   context: CODE is put before the block's code when it is checked, and is not shown on the page.
 *   CODE may span several lines.
 * - `<!-- snippet continues -->` (or `<!-- snippet continues: CODE -->`) makes the block continue
 *   the previous ts block of the same file: it is checked after that block's code, in one module.
 */

export const checkedLanguages = ['ts', 'typescript'] as const;
export const uncheckedLanguages = ['sh', 'sql', 'json', 'text'] as const;

/** A run of module lines, each with the Markdown line (1-based) it came from. */
export interface Lines {
  text: string[];
  mdLines: number[];
}

export interface CodeBlock {
  /** The fence's language, lower case ('' when none). */
  language: string;
  /** The Markdown line of the opening fence (1-based). */
  fenceLine: number;
  /** The code, without the fence's indentation. */
  code: Lines;
  /** Hidden context from a snippet comment before the block. */
  context: Lines;
  /** Whether the block continues the previous ts block of the file. */
  continues: boolean;
}

/** A problem with the Markdown itself, found before anything is type-checked. */
export interface MarkdownProblem {
  line: number;
  message: string;
}

export interface ParsedMarkdown {
  blocks: CodeBlock[];
  problems: MarkdownProblem[];
}

const allowedList = [...checkedLanguages, ...uncheckedLanguages];
const allowed = `${allowedList.slice(0, -1).join(', ')} or ${allowedList.at(-1)}`;

const fenceOpen = /^(\s*)(`{3,}|~{3,})\s*([^\s`{]*)[^`]*$/;
const snippetStart = /^\s*<!--\s*snippet\b/;
const snippetComment = /^\s*<!--\s*snippet(\s+continues)?\s*(?::([\s\S]*?))?\s*-->\s*$/;

interface PendingComment {
  line: number;
  context: Lines;
  continues: boolean;
}

/** Reads a snippet comment that starts at `start`; returns it and the index of its last line. */
function readComment(lines: readonly string[], start: number): { comment?: PendingComment; end: number; problem?: MarkdownProblem } {
  let end = start;
  while (end < lines.length && !(lines[end] as string).includes('-->')) end++;
  if (end >= lines.length)
    return { end: lines.length - 1, problem: { line: start + 1, message: 'snippet comment is never closed with -->' } };
  const raw = lines.slice(start, end + 1);
  const match = snippetComment.exec(raw.join('\n'));
  if (!match) {
    return {
      end,
      problem: {
        line: start + 1,
        message: 'malformed snippet comment; write <!-- snippet: CODE -->, <!-- snippet continues --> or <!-- snippet continues: CODE -->',
      },
    };
  }
  // Keep one module line per Markdown line: strip the comment's opening and closing from the first and last lines.
  const text = raw.map((line, index) => {
    let part = line;
    if (index === 0) part = part.replace(/^\s*<!--\s*snippet(\s+continues)?\s*:?/, '');
    if (index === raw.length - 1) part = part.replace(/-->\s*$/, '');
    return part;
  });
  const context: Lines = { text: [], mdLines: [] };
  text.forEach((part, index) => {
    if (part.trim() === '' && (index === 0 || index === text.length - 1)) return;
    context.text.push(part);
    context.mdLines.push(start + index + 1);
  });
  return { comment: { line: start + 1, context, continues: match[1] !== undefined }, end };
}

export function parseMarkdown(source: string): ParsedMarkdown {
  const lines = source.split(/\r?\n/);
  const blocks: CodeBlock[] = [];
  const problems: MarkdownProblem[] = [];
  let pending: PendingComment | undefined;

  for (let index = 0; index < lines.length; index++) {
    const line = lines[index] as string;
    if (snippetStart.test(line)) {
      if (pending) problems.push({ line: pending.line, message: 'snippet comment is not followed by a ts block' });
      const { comment, end, problem } = readComment(lines, index);
      if (problem) problems.push(problem);
      pending = comment;
      index = end;
      continue;
    }
    const open = fenceOpen.exec(line);
    if (!open) {
      if (pending && line.trim() !== '') {
        problems.push({ line: pending.line, message: 'snippet comment is not followed by a ts block' });
        pending = undefined;
      }
      continue;
    }
    const indent = (open[1] as string).length;
    const marker = open[2] as string;
    const language = (open[3] ?? '').toLowerCase();
    const close = new RegExp(`^\\s*${marker[0] === '`' ? '`' : '~'}{${marker.length},}\\s*$`);
    const code: Lines = { text: [], mdLines: [] };
    let closed = false;
    let cursor = index + 1;
    for (; cursor < lines.length; cursor++) {
      const content = lines[cursor] as string;
      if (close.test(content)) {
        closed = true;
        break;
      }
      const strip = Math.min(indent, content.length - content.trimStart().length);
      code.text.push(content.slice(strip));
      code.mdLines.push(cursor + 1);
    }
    if (!closed) problems.push({ line: index + 1, message: 'code block is never closed' });
    const checked = (checkedLanguages as readonly string[]).includes(language);
    if (pending && !checked) {
      problems.push({ line: pending.line, message: `snippet comment is followed by a ${language || 'plain'} block, not a ts block` });
    }
    if (!checked && !(uncheckedLanguages as readonly string[]).includes(language)) {
      problems.push({
        line: index + 1,
        message: `a code block must be ${allowed} (got ${language ? JSON.stringify(language) : 'no language'})`,
      });
    }
    if (language === 'json') {
      try {
        JSON.parse(code.text.join('\n'));
      } catch (error) {
        problems.push({ line: index + 1, message: `json block does not parse: ${(error as Error).message}` });
      }
    }
    blocks.push({
      language,
      fenceLine: index + 1,
      code,
      context: pending && checked ? pending.context : { text: [], mdLines: [] },
      continues: pending !== undefined && checked && pending.continues,
    });
    pending = undefined;
    index = cursor;
  }
  if (pending) problems.push({ line: pending.line, message: 'snippet comment is not followed by a ts block' });
  return { blocks, problems };
}
