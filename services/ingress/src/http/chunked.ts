/**
 * Decoding a chunked body (RFC 9112 §7.1), a client's request or an upstream's response, as bytes
 * arrive: chunk sizes in hex with optional extensions, data, and trailer lines that are read and
 * dropped (nginx passes trailers on in neither direction). Pure state machine: feed it buffers, it
 * says what body bytes came, whether the body ended, and where the next message starts.
 */

export interface ChunkedStep {
  /** body bytes decoded from this buffer */
  data: Buffer[];
  /** the last chunk and the trailers have been read */
  done: boolean;
  /** bytes after the body (a pipelined request), when done */
  rest?: Buffer;
  /** the framing is broken: answer 400 and close */
  error?: string;
}

const MAX_SIZE_LINE = 4096;

export class ChunkedDecoder {
  private state: "size" | "data" | "data-end" | "trailer" = "size";
  private remaining = 0;
  private line = "";

  push(buf: Buffer): ChunkedStep {
    const data: Buffer[] = [];
    let i = 0;
    while (i < buf.length) {
      if (this.state === "data") {
        const take = Math.min(this.remaining, buf.length - i);
        data.push(buf.subarray(i, i + take));
        i += take;
        this.remaining -= take;
        if (this.remaining === 0) this.state = "data-end";
        continue;
      }
      const lf = buf.indexOf(10, i);
      if (lf === -1) {
        this.line += buf.toString("latin1", i);
        if (this.line.length > MAX_SIZE_LINE) return { data, done: false, error: "too long chunk line" };
        return { data, done: false };
      }
      let line = this.line + buf.toString("latin1", i, lf);
      this.line = "";
      i = lf + 1;
      if (line.endsWith("\r")) line = line.slice(0, -1);
      if (this.state === "data-end") {
        if (line !== "") return { data, done: false, error: "chunk data not followed by CRLF" };
        this.state = "size";
      } else if (this.state === "size") {
        const m = /^([0-9a-fA-F]{1,12})[ \t]*(;.*)?$/.exec(line);
        if (!m) return { data, done: false, error: `invalid chunk size "${line.slice(0, 40)}"` };
        this.remaining = parseInt(m[1], 16);
        this.state = this.remaining === 0 ? "trailer" : "data";
      } else if (line === "") {
        return { data, done: true, rest: buf.subarray(i) };
      }
    }
    return { data, done: false };
  }
}
