// The control plane's unified diff of two prompt versions, as lines to colour.

export type DiffKind = "add" | "del" | "ctx" | "hunk" | "header";

export interface DiffLine {
  kind: DiffKind;
  text: string;
}

export function parseUnified(unified: string): DiffLine[] {
  const lines = unified.split("\n");
  if (lines.length > 0 && lines[lines.length - 1] === "") lines.pop();
  return lines.map((line): DiffLine => {
    if (line.startsWith("+++") || line.startsWith("---")) return { kind: "header", text: line };
    if (line.startsWith("@@")) return { kind: "hunk", text: line };
    if (line.startsWith("+")) return { kind: "add", text: line.slice(1) };
    if (line.startsWith("-")) return { kind: "del", text: line.slice(1) };
    return { kind: "ctx", text: line.startsWith(" ") ? line.slice(1) : line };
  });
}
