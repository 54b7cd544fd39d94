// Attachments as the ingest service and the memory API describe them, and how they read on the
// Attachments page. The shapes mirror appliance/memory-client/src/attachments.rs.

import { bytes } from "./format";

export type AttachmentState = "received" | "parsing" | "parsed" | "indexed" | "failed";

export const STATES: AttachmentState[] = ["received", "parsing", "parsed", "indexed", "failed"];

export interface ParseOptions {
  ocr_languages?: string[];
  force_ocr?: boolean;
}

export interface Attachment {
  id: string;
  user_id: string;
  name: string;
  format: string;
  mime: string;
  bytes: number;
  sha256: string;
  options: ParseOptions;
  state: AttachmentState;
  attempt: number;
  progress: { done: number; total: number | null } | null;
  pages: number | null;
  document_id: string | null;
  chunks: number;
  indexed: number;
  error: string | null;
  created_at: string;
  updated_at: string;
  parsed_at: string | null;
  indexed_at: string | null;
}

export type Locator =
  | { kind: "page"; page: number }
  | { kind: "sheet"; name: string; index: number }
  | { kind: "slide"; slide: number }
  | { kind: "time"; start_ms: number; end_ms: number }
  | { kind: "whole" };

/** A chunk of a memory document; attachments' chunks say where in the file they came from. */
export interface Chunk {
  id: string;
  ordinal: number;
  content: string;
  state: string;
  error: string | null;
  locator?: Locator | null;
  headings?: string[] | null;
}

/** Whether nothing more will happen to it without someone acting. */
export function finished(a: Pick<Attachment, "state">): boolean {
  return a.state === "indexed" || a.state === "failed";
}

/** Whether the list should keep refreshing. */
export function anyUnfinished(list: Pick<Attachment, "state">[] | undefined): boolean {
  return (list ?? []).some((a) => !finished(a));
}

/** The state as a person reads it: `parsing 3 of 12`, `failed: encrypted PDF`. */
export function stateText(a: Pick<Attachment, "state" | "progress" | "error" | "chunks" | "indexed">): string {
  switch (a.state) {
    case "parsing": {
      const p = a.progress;
      if (!p) return "parsing…";
      return p.total ? `parsing ${p.done} of ${p.total}` : `parsing ${p.done}`;
    }
    case "parsed":
      return a.chunks ? `parsed, ${a.indexed} of ${a.chunks} chunks indexed` : "parsed";
    case "failed":
      return a.error ? `failed: ${a.error}` : "failed";
    default:
      return a.state;
  }
}

/** How a person cites a place in a file: `p. 3`, `sheet "Budget"`, `slide 4`, `12:05–13:40`. */
export function cite(locator: Locator | null | undefined): string {
  if (!locator) return "";
  const clock = (ms: number) => {
    const s = Math.floor(ms / 1000);
    const h = Math.floor(s / 3600);
    const mm = Math.floor((s / 60) % 60);
    const ss = String(s % 60).padStart(2, "0");
    return h ? `${h}:${String(mm).padStart(2, "0")}:${ss}` : `${Math.floor(s / 60)}:${ss}`;
  };
  switch (locator.kind) {
    case "page":
      return `p. ${locator.page}`;
    case "sheet":
      return `sheet "${locator.name}"`;
    case "slide":
      return `slide ${locator.slide}`;
    case "time":
      return `${clock(locator.start_ms)}–${clock(locator.end_ms)}`;
    default:
      return "";
  }
}

export interface ChunkGroup {
  /** What the group is headed with: `p. 3`, or `Text` for chunks that name no place. */
  label: string;
  chunks: Chunk[];
}

/** Chunks grouped by where they came from, in reading order; neighbours with the same place
 * make one group (a page split into several chunks reads as one page). */
export function groupByLocator(chunks: Chunk[]): ChunkGroup[] {
  const groups: ChunkGroup[] = [];
  const sorted = [...chunks].sort((a, b) => a.ordinal - b.ordinal);
  for (const chunk of sorted) {
    const label = cite(chunk.locator) || "Text";
    const last = groups[groups.length - 1];
    if (last && last.label === label) last.chunks.push(chunk);
    else groups.push({ label, chunks: [chunk] });
  }
  return groups;
}

/** `ukr, rus eng+deu` → `["ukr", "rus", "eng", "deu"]`: how the OCR languages field reads. */
export function parseLanguages(text: string): string[] {
  return text
    .split(/[\s,+]+/)
    .map((l) => l.trim())
    .filter((l) => l.length > 0);
}

/** An upload's progress: `1.50 MiB of 3.00 MiB (50 %)`. */
export function uploadText(loaded: number, total: number): string {
  if (!total) return `${bytes(loaded)}`;
  const percent = Math.min(100, Math.floor((loaded / total) * 100));
  return `${bytes(loaded)} of ${bytes(total)} (${percent} %)`;
}
