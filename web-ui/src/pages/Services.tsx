import { useState } from "preact/hooks";

import { supervisor } from "../lib/api";
import { when } from "../lib/format";
import { Action, Badge, ErrorNote, Section, Table, useData } from "../components/ui";
import { type Unit, uptime } from "./Overview";

export function Services() {
  const units = useData<Unit[]>(() => supervisor("/services"), [], 2000);
  const [selected, setSelected] = useState<string | null>(null);
  const [filter, setFilter] = useState("");
  const [error, setError] = useState<string | null>(null);
  const logs = useData<any>(
    () =>
      selected
        ? supervisor(`/services/${selected}/logs?lines=300&filter=${encodeURIComponent(filter)}`)
        : Promise.resolve(null),
    [selected, filter],
    2000,
  );
  const act = (name: string, action: string) => () =>
    supervisor(`/services/${name}/${action}`, { method: "POST" });
  return (
    <>
      <Section title="Units">
        <ErrorNote error={units.error ?? error} />
        <Table head={["Service", "State", "PID", "Uptime", "Restarts", "Actions"]} label="Units">
          {units.data?.map((u) => (
            <tr data-unit={u.name}>
              <td>{u.name}</td>
              <td>
                <Badge state={u.state} />
              </td>
              <td>{u.pid ?? "—"}</td>
              <td>{uptime(u)}</td>
              <td>{u.restarts}</td>
              <td class="actions">
                <Action label="Restart" run={act(u.name, "restart")} onDone={units.reload} onError={setError} />
                <Action label="Stop" kind="danger" run={act(u.name, "stop")} onDone={units.reload} onError={setError} />
                <Action label="Start" run={act(u.name, "start")} onDone={units.reload} onError={setError} />
                <button type="button" onClick={() => setSelected(u.name)} aria-pressed={selected === u.name}>
                  Logs
                </button>
              </td>
            </tr>
          ))}
        </Table>
      </Section>
      {selected ? (
        <Section title={`Logs: ${selected}`}>
          <label class="inline">
            Filter
            <input
              type="search"
              value={filter}
              placeholder="text the line must contain"
              onInput={(e) => setFilter(e.currentTarget.value)}
            />
          </label>
          <ErrorNote error={logs.error} />
          <pre class="logs" aria-live="polite">
            {logs.data?.lines.map((l: any) => `${when(l.at)} ${l.stream === "stderr" ? "!" : " "} ${l.line}\n`)}
          </pre>
        </Section>
      ) : null}
    </>
  );
}
