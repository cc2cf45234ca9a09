import { describe, expect, it } from "vitest";
import { answerApi } from "./api.ts";

const req = (url: string) => ({
  method: "GET",
  url,
  headers: { host: "api.example.com" },
  remoteAddress: "10.244.1.7",
});

describe("api.example.com", () => {
  it("tells the caller which source address reached the internet", () => {
    const a = answerApi(req("/api"));
    expect(a.status).toBe(200);
    expect(JSON.parse(a.body)).toMatchObject({ service: "api.example.com", clientIP: "10.244.1.7" });
    expect(JSON.parse(answerApi(req("/ip")).body)).toEqual({ origin: "10.244.1.7" });
  });

  it("answers /status/N with that status, /delay/N after N seconds (at most 30), unknown paths with 404", () => {
    expect(answerApi(req("/status/503")).status).toBe(503);
    expect(answerApi(req("/status/999")).status).toBe(400);
    expect(answerApi(req("/delay/2")).delayMs).toBe(2000);
    expect(answerApi(req("/delay/100")).delayMs).toBe(30000);
    expect(answerApi(req("/nope")).status).toBe(404);
  });
});
