/** Reading container logs in the CRI format the shim writes: "<RFC3339Nano> <stream> <F|P> <text>". */
export interface LogOptions {
  timestamps: boolean;
  tailLines?: number;
  sinceTime?: number;
  limitBytes?: number;
}

export interface LogLine {
  time: string;
  stream: "stdout" | "stderr";
  full: boolean;
  text: string;
}

export function parseLogLine(line: string): LogLine | undefined {
  const a = line.indexOf(" ");
  const b = line.indexOf(" ", a + 1);
  const c = line.indexOf(" ", b + 1);
  if (a < 0 || b < 0 || c < 0) return undefined;
  const stream = line.slice(a + 1, b);
  if (stream !== "stdout" && stream !== "stderr") return undefined;
  return { time: line.slice(0, a), stream, full: line.slice(b + 1, c) !== "P", text: line.slice(c + 1) };
}

/** Renders parsed lines the way `kubectl logs` prints them. */
export function renderLines(lines: LogLine[], o: LogOptions): string {
  let out = "";
  for (const l of lines) {
    if (o.sinceTime !== undefined && Date.parse(l.time) < o.sinceTime) continue;
    out += (o.timestamps ? `${l.time} ` : "") + l.text + (l.full ? "\n" : "");
  }
  return out;
}

/** Splits the file's text into complete records and the unfinished rest. */
export function splitRecords(text: string): { lines: LogLine[]; rest: string } {
  const parts = text.split("\n");
  const rest = parts.pop() ?? "";
  const lines: LogLine[] = [];
  for (const p of parts) {
    const l = parseLogLine(p);
    if (l) lines.push(l);
  }
  return { lines, rest };
}

export function tail(lines: LogLine[], n: number | undefined): LogLine[] {
  if (n === undefined || n < 0) return lines;
  return n === 0 ? [] : lines.slice(-n);
}
