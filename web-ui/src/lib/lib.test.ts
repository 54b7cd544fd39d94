import { describe, expect, test } from "vitest";

import { errorFrom, query } from "./api";
import { linePath, niceMax } from "./chart";
import { parseUnified } from "./diff";
import { ago, bytes, duration, number } from "./format";
import { layout } from "./graph";
import { SseParser } from "./sse";
import { applyEvent } from "./transcript";

describe("sse", () => {
  test("events split across chunks and line endings", () => {
    const parser = new SseParser();
    expect(parser.feed("event: tok")).toEqual([]);
    expect(parser.feed('en\ndata: {"text":"Hel"}\n')).toEqual([]);
    expect(parser.feed("\r\nevent: token\r\ndata: lo\r\n\r\n: a comment\n\ndata: a\ndata: b\n\n")).toEqual([
      { event: "token", data: '{"text":"Hel"}' },
      { event: "token", data: "lo" },
      { event: "message", data: "a\nb" },
    ]);
  });
  test("an event without data is dropped", () => {
    expect(new SseParser().feed("event: ping\n\n")).toEqual([]);
  });
});

describe("transcript", () => {
  test("tokens grow one agent turn; the final message replaces it", () => {
    let turns = applyEvent([{ who: "you", text: "hi" }], "token", { text: "Hel" });
    turns = applyEvent(turns, "token", { text: "lo" });
    expect(turns).toEqual([
      { who: "you", text: "hi" },
      { who: "agent", text: "Hello" },
    ]);
    turns = applyEvent(turns, "message", { content: "Hello!" });
    expect(turns[1].text).toBe("Hello!");
    expect(turns).toHaveLength(2);
  });
  test("refusals and errors are notes; unknown events change nothing", () => {
    const start = [{ who: "you" as const, text: "hi" }];
    expect(applyEvent(start, "refused", { reason: "quota" })[1]).toEqual({ who: "note", text: "refused: quota" });
    expect(applyEvent(start, "usage", { prompt_tokens: 3 })).toBe(start);
  });
});

describe("diff", () => {
  test("unified diff lines get their kinds", () => {
    const lines = parseUnified("--- v1\n+++ v2\n@@ -1,2 +1,2 @@\n same\n-old\n+new\n");
    expect(lines.map((l) => l.kind)).toEqual(["header", "header", "hunk", "ctx", "del", "add"]);
    expect(lines[4].text).toBe("old");
    expect(lines[5].text).toBe("new");
  });
});

describe("format", () => {
  test("bytes", () => {
    expect(bytes(512)).toBe("512 B");
    expect(bytes(1536)).toBe("1.50 KiB");
    expect(bytes(300 * 1024 * 1024)).toBe("300.0 MiB");
    expect(bytes(null)).toBe("—");
  });
  test("durations and ages", () => {
    expect(duration(5)).toBe("5 s");
    expect(duration(125)).toBe("2 min 5 s");
    expect(duration(7260)).toBe("2 h 1 min");
    expect(duration(90000)).toBe("1 d 1 h");
    expect(ago("2026-01-01T00:00:00Z", Date.parse("2026-01-01T00:01:00Z"))).toBe("1 min 0 s ago");
    expect(ago("garbage")).toBe("—");
  });
  test("numbers", () => {
    expect(number(1234567)).toBe("1,234,567");
    expect(number(0.12345, 2)).toBe("0.12");
    expect(number(undefined)).toBe("—");
  });
});

describe("api", () => {
  test("query strings leave empty fields out", () => {
    expect(query({ a: 1, b: "", c: undefined, d: "x y" })).toBe("?a=1&d=x+y");
    expect(query({})).toBe("");
  });
  test("error bodies become messages for people", () => {
    expect(errorFrom(422, { error: { code: "invalid", message: "name: too long" } }).message).toBe("name: too long");
    expect(errorFrom(502, null).message).toMatch(/not reachable/);
    expect(errorFrom(500, "oops").message).toBe("Request failed (HTTP 500).");
  });
});

describe("chart", () => {
  test("axis maxima are round", () => {
    expect(niceMax(0)).toBe(1);
    expect(niceMax(7)).toBe(10);
    expect(niceMax(1800)).toBe(2000);
    expect(niceMax(0.23)).toBeCloseTo(0.25);
  });
  test("points scale into the box, y downward", () => {
    const path = linePath(
      [
        { x: 0, y: 0 },
        { x: 10, y: 5 },
        { x: 20, y: 10 },
      ],
      200,
      100,
      10,
    );
    expect(path).toBe("M0.0,100.0 L100.0,50.0 L200.0,0.0");
    expect(linePath([], 10, 10, 1)).toBe("");
  });
});

describe("graph layout", () => {
  const nodes = ["a", "b", "c", "d"].map((id) => ({ id }));
  const edges = [
    { from: "a", to: "b" },
    { from: "b", to: "c" },
    { from: "c", to: "d" },
  ];
  test("every node is placed inside the box, apart from the others, the same way each time", () => {
    const first = layout(nodes, edges, 400, 300);
    const second = layout(nodes, edges, 400, 300);
    expect([...first.entries()]).toEqual([...second.entries()]);
    for (const p of first.values()) {
      expect(p.x).toBeGreaterThanOrEqual(20);
      expect(p.x).toBeLessThanOrEqual(380);
      expect(p.y).toBeGreaterThanOrEqual(20);
      expect(p.y).toBeLessThanOrEqual(280);
    }
    const points = [...first.values()];
    for (let i = 0; i < points.length; i++) {
      for (let j = i + 1; j < points.length; j++) {
        expect(Math.hypot(points[i].x - points[j].x, points[i].y - points[j].y)).toBeGreaterThan(20);
      }
    }
  });
  test("linked nodes end up closer than unlinked ones", () => {
    const p = layout(nodes, edges, 400, 300);
    const d = (a: string, b: string) => Math.hypot(p.get(a)!.x - p.get(b)!.x, p.get(a)!.y - p.get(b)!.y);
    expect(d("a", "b")).toBeLessThan(d("a", "d"));
  });
});

import { highlights } from "./highlight";

describe("highlight", () => {
  test("only ts_headline's marks become highlights; other markup stays text", () => {
    expect(highlights("likes <b>green</b> tea <script>x</script>")).toEqual([
      { text: "likes ", hit: false },
      { text: "green", hit: true },
      { text: " tea <script>x</script>", hit: false },
    ]);
    expect(highlights("")).toEqual([]);
  });
});

import { parseTyped } from "./json";

describe("typed JSON", () => {
  test("a value, or what is wrong with the text", () => {
    expect(parseTyped('{"enabled": true}')).toEqual({ value: { enabled: true } });
    const bad = parseTyped("{enabled: true}");
    expect("error" in bad && bad.error.startsWith("Not valid JSON:")).toBe(true);
  });
});

import { attempt } from "../components/ui";

describe("attempt", () => {
  test("clears the error on success and shows why on failure", async () => {
    const shown: (string | null)[] = [];
    expect(await attempt((e) => shown.push(e), async () => 1)).toBe(true);
    expect(await attempt((e) => shown.push(e), async () => Promise.reject(new Error("refused")))).toBe(false);
    expect(shown).toEqual([null, "refused"]);
  });
});
