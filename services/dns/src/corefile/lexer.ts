/**
 * Corefile tokens, as CoreDNS's Caddy-derived lexer produces them: whitespace separates tokens,
 * `"..."` quotes (only `\"` escapes) may span lines, `#` starts a comment to the end of the line.
 * Every token keeps its file and line so that errors can point at them.
 */
export interface Token {
  text: string;
  file: string;
  line: number;
  /** True when a newline separates this token from the previous one (a new directive starts). */
  newline: boolean;
  quoted: boolean;
}

export function tokenize(input: string, file: string): Token[] {
  const tokens: Token[] = [];
  let line = 1;
  let lastTokenEndLine = 0;
  let i = 0;
  const n = input.length;
  while (i < n) {
    const c = input[i]!;
    if (c === "\n") {
      line++;
      i++;
      continue;
    }
    if (c === " " || c === "\t" || c === "\r") {
      i++;
      continue;
    }
    if (c === "#") {
      while (i < n && input[i] !== "\n") i++;
      continue;
    }
    const startLine = line;
    let text = "";
    let quoted = false;
    if (c === '"') {
      quoted = true;
      i++;
      let closed = false;
      while (i < n) {
        const d = input[i]!;
        if (d === "\\" && input[i + 1] === '"') {
          text += '"';
          i += 2;
          continue;
        }
        if (d === '"') {
          closed = true;
          i++;
          break;
        }
        if (d === "\n") line++;
        text += d;
        i++;
      }
      if (!closed) throw new CorefileError(file, startLine, "Unterminated quoted string");
    } else {
      while (i < n) {
        const d = input[i]!;
        if (d === " " || d === "\t" || d === "\r" || d === "\n") break;
        text += d;
        i++;
      }
    }
    tokens.push({
      text,
      file,
      line: startLine,
      newline: tokens.length === 0 || startLine > lastTokenEndLine,
      quoted,
    });
    lastTokenEndLine = line;
  }
  return tokens;
}

/** A Corefile error in CoreDNS's words: `Corefile:3 - Error during parsing: ...`. */
export class CorefileError extends Error {
  constructor(
    readonly file: string,
    readonly line: number,
    readonly detail: string,
    readonly plugin?: string,
  ) {
    super(`${plugin ? `plugin/${plugin}: ` : ""}${file}:${line} - Error during parsing: ${detail}`);
    this.name = "CorefileError";
  }
}
