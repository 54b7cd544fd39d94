// Small pieces every page uses: loading data (with live refresh), errors, buttons that show
// they are busy, and tables that scroll on a phone.

import type { ComponentChildren } from "preact";
import { useCallback, useEffect, useRef, useState } from "preact/hooks";

export interface Loaded<T> {
  data: T | undefined;
  error: string | null;
  loading: boolean;
  reload: () => void;
}

/** Runs `load` now, when `deps` change, and every `refreshMs` while the page is open. */
export function useData<T>(load: () => Promise<T>, deps: unknown[], refreshMs?: number): Loaded<T> {
  const [data, setData] = useState<T | undefined>(undefined);
  const [error, setError] = useState<string | null>(null);
  const [loading, setLoading] = useState(true);
  const generation = useRef(0);
  const reload = useCallback(() => {
    const mine = ++generation.current;
    setLoading(true);
    load()
      .then((value) => {
        if (mine !== generation.current) return;
        setData(value);
        setError(null);
      })
      .catch((e: Error) => {
        if (mine === generation.current) setError(e.message);
      })
      .finally(() => {
        if (mine === generation.current) setLoading(false);
      });
  }, deps);
  useEffect(() => {
    reload();
    if (!refreshMs) return;
    const timer = setInterval(reload, refreshMs);
    return () => clearInterval(timer);
  }, [reload, refreshMs]);
  return { data, error, loading, reload };
}

/** Runs a form's request: clears the form's error when it succeeds, shows why when it fails. */
export async function attempt(
  setError: (message: string | null) => void,
  request: () => Promise<unknown>,
): Promise<boolean> {
  try {
    await request();
    setError(null);
    return true;
  } catch (err) {
    setError((err as Error).message);
    return false;
  }
}

export function ErrorNote({ error }: { error: string | null | undefined }) {
  return error ? (
    <p class="error" role="alert">
      {error}
    </p>
  ) : null;
}

export function Notice({ text }: { text: string | null }) {
  return text ? (
    <p class="notice" role="status">
      {text}
    </p>
  ) : null;
}

/** A button that runs an async action, is disabled while it runs, and reports failure. */
export function Action(props: {
  label: string;
  run: () => Promise<unknown>;
  onDone?: () => void;
  onError?: (message: string) => void;
  kind?: "primary" | "danger" | "plain";
  disabled?: boolean;
  title?: string;
}) {
  const [busy, setBusy] = useState(false);
  return (
    <button
      type="button"
      class={props.kind ?? "plain"}
      disabled={busy || props.disabled}
      title={props.title}
      aria-busy={busy}
      onClick={async () => {
        setBusy(true);
        try {
          await props.run();
          props.onDone?.();
        } catch (e) {
          const message = (e as Error).message;
          if (props.onError) props.onError(message);
          else alert(message);
        } finally {
          setBusy(false);
        }
      }}
    >
      {props.label}
    </button>
  );
}

export function Section(props: { title: string; children: ComponentChildren; actions?: ComponentChildren }) {
  return (
    <section class="card" aria-label={props.title}>
      <header class="card-head">
        <h2>{props.title}</h2>
        {props.actions ? <div class="card-actions">{props.actions}</div> : null}
      </header>
      {props.children}
    </section>
  );
}

export function Table(props: { head: string[]; children: ComponentChildren; label: string }) {
  return (
    <div class="table-wrap">
      <table aria-label={props.label}>
        <thead>
          <tr>
            {props.head.map((h) => (
              <th scope="col">{h}</th>
            ))}
          </tr>
        </thead>
        <tbody>{props.children}</tbody>
      </table>
    </div>
  );
}

export function Badge({ state }: { state: string }) {
  return <span class={`badge badge-${state.toLowerCase()}`}>{state}</span>;
}

/** Shows JSON for reading; long values scroll. */
export function Json({ value }: { value: unknown }) {
  return <pre class="json">{JSON.stringify(value, null, 2)}</pre>;
}
