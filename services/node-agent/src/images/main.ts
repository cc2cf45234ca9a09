/**
 * The single entry of klab's built-in image programs. Launchers at the root of a pod's filesystem
 * (/agnhost, /http-echo, /pause, /docker-entrypoint.sh) exec `node <bundle> <program> args…`.
 */
import { agnhost, pause } from "./agnhost.ts";
import { httpEcho } from "./httpecho.ts";
import { nginx, nginxEntrypoint } from "./nginx.ts";

const [program, ...args] = process.argv.slice(2);
switch (program) {
  case "agnhost":
    agnhost(args);
    break;
  case "http-echo":
    httpEcho(args);
    break;
  case "nginx":
    nginx(args);
    break;
  case "nginx-entrypoint":
    nginxEntrypoint(args);
    break;
  case "pause":
    pause();
    break;
  default:
    process.stderr.write(`klab image programs: unknown program ${JSON.stringify(program)}\n`);
    process.exit(127);
}
