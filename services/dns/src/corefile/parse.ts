/**
 * Corefile → server blocks of directives. Follows CoreDNS's grammar (corefile(5)): server blocks
 * `ZONE[:PORT]... { ... }`, nested option blocks, snippets `(name) { ... }` pulled in with
 * `import name`, `import GLOB` of files relative to the importing file, `{$VAR}`/`{%VAR%}`
 * environment substitution, and the brace-less form of a single-server file.
 */
import { readFileSync, readdirSync, statSync } from "node:fs";
import { dirname, isAbsolute, join, basename } from "node:path";
import { CorefileError, tokenize, type Token } from "./lexer.ts";

export interface Directive {
  name: string;
  args: string[];
  argTokens: Token[];
  /** Lines of the `{ ... }` block that follows the arguments, if any. */
  block?: Directive[];
  file: string;
  line: number;
}

export interface ServerBlock {
  keys: string[];
  file: string;
  line: number;
  directives: Directive[];
}

export interface ParseOptions {
  env?: Record<string, string | undefined>;
  /** Reads an imported file; defaults to the file system. */
  readFile?: (path: string) => string;
  /** Lists files matching a glob import; defaults to the file system. */
  glob?: (pattern: string) => string[];
}

const MAX_IMPORTS = 10_000;

export interface ParsedCorefile {
  blocks: ServerBlock[];
  /** Every file read, in order (the Corefile first): reload hashes them all. */
  files: string[];
}

export function parseCorefile(input: string, file: string, options: ParseOptions = {}): ParsedCorefile {
  const env = options.env ?? process.env;
  const readFile = options.readFile ?? ((p: string) => readFileSync(p, "utf8"));
  const glob = options.glob ?? globFiles;
  const files = [file];
  const snippets = new Map<string, Token[]>();
  let imports = 0;

  const expand = (tokens: Token[], depth: number): Token[] => {
    const out: Token[] = [];
    let braceDepth = 0;
    for (let i = 0; i < tokens.length; i++) {
      const t = tokens[i]!;
      if (!t.quoted && t.text === "{") braceDepth++;
      if (!t.quoted && t.text === "}") braceDepth--;
      // A snippet definition: `(name) {` at the top level.
      if (braceDepth === 0 && t.newline && !t.quoted && /^\(.+\)$/.test(t.text)) {
        const open = tokens[i + 1];
        if (!open || open.text !== "{" || open.newline)
          throw new CorefileError(t.file, t.line, `Snippet ${t.text} must be followed by '{'`);
        let depth2 = 0;
        let j = i + 1;
        for (; j < tokens.length; j++) {
          const u = tokens[j]!;
          if (u.quoted) continue;
          if (u.text === "{") depth2++;
          else if (u.text === "}" && --depth2 === 0) break;
        }
        if (j >= tokens.length)
          throw new CorefileError(t.file, t.line, "Unexpected EOF: snippet is not closed");
        const name = t.text.slice(1, -1);
        if (snippets.has(name))
          throw new CorefileError(t.file, t.line, `redeclaration of previously declared snippet ${name}`);
        snippets.set(name, tokens.slice(i + 2, j));
        i = j;
        continue;
      }
      if (t.newline && !t.quoted && t.text === "import") {
        const arg = tokens[i + 1];
        if (!arg || arg.newline)
          throw new CorefileError(
            t.file,
            t.line,
            "Import takes one argument (a snippet name or a file path)",
          );
        const extra = tokens[i + 2];
        if (extra && !extra.newline && extra.text !== "}")
          throw new CorefileError(
            t.file,
            t.line,
            "Import takes only one argument (a snippet name or a file path)",
          );
        if (depth > 100)
          throw new CorefileError(t.file, t.line, "Maximum import depth exceeded (import cycle?)");
        let imported: Token[];
        const snippet = snippets.get(arg.text);
        if (snippet) {
          imported = expand(snippet, depth + 1);
        } else {
          const base = isAbsolute(arg.text) ? arg.text : join(dirname(t.file), arg.text);
          let paths: string[];
          if (/[*?[]/.test(base)) {
            paths = glob(base);
          } else {
            paths = [base];
          }
          imported = [];
          for (const p of paths) {
            if (++imports > MAX_IMPORTS)
              throw new CorefileError(t.file, t.line, `Too many imports (more than ${MAX_IMPORTS})`);
            let text: string;
            try {
              text = readFile(p);
            } catch (err) {
              throw new CorefileError(t.file, t.line, `Could not import ${p}: ${(err as Error).message}`);
            }
            files.push(p);
            imported.push(...expand(substitute(tokenize(text, p), env), depth + 1));
          }
        }
        if (imported.length > 0) imported[0] = { ...imported[0]!, newline: true };
        out.push(...imported);
        i++;
        continue;
      }
      out.push(t);
    }
    return out;
  };

  const tokens = expand(substitute(tokenize(input, file), env), 0);
  return { blocks: parseBlocks(tokens, file), files };
}

function substitute(tokens: Token[], env: Record<string, string | undefined>): Token[] {
  return tokens.map((t) =>
    t.text.includes("{")
      ? {
          ...t,
          text: t.text.replace(
            /\{\$([^}]+)\}|\{%([^}]+)%\}/g,
            (_m, a: string, b: string) => env[a ?? b] ?? "",
          ),
        }
      : t,
  );
}

function parseBlocks(tokens: Token[], file: string): ServerBlock[] {
  const blocks: ServerBlock[] = [];
  let i = 0;
  while (i < tokens.length) {
    const first = tokens[i]!;
    if (!first.quoted && (first.text === "{" || first.text === "}")) {
      throw new CorefileError(
        first.file,
        first.line,
        `Unexpected '${first.text}' where a server block key was expected`,
      );
    }
    const keys: string[] = [];
    // Keys: the rest of the line, continuing on the next line after a trailing comma.
    let trailingComma = false;
    while (i < tokens.length) {
      const t = tokens[i]!;
      if (!t.quoted && t.text === "{") break;
      if (keys.length > 0 && t.newline && !trailingComma) break;
      trailingComma = t.text.endsWith(",");
      keys.push(...t.text.split(",").filter((k) => k !== ""));
      i++;
    }
    const open = tokens[i];
    if (open && !open.quoted && open.text === "{") {
      i++;
      const [directives, next] = parseDirectives(tokens, i, true, first);
      blocks.push({ keys, file: first.file, line: first.line, directives });
      i = next;
    } else {
      // The brace-less form is only allowed for a single server block filling the file.
      if (blocks.length > 0)
        throw new CorefileError(first.file, first.line, "Expected '{' after the server block keys");
      const [directives, next] = parseDirectives(tokens, i, false, first);
      blocks.push({ keys, file: first.file, line: first.line, directives });
      i = next;
      if (i < tokens.length) {
        const t = tokens[i]!;
        throw new CorefileError(t.file, t.line, `Unexpected '${t.text}'`);
      }
    }
  }
  void file;
  return blocks;
}

/** Directives until the closing `}` (or the end when `braced` is false). */
function parseDirectives(
  tokens: Token[],
  start: number,
  braced: boolean,
  opener: Token,
): [Directive[], number] {
  const out: Directive[] = [];
  let i = start;
  while (i < tokens.length) {
    const t = tokens[i]!;
    if (!t.quoted && t.text === "}") {
      if (!braced)
        throw new CorefileError(t.file, t.line, "Unexpected '}' because no matching opening brace");
      return [out, i + 1];
    }
    if (!t.quoted && t.text === "{") throw new CorefileError(t.file, t.line, "Unexpected '{'");
    const d: Directive = { name: t.text, args: [], argTokens: [], file: t.file, line: t.line };
    i++;
    while (i < tokens.length) {
      const a = tokens[i]!;
      if (a.newline) break;
      if (!a.quoted && a.text === "}") break;
      if (!a.quoted && a.text === "{") {
        const [block, next] = parseDirectives(tokens, i + 1, true, a);
        d.block = block;
        i = next;
        break;
      }
      d.args.push(a.text);
      d.argTokens.push(a);
      i++;
    }
    out.push(d);
  }
  if (braced) throw new CorefileError(opener.file, opener.line, "Unexpected EOF: missing '}'");
  return [out, i];
}

/** A glob of `*`, `?` and `[...]` in the last path element, as filepath.Glob in CoreDNS's import. */
export function globFiles(pattern: string): string[] {
  const dir = dirname(pattern);
  const re = new RegExp(
    "^" +
      basename(pattern)
        .replace(/[.+^${}()|\\]/g, "\\$&")
        .replace(/\*/g, "[^/]*")
        .replace(/\?/g, "[^/]") +
      "$",
  );
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  return names
    .filter((n) => re.test(n))
    .sort()
    .map((n) => join(dir, n))
    .filter((p) => statSync(p).isFile());
}
