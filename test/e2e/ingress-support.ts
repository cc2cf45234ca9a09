/** Shared by the ingress end-to-end tests: real curl and openssl against the controller. */
import { execFile } from "node:child_process";
import { promisify } from "node:util";

const run = promisify(execFile);

export interface CurlResult {
  status: number;
  httpVersion: string;
  headers: Record<string, string>;
  body: string;
  stderr: string;
}

/** Run curl (never following redirects) and split its `-i` output. */
export async function curl(args: string[]): Promise<CurlResult> {
  const { stdout, stderr } = await run("curl", ["-s", "-i", "--max-time", "30", ...args], {
    maxBuffer: 16 * 1024 * 1024,
  });
  const split = stdout.indexOf("\r\n\r\n");
  const head = split === -1 ? stdout : stdout.slice(0, split);
  const body = split === -1 ? "" : stdout.slice(split + 4);
  const [statusLine, ...lines] = head.split("\r\n");
  const m = /^HTTP\/([\d.]+) (\d{3})/.exec(statusLine);
  const headers: Record<string, string> = {};
  for (const l of lines) {
    const c = l.indexOf(":");
    if (c > 0) headers[l.slice(0, c).toLowerCase()] = l.slice(c + 1).trim();
  }
  return { status: m ? Number(m[2]) : 0, httpVersion: m ? m[1] : "", headers, body, stderr };
}

/** The subject and issuer of the certificate served for an SNI name (none: no SNI). */
export async function servedCertificate(port: number, sni: string | undefined): Promise<string> {
  const sniArg = sni ? `-servername ${sni}` : "-noservername";
  const { stdout } = await run("sh", [
    "-c",
    `openssl s_client -connect 127.0.0.1:${port} ${sniArg} </dev/null 2>/dev/null | openssl x509 -noout -subject -issuer`,
  ]);
  return stdout;
}
