import { supervisor } from "../lib/api";
import { ago, bytes, duration, number } from "../lib/format";
import { Badge, ErrorNote, Section, Table, useData } from "../components/ui";

export interface Unit {
  name: string;
  state: string;
  pid: number | null;
  started_at: string | null;
  restarts: number;
  last_exit: string | null;
  detail: string | null;
}

export function uptime(unit: Unit): string {
  if (!unit.started_at || unit.state === "stopped" || unit.state === "failed") return "—";
  return duration((Date.now() - Date.parse(unit.started_at)) / 1000);
}

export function Overview() {
  const units = useData<Unit[]>(() => supervisor("/services"), [], 3000);
  const gpu = useData<any>(() => supervisor("/gpu"), [], 5000);
  const bus = useData<any>(() => supervisor("/bus"), [], 5000);
  const errors = useData<{ unit: string; at: string; line: string }[]>(
    async () => {
      const list: Unit[] = await supervisor("/services");
      const tails = await Promise.all(
        list.map(async (u) => {
          const answer = await supervisor(`/services/${u.name}/logs?lines=5&filter=ERROR`);
          return answer.lines.map((l: any) => ({ unit: u.name, at: l.at, line: l.line }));
        }),
      );
      return tails.flat().sort((a, b) => b.at.localeCompare(a.at)).slice(0, 20);
    },
    [],
    10000,
  );
  const ready = units.data?.filter((u) => u.state === "ready").length ?? 0;
  return (
    <div class="grid">
      <Section title="Services">
        <ErrorNote error={units.error} />
        {units.data ? (
          <>
            <p class="summary" data-testid="ready-summary">
              {ready} of {units.data.length} ready
            </p>
            <Table head={["Service", "State", "Uptime", "Restarts", "Detail"]} label="Service states">
              {units.data.map((u) => (
                <tr data-unit={u.name}>
                  <td>{u.name}</td>
                  <td>
                    <Badge state={u.state} />
                  </td>
                  <td>{uptime(u)}</td>
                  <td>{u.restarts}</td>
                  <td class="detail">{u.detail ?? u.last_exit ?? ""}</td>
                </tr>
              ))}
            </Table>
          </>
        ) : null}
      </Section>
      <Section title="GPU">
        <ErrorNote error={gpu.error} />
        {gpu.data && gpu.data.devices.length === 0 ? (
          <p>No GPU: {gpu.data.reason ?? "NVML found no device"}. Models run on the CPU.</p>
        ) : null}
        {gpu.data?.devices.map((d: any) => (
          <div class="gpu">
            <strong>
              GPU {d.index}: {d.name}
            </strong>
            <meter min={0} max={d.total_bytes} value={d.used_bytes} aria-label={`GPU ${d.index} memory used`} />
            <p>
              {bytes(d.used_bytes)} used, {bytes(d.free_bytes)} free of {bytes(d.total_bytes)}
              {d.utilization_pct !== null ? `, ${d.utilization_pct}% busy` : ""}
              {d.temperature_c !== null ? `, ${d.temperature_c} °C` : ""}
            </p>
          </div>
        ))}
      </Section>
      <Section title="Event bus">
        <ErrorNote error={bus.error} />
        {bus.data ? (
          <Table head={["Stream", "Messages", "Size", "Consumer", "Lag", "Unacked"]} label="Streams and consumer lag">
            {bus.data.streams.flatMap((s: any) =>
              (s.consumers.length ? s.consumers : [null]).map((c: any, i: number) => (
                <tr>
                  <td>{i === 0 ? s.name : ""}</td>
                  <td>{i === 0 ? number(s.messages) : ""}</td>
                  <td>{i === 0 ? bytes(s.bytes) : ""}</td>
                  <td>{c?.name ?? "—"}</td>
                  <td class={c && c.pending > 100 ? "warn" : ""}>{c ? number(c.pending) : ""}</td>
                  <td>{c ? number(c.ack_pending) : ""}</td>
                </tr>
              )),
            )}
          </Table>
        ) : null}
      </Section>
      <Section title="Recent errors">
        <ErrorNote error={errors.error} />
        {errors.data && errors.data.length === 0 ? <p>No errors in the services' recent logs.</p> : null}
        <ul class="log">
          {errors.data?.map((e) => (
            <li>
              <span class="muted">
                {e.unit} · {ago(e.at)}
              </span>{" "}
              {e.line}
            </li>
          ))}
        </ul>
      </Section>
    </div>
  );
}
