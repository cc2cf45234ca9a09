import http from "node:http";
import { plainAddress } from "./agnhost.ts";

/** The nginx Docker image's default site: its welcome page on :80, its headers and access log. */
const NGINX_VERSION = "1.27.3";
const WELCOME = `<!DOCTYPE html>
<html>
<head>
<title>Welcome to nginx!</title>
<style>
html { color-scheme: light dark; }
body { width: 35em; margin: 0 auto;
font-family: Tahoma, Verdana, Arial, sans-serif; }
</style>
</head>
<body>
<h1>Welcome to nginx!</h1>
<p>If you see this page, the nginx web server is successfully installed and
working. Further configuration is required.</p>

<p>For online documentation and support please refer to
<a href="http://nginx.org/">nginx.org</a>.<br/>
Commercial support is available at
<a href="http://nginx.com/">nginx.com</a>.</p>

<p><em>Thank you for using nginx.</em></p>
</body>
</html>
`;

function errorPage(code: number, text: string): string {
  return `<html>\r\n<head><title>${code} ${text}</title></head>\r\n<body>\r\n<center><h1>${code} ${text}</h1></center>\r\n<hr><center>nginx/${NGINX_VERSION}</center>\r\n</body>\r\n</html>\r\n`;
}

function clf(d: Date): string {
  const mon = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"][
    d.getUTCMonth()
  ];
  const p = (n: number) => String(n).padStart(2, "0");
  return `${p(d.getUTCDate())}/${mon}/${d.getUTCFullYear()}:${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} +0000`;
}

const STARTED = new Date();

export function nginx(argv: string[]): void {
  if (argv[0] === "-v" || argv[0] === "-V") {
    process.stderr.write(`nginx version: nginx/${NGINX_VERSION}\n`);
    process.exit(0);
  }
  const port = Number(process.env.KLAB_NGINX_PORT || 80);
  const server = http.createServer((req, res) => {
    const path = new URL(req.url ?? "/", "http://x").pathname;
    let code = 200;
    let body: string;
    const headers: Record<string, string> = { Server: `nginx/${NGINX_VERSION}`, "Content-Type": "text/html" };
    if (req.method !== "GET" && req.method !== "HEAD") {
      code = 405;
      body = errorPage(405, "Not Allowed");
    } else if (path === "/" || path === "/index.html") {
      body = WELCOME;
      headers["Last-Modified"] = STARTED.toUTCString();
      headers["ETag"] =
        `"${Math.floor(STARTED.getTime() / 1000).toString(16)}-${WELCOME.length.toString(16)}"`;
      headers["Accept-Ranges"] = "bytes";
    } else if (path === "/50x.html") {
      body =
        "<!DOCTYPE html>\n<html>\n<head>\n<title>Error</title>\n</head>\n<body>\n<h1>An error occurred.</h1>\n</body>\n</html>\n";
    } else {
      code = 404;
      body = errorPage(404, "Not Found");
    }
    headers["Content-Length"] = String(Buffer.byteLength(body));
    res.writeHead(code, headers);
    res.end(req.method === "HEAD" ? undefined : body);
    const ua = req.headers["user-agent"] ?? "-";
    const xff = req.headers["x-forwarded-for"] ?? "-";
    process.stdout.write(
      `${plainAddress(req.socket.remoteAddress ?? "-")} - - [${clf(new Date())}] "${req.method} ${req.url} HTTP/${req.httpVersion}" ${code} ${req.method === "HEAD" ? 0 : Buffer.byteLength(body)} "${req.headers.referer ?? "-"}" "${ua}" "${xff}"\n`,
    );
  });
  server.on("error", (e: NodeJS.ErrnoException) => {
    process.stderr.write(`nginx: [emerg] bind() to 0.0.0.0:${port} failed (${e.code})\n`);
    process.exit(1);
  });
  server.listen(port);
  const quit = () => server.close(() => process.exit(0));
  process.on("SIGTERM", () => process.exit(0));
  process.on("SIGQUIT", quit);
}

/** The image's /docker-entrypoint.sh: it announces itself and execs its arguments. */
export function nginxEntrypoint(argv: string[]): void {
  if (argv[0] === "nginx" || argv[0] === "nginx-debug") {
    const w = (s: string) => process.stdout.write(`/docker-entrypoint.sh: ${s}\n`);
    w("/docker-entrypoint.d/ is not empty, will attempt to perform configuration");
    w("Looking for shell scripts in /docker-entrypoint.d/");
    w("Configuration complete; ready for start up");
    nginx(argv.slice(1));
    return;
  }
  process.stderr.write(
    `/docker-entrypoint.sh: only "nginx" is runnable in klab's nginx image (got ${JSON.stringify(argv[0] ?? "")})\n`,
  );
  process.exit(127);
}
