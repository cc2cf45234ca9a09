import { spawn } from "node:child_process";
import net from "node:net";
import { Duplex } from "node:stream";

// Runs inside the pod's network namespace: a TCP connection to localhost:PORT spliced to stdio,
// with half-close passed both ways (as kubelet's port-forward does with its in-netns dial).
const CONNECTOR = [
  "const net=require('net');",
  "const s=net.connect({port:+process.argv[1],host:'127.0.0.1',allowHalfOpen:true});",
  "s.on('connect',()=>{process.stderr.write('OK\\n');process.stdin.pipe(s);s.pipe(process.stdout);});",
  "s.on('error',e=>{process.stderr.write(e.message);process.exit(1);});",
  "process.stdout.on('finish',()=>{if(s.writableEnded)process.exit(0)});",
  "process.stdin.on('end',()=>{if(s.readableEnded)process.stdout.on('finish',()=>process.exit(0))});",
].join("");

/**
 * A byte stream to localhost:port inside the pod. `enterNet` is the nsenter prefix into the pod's
 * network namespace (empty for hostNetwork pods: the agent dials directly).
 */
export function dialPod(enterNet: string[], port: number): Promise<Duplex> {
  if (enterNet.length === 0) {
    return new Promise((resolve, reject) => {
      const s = net.connect({ port, host: "127.0.0.1", allowHalfOpen: true });
      s.once("connect", () => resolve(s));
      s.once("error", reject);
    });
  }
  return new Promise((resolve, reject) => {
    const child = spawn(
      enterNet[0],
      [...enterNet.slice(1), process.execPath, "-e", CONNECTOR, String(port)],
      { stdio: ["pipe", "pipe", "pipe"] },
    );
    let err = "";
    let settled = false;
    const stream = Duplex.from({ readable: child.stdout, writable: child.stdin });
    child.stderr.on("data", (d) => {
      err += d;
      if (!settled && err.startsWith("OK\n")) {
        settled = true;
        err = "";
        resolve(stream);
      }
    });
    child.on("exit", (code) => {
      if (!settled) {
        settled = true;
        reject(new Error(err.trim() || `connect exited with ${code}`));
      } else if (code) stream.destroy(new Error(err.trim() || `connection to port ${port} failed`));
    });
    stream.on("close", () => child.kill("SIGTERM"));
  });
}
