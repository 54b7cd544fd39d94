import { useState } from "preact/hooks";

import { memory, query } from "../lib/api";
import { when } from "../lib/format";
import { ErrorNote, Json, Section, Table } from "../components/ui";
import { TraceLink } from "./Trace";
import { useEffect } from "preact/hooks";

export function Audit() {
  const [filters, setFilters] = useState({ actor: "", action: "", target: "" });
  const [applied, setApplied] = useState(filters);
  const [rows, setRows] = useState<any[]>([]);
  const [more, setMore] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [open, setOpen] = useState<string | null>(null);

  const load = async (after: any | null) => {
    try {
      const page: any[] = await memory(
        `/v1/audit${query({
          ...applied,
          limit: 50,
          before: after?.at,
          before_id: after?.id,
        })}`,
      );
      setRows(after ? [...rows, ...page] : page);
      setMore(page.length === 50);
      setError(null);
    } catch (e) {
      setError((e as Error).message);
    }
  };
  useEffect(() => {
    load(null);
  }, [applied]);

  return (
    <Section title="Who did what, when">
      <form
        class="row"
        aria-label="Audit filters"
        onSubmit={(e) => {
          e.preventDefault();
          setApplied({ ...filters });
        }}
      >
        {(["actor", "action", "target"] as const).map((field) => (
          <label>
            {field[0].toUpperCase() + field.slice(1)}
            <input name={field} value={filters[field]} onInput={(e) => setFilters({ ...filters, [field]: e.currentTarget.value })} />
          </label>
        ))}
        <button type="submit">Filter</button>
      </form>
      <ErrorNote error={error} />
      <Table head={["When", "Who", "What", "On", "Outcome", ""]} label="Audit log">
        {rows.map((r) => (
          <>
            <tr>
              <td>{when(r.at)}</td>
              <td>{r.actor}</td>
              <td>{r.action}</td>
              <td>{r.target ?? "—"}</td>
              <td>{r.outcome}</td>
              <td>
                <button type="button" class="link" aria-expanded={open === r.id} onClick={() => setOpen(open === r.id ? null : r.id)}>
                  details
                </button>
              </td>
            </tr>
            {open === r.id ? (
              <tr>
                <td colSpan={6}>
                  {r.trace_id ? (
                    <p class="small">
                      Trace <TraceLink id={r.trace_id} />
                    </p>
                  ) : null}
                  <Json value={{ source: r.source, trace_id: r.trace_id, before: r.before, after: r.after }} />
                </td>
              </tr>
            ) : null}
          </>
        ))}
      </Table>
      {more ? (
        <button type="button" onClick={() => load(rows[rows.length - 1])}>
          Older entries
        </button>
      ) : null}
    </Section>
  );
}
