// A YAML emitter for JSON data that writes what kubectl's printer (sigs.k8s.io/yaml over go-yaml v2)
// writes: keys sorted, indentless sequences under mapping keys, each string in the style go-yaml's
// emitter picks for it, and long plain or quoted strings folded past column 80.

const bestWidth = 80;

const isBreak = (c: string) => c === "\n" || c === "\r" || c === "\u0085" || c === "\u2028" || c === "\u2029";
const isSpace = (c: string | undefined) => c === " ";
const isBlankz = (c: string | undefined) => c === undefined || c === " " || c === "\t" || isBreak(c);

/** go-yaml's is_printable: no C1 controls but NEL, no BOM, nothing beyond the BMP. */
function isPrintable(c: string): boolean {
  const n = c.codePointAt(0)!;
  return (
    n === 0x0a ||
    n === 0x85 ||
    (n >= 0x20 && n <= 0x7e) ||
    (n >= 0xa0 && n <= 0xd7ff) ||
    (n >= 0xe000 && n <= 0xfffd && n !== 0xfeff)
  );
}

interface Analysis {
  multiline: boolean;
  flowPlainAllowed: boolean;
  blockPlainAllowed: boolean;
  singleQuotedAllowed: boolean;
  blockAllowed: boolean;
}

/** yaml_emitter_analyze_scalar. */
function analyze(value: string): Analysis {
  const chars = [...value];
  if (chars.length === 0)
    return {
      multiline: false,
      flowPlainAllowed: false,
      blockPlainAllowed: true,
      singleQuotedAllowed: true,
      blockAllowed: false,
    };
  let blockIndicators = false;
  let flowIndicators = false;
  let lineBreaks = false;
  let specialCharacters = false;
  let leadingSpace = false;
  let leadingBreak = false;
  let trailingSpace = false;
  let trailingBreak = false;
  let breakSpace = false;
  let spaceBreak = false;
  let previousSpace = false;
  let previousBreak = false;
  if (value.startsWith("---") || value.startsWith("...")) {
    blockIndicators = true;
    flowIndicators = true;
  }
  let precededByWhitespace = true;
  let followedByWhitespace = isBlankz(chars[1]);
  for (let i = 0; i < chars.length; i++) {
    const c = chars[i];
    if (i === 0) {
      if ("#,[]{}&*!|>'\"%@`".includes(c)) {
        flowIndicators = true;
        blockIndicators = true;
      }
      if (c === "?" || c === ":") {
        flowIndicators = true;
        if (followedByWhitespace) blockIndicators = true;
      }
      if (c === "-" && followedByWhitespace) {
        flowIndicators = true;
        blockIndicators = true;
      }
    } else {
      if (",?[]{}".includes(c)) flowIndicators = true;
      if (c === ":") {
        flowIndicators = true;
        if (followedByWhitespace) blockIndicators = true;
      }
      if (c === "#" && precededByWhitespace) {
        flowIndicators = true;
        blockIndicators = true;
      }
    }
    if (!isPrintable(c)) specialCharacters = true;
    if (isBreak(c)) lineBreaks = true;
    if (isSpace(c)) {
      if (i === 0) leadingSpace = true;
      if (i === chars.length - 1) trailingSpace = true;
      if (previousBreak) breakSpace = true;
      previousSpace = true;
      previousBreak = false;
    } else if (isBreak(c)) {
      if (i === 0) leadingBreak = true;
      if (i === chars.length - 1) trailingBreak = true;
      if (previousSpace) spaceBreak = true;
      previousSpace = false;
      previousBreak = true;
    } else {
      previousSpace = false;
      previousBreak = false;
    }
    precededByWhitespace = isBlankz(c);
    followedByWhitespace = isBlankz(chars[i + 2]);
  }
  const a: Analysis = {
    multiline: lineBreaks,
    flowPlainAllowed: true,
    blockPlainAllowed: true,
    singleQuotedAllowed: true,
    blockAllowed: true,
  };
  if (leadingSpace || leadingBreak || trailingSpace || trailingBreak) {
    a.flowPlainAllowed = false;
    a.blockPlainAllowed = false;
  }
  if (trailingSpace) a.blockAllowed = false;
  if (breakSpace) {
    a.flowPlainAllowed = false;
    a.blockPlainAllowed = false;
    a.singleQuotedAllowed = false;
  }
  if (spaceBreak || specialCharacters) {
    a.flowPlainAllowed = false;
    a.blockPlainAllowed = false;
    a.singleQuotedAllowed = false;
    a.blockAllowed = false;
  }
  if (lineBreaks) {
    a.flowPlainAllowed = false;
    a.blockPlainAllowed = false;
  }
  if (flowIndicators) a.flowPlainAllowed = false;
  if (blockIndicators) a.blockPlainAllowed = false;
  return a;
}

const nonStringWords = new Set(
  "~ null Null NULL y Y yes Yes YES n N no No NO true True TRUE false False FALSE on On ON off Off OFF .inf .Inf .INF +.inf +.Inf +.INF -.inf -.Inf -.INF .nan .NaN .NAN".split(
    " ",
  ),
);
const goIntRe = /^[-+]?(?:0[xX][0-9a-fA-F]+|0[oO][0-7]+|0[bB][01]+|0[0-7]*|[1-9][0-9]*)$/;
const goFloatRe = /^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?$/;
const base60Re = /^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$/;
const timestampRe =
  /^\d{4}-\d\d?-\d\d?(?:(?:[Tt]|[ \t]+)\d\d?:\d\d?:\d\d?(?:\.\d*)?(?:[ \t]*(?:Z|[-+]\d\d?(?::\d\d)?))?)?$/;

/** Whether go-yaml v2 would read this plain scalar back as something other than a string. */
function resolvesToNonString(s: string): boolean {
  if (s === "" || nonStringWords.has(s)) return true;
  if (!"0123456789+-.".includes(s[0])) return false;
  const plain = s.replace(/_/g, "");
  return goIntRe.test(plain) || goFloatRe.test(plain) || base60Re.test(s) || timestampRe.test(s);
}

type Style = "plain" | "single" | "double" | "literal";

function selectStyle(value: string, simpleKey: boolean): Style {
  const a = analyze(value);
  let style: Style = value.includes("\n") ? "literal" : resolvesToNonString(value) ? "double" : "plain";
  if (style === "literal" && (!a.blockAllowed || simpleKey)) style = "double";
  if (style === "plain") {
    if (!a.blockPlainAllowed) style = "single";
    if (value.length === 0 && simpleKey) style = "single";
  }
  if (style === "single" && !a.singleQuotedAllowed) style = "double";
  return style;
}

class Writer {
  out = "";
  column = 0;
  put(s: string): void {
    for (const c of s) {
      this.out += c;
      this.column = c === "\n" ? 0 : this.column + 1;
    }
  }
  /** A new line at this indentation; a block scalar already ended its line. */
  indent(n: number): void {
    if (!(this.column === 0 && this.out.length > 0 && isBreak(this.out[this.out.length - 1])))
      this.out += "\n";
    this.out += " ".repeat(n);
    this.column = n;
  }
}

function writePlain(w: Writer, value: string, allowBreaks: boolean, indent: number): void {
  const chars = [...value];
  let spaces = false;
  for (let i = 0; i < chars.length; i++) {
    const c = chars[i];
    if (isSpace(c)) {
      if (allowBreaks && !spaces && w.column > bestWidth && !isSpace(chars[i + 1])) w.indent(indent);
      else w.put(c);
      spaces = true;
    } else {
      w.put(c);
      spaces = false;
    }
  }
}

function writeSingle(w: Writer, value: string, allowBreaks: boolean, indent: number): void {
  const chars = [...value];
  w.put("'");
  let spaces = false;
  let breaks = false;
  for (let i = 0; i < chars.length; i++) {
    const c = chars[i];
    if (isSpace(c)) {
      if (
        allowBreaks &&
        !spaces &&
        w.column > bestWidth &&
        i !== 0 &&
        i !== chars.length - 1 &&
        !isSpace(chars[i + 1])
      )
        w.indent(indent);
      else w.put(c);
      spaces = true;
    } else if (isBreak(c)) {
      // a line feed inside single quotes is written twice (folding would eat one); other breaks as they are
      if (!breaks && c === "\n") w.out += "\n";
      w.out += c;
      w.column = 0;
      breaks = true;
    } else {
      if (breaks) w.indent(indent);
      w.put(c === "'" ? "''" : c);
      spaces = false;
      breaks = false;
    }
  }
  w.put("'");
}

const escapes: Record<string, string> = {
  "\0": "0",
  "\x07": "a",
  "\b": "b",
  "\t": "t",
  "\n": "n",
  "\x0b": "v",
  "\f": "f",
  "\r": "r",
  "\x1b": "e",
  '"': '"',
  "\\": "\\",
  "\u0085": "N",
  "\u00a0": "_",
  "\u2028": "L",
  "\u2029": "P",
};

function writeDouble(w: Writer, value: string, allowBreaks: boolean, indent: number): void {
  const chars = [...value];
  w.put('"');
  let spaces = false;
  for (let i = 0; i < chars.length; i++) {
    const c = chars[i];
    const n = c.codePointAt(0)!;
    if (!isPrintable(c) || n === 0xfeff || isBreak(c) || c === '"' || c === "\\") {
      const e = escapes[c];
      if (e) w.put("\\" + e);
      else if (n <= 0xff) w.put("\\x" + n.toString(16).toUpperCase().padStart(2, "0"));
      else if (n <= 0xffff) w.put("\\u" + n.toString(16).toUpperCase().padStart(4, "0"));
      else w.put("\\U" + n.toString(16).toUpperCase().padStart(8, "0"));
      spaces = false;
    } else if (isSpace(c)) {
      if (allowBreaks && !spaces && w.column > bestWidth && i !== 0 && i !== chars.length - 1) {
        w.indent(indent);
        if (isSpace(chars[i + 1])) w.put("\\");
      } else {
        w.put(c);
      }
      spaces = true;
    } else {
      w.put(c);
      spaces = false;
    }
  }
  w.put('"');
}

function writeLiteral(w: Writer, value: string, indent: number): void {
  const chars = [...value];
  let hints = "";
  if (isSpace(chars[0]) || isBreak(chars[0])) hints += "2";
  const last = chars.length - 1;
  if (!isBreak(chars[last])) hints += "-";
  else if (chars.length === 1) hints += "+";
  else if (isBreak(chars[last - 1])) hints += "+";
  w.put("|" + hints);
  w.out += "\n";
  w.column = 0;
  let breaks = true;
  for (const c of chars) {
    if (isBreak(c)) {
      w.out += "\n";
      w.column = 0;
      breaks = true;
    } else {
      if (breaks) {
        w.out += " ".repeat(indent);
        w.column = indent;
      }
      w.put(c);
      breaks = false;
    }
  }
}

function writeString(w: Writer, value: string, simpleKey: boolean, indent: number): void {
  const style = selectStyle(value, simpleKey);
  const allowBreaks = !simpleKey;
  if (style === "plain") writePlain(w, value, allowBreaks, indent);
  else if (style === "single") writeSingle(w, value, allowBreaks, indent);
  else if (style === "double") writeDouble(w, value, allowBreaks, indent);
  else writeLiteral(w, value, indent);
}

function writeScalar(w: Writer, v: unknown, indent: number): void {
  if (v === null || v === undefined) w.put("null");
  else if (typeof v === "string") writeString(w, v, false, indent);
  else if (typeof v === "number")
    w.put(Number.isFinite(v) ? String(v) : v > 0 ? ".inf" : v < 0 ? "-.inf" : ".nan");
  else w.put(String(v));
}

const isMap = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

function isEmptyCollection(v: unknown): boolean {
  return (Array.isArray(v) && v.length === 0) || (isMap(v) && Object.keys(v).length === 0);
}

/** Writes the entries of a non-empty mapping, the first at the current position. */
function writeMap(
  w: Writer,
  m: Record<string, unknown>,
  indent: number,
  keys: string[],
  first: boolean,
): void {
  keys.forEach((k, i) => {
    if (i > 0 || !first) w.indent(indent);
    writeString(w, k, true, indent);
    w.put(":");
    writeValue(w, m[k], indent, true);
  });
}

function writeSeq(w: Writer, s: unknown[], indent: number, first: boolean): void {
  s.forEach((item, i) => {
    if (i > 0 || !first) w.indent(indent);
    w.put("-");
    writeValue(w, item, indent, false);
  });
}

/** A value after `key:` or `-`; `inMap` says which, as sequences under keys are not indented. */
function writeValue(w: Writer, v: unknown, indent: number, inMap: boolean): void {
  if (isEmptyCollection(v)) {
    w.put(Array.isArray(v) ? " []" : " {}");
    return;
  }
  if (isMap(v)) {
    const keys = sortedKeys(v);
    if (inMap) writeMap(w, v, indent + 2, keys, false);
    else {
      w.put(" ");
      writeMap(w, v, indent + 2, keys, true);
    }
    return;
  }
  if (Array.isArray(v)) {
    if (inMap) writeSeq(w, v, indent, false);
    else {
      w.put(" ");
      writeSeq(w, v, indent + 2, true);
    }
    return;
  }
  w.put(" ");
  writeScalar(w, v, indent + 2);
}

let keyOrder: (a: string, b: string) => number = (a, b) => (a < b ? -1 : a > b ? 1 : 0);

function sortedKeys(m: Record<string, unknown>): string[] {
  return Object.keys(m)
    .filter((k) => m[k] !== undefined)
    .sort(keyOrder);
}

/** Emits JSON-compatible data as go-yaml v2 would, keys ordered by `compare`. */
export function emitYaml(data: unknown, compare: (a: string, b: string) => number): string {
  keyOrder = compare;
  const w = new Writer();
  if (isEmptyCollection(data)) w.put(Array.isArray(data) ? "[]" : "{}");
  else if (isMap(data)) writeMap(w, data, 0, sortedKeys(data), true);
  else if (Array.isArray(data)) writeSeq(w, data, 0, true);
  else writeScalar(w, data, 0);
  return w.out.endsWith("\n") ? w.out : w.out + "\n";
}
