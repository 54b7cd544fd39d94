import { describe, expect, test } from "vitest";

import {
  anyUnfinished,
  type Attachment,
  type Chunk,
  cite,
  groupByLocator,
  parseLanguages,
  stateText,
  uploadText,
} from "./attachments";

const at = (change: Partial<Attachment>) =>
  ({ state: "received", progress: null, error: null, chunks: 0, indexed: 0, ...change }) as Attachment;

const chunk = (ordinal: number, locator?: Chunk["locator"], headings?: string[]): Chunk => ({
  id: `c${ordinal}`,
  ordinal,
  content: `text ${ordinal}`,
  state: "indexed",
  error: null,
  locator,
  headings,
});

describe("attachments", () => {
  test("each state reads like a person would say it", () => {
    const cases: [Partial<Attachment>, string][] = [
      [{ state: "received" }, "received"],
      [{ state: "parsing" }, "parsing…"],
      [{ state: "parsing", progress: { done: 3, total: 12 } }, "parsing 3 of 12"],
      [{ state: "parsing", progress: { done: 3, total: null } }, "parsing 3"],
      [{ state: "parsed" }, "parsed"],
      [{ state: "parsed", chunks: 8, indexed: 5 }, "parsed, 5 of 8 chunks indexed"],
      [{ state: "indexed", chunks: 8, indexed: 8 }, "indexed"],
      [{ state: "failed", error: "encrypted PDF" }, "failed: encrypted PDF"],
      [{ state: "failed" }, "failed"],
    ];
    for (const [change, text] of cases) expect(stateText(at(change)), JSON.stringify(change)).toBe(text);
  });

  test("the list stays live while anything is unfinished", () => {
    expect(anyUnfinished(undefined)).toBe(false);
    expect(anyUnfinished([at({ state: "indexed" }), at({ state: "failed" })])).toBe(false);
    for (const state of ["received", "parsing", "parsed"] as const) {
      expect(anyUnfinished([at({ state: "indexed" }), at({ state })]), state).toBe(true);
    }
  });

  test("locators cite as the memory contract does", () => {
    const cases: [Chunk["locator"], string][] = [
      [{ kind: "page", page: 3 }, "p. 3"],
      [{ kind: "sheet", name: "Budget", index: 2 }, 'sheet "Budget"'],
      [{ kind: "slide", slide: 4 }, "slide 4"],
      [{ kind: "time", start_ms: 725000, end_ms: 3820000 }, "12:05–1:03:40"],
      [{ kind: "whole" }, ""],
      [null, ""],
      [undefined, ""],
    ];
    for (const [locator, text] of cases) expect(cite(locator), JSON.stringify(locator)).toBe(text);
  });

  test("chunks group by their place in reading order", () => {
    const groups = groupByLocator([
      chunk(2, { kind: "page", page: 2 }),
      chunk(0, { kind: "page", page: 1 }, ["Intro"]),
      chunk(1, { kind: "page", page: 1 }),
      chunk(3, { kind: "page", page: 2 }),
    ]);
    expect(groups.map((g) => [g.label, g.chunks.map((c) => c.ordinal)])).toEqual([
      ["p. 1", [0, 1]],
      ["p. 2", [2, 3]],
    ]);
    expect(groups[0].chunks[0].headings).toEqual(["Intro"]);
  });

  test("chunks without a place, or of the whole file, make one text group", () => {
    expect(groupByLocator([chunk(0), chunk(1, { kind: "whole" })]).map((g) => [g.label, g.chunks.length])).toEqual([
      ["Text", 2],
    ]);
    expect(groupByLocator([])).toEqual([]);
  });

  test("OCR languages read from any usual separator", () => {
    expect(parseLanguages("ukr, rus eng+deu")).toEqual(["ukr", "rus", "eng", "deu"]);
    expect(parseLanguages("  ")).toEqual([]);
  });

  test("upload progress in sizes and percent", () => {
    expect(uploadText(0, 0)).toBe("0 B");
    expect(uploadText(512, 1024)).toBe("512 B of 1.00 KiB (50 %)");
    expect(uploadText(3 * 1024 * 1024, 3 * 1024 * 1024)).toBe("3.00 MiB of 3.00 MiB (100 %)");
    expect(uploadText(2048, 1024)).toBe("2.00 KiB of 1.00 KiB (100 %)");
  });
});
