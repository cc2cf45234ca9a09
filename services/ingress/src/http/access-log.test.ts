import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { ACCESS_LOG_PATTERN, batchedLines, formatAccessLog, timeLocal } from "./access-log.ts";

describe("access log lines", () => {
  it("are written in log-format-upstream, retries listed in order, odd bytes escaped", () => {
    const line = formatAccessLog({
      remoteAddr: "10.244.1.1",
      time: "27/Nov/2026:01:02:03 +0000",
      request: 'GET /a"b HTTP/1.1',
      status: 200,
      bodyBytesSent: 3,
      userAgent: "curl/7.88.1",
      requestLength: 78,
      requestTime: 0.0123,
      upstreamName: "default-web-80",
      attempts: [
        { addr: "10.244.1.5:80", responseTime: 0.004, status: 502 },
        { addr: "10.244.2.6:80", responseTime: 0.002, status: 200, responseLength: 3 },
      ],
      requestId: "0123456789abcdef0123456789abcdef",
    });
    expect(line).toBe(
      '10.244.1.1 - - [27/Nov/2026:01:02:03 +0000] "GET /a\\x22b HTTP/1.1" 200 3 "-" "curl/7.88.1" 78 0.012 ' +
        "[default-web-80] [] 10.244.1.5:80, 10.244.2.6:80 0, 3 0.004, 0.002 502, 200 0123456789abcdef0123456789abcdef",
    );
    expect(ACCESS_LOG_PATTERN.test(line)).toBe(true);
  });

  it("carry $time_local as nginx formats it", () => {
    expect(timeLocal(new Date(2026, 10, 27, 1, 2, 3))).toMatch(/^27\/Nov\/2026:01:02:03 [+-]\d{4}$/);
  });
});

describe("batchedLines", () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it("writes lines at most 100 ms late, in one write", () => {
    const writes: string[] = [];
    const log = batchedLines({ write: (c: string) => writes.push(c) });
    log.write("a\n");
    log.write("b\n");
    vi.advanceTimersByTime(99);
    expect(writes).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(writes).toEqual(["a\nb\n"]);
    vi.advanceTimersByTime(1000);
    expect(writes).toEqual(["a\nb\n"]);
  });

  it("writes at once when 16 KiB wait, and whatever waits on flush()", () => {
    const writes: string[] = [];
    const log = batchedLines({ write: (c: string) => writes.push(c) });
    const line = "x".repeat(1023) + "\n";
    for (let i = 0; i < 16; i++) log.write(line);
    expect(writes.map((w) => w.length)).toEqual([16 * 1024]);
    log.write("last\n");
    log.flush();
    expect(writes.at(-1)).toBe("last\n");
    log.flush();
    vi.advanceTimersByTime(1000);
    expect(writes).toHaveLength(2);
  });
});
