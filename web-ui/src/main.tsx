import { render } from "preact";
import { useEffect, useState } from "preact/hooks";

import { control, csrfToken, setCsrfToken, whenUnauthorized } from "./lib/api";
import { Login } from "./pages/Login";
import { Overview } from "./pages/Overview";
import { Services } from "./pages/Services";
import { Models } from "./pages/Models";
import { Agents } from "./pages/Agents";
import { Policy } from "./pages/Policy";
import { Config } from "./pages/Config";
import { Quotas } from "./pages/Quotas";
import { Memory } from "./pages/Memory";
import { Attachments } from "./pages/Attachments";
import { Crews } from "./pages/Crews";
import { Runs } from "./pages/Runs";
import { Audit } from "./pages/Audit";
import { Metrics } from "./pages/Metrics";
import { Alerts } from "./pages/Alerts";
import { Trace } from "./pages/Trace";
import { Chat } from "./pages/Chat";
import { Account } from "./pages/Account";
import "./style.css";

const PAGES = [
  { path: "/", title: "Overview", view: Overview },
  { path: "/services", title: "Services", view: Services },
  { path: "/models", title: "Models", view: Models },
  { path: "/agents", title: "Agents", view: Agents },
  { path: "/policy", title: "Policy & users", view: Policy },
  { path: "/config", title: "Config", view: Config },
  { path: "/quotas", title: "Quotas & usage", view: Quotas },
  { path: "/memory", title: "Memory", view: Memory },
  { path: "/attachments", title: "Attachments", view: Attachments },
  { path: "/crews", title: "Crews", view: Crews },
  { path: "/runs", title: "Runs", view: Runs },
  { path: "/audit", title: "Audit log", view: Audit },
  { path: "/metrics", title: "Metrics", view: Metrics },
  { path: "/alerts", title: "Alerts", view: Alerts },
  { path: "/trace", title: "Trace", view: Trace },
  { path: "/chat", title: "Chat", view: Chat },
  { path: "/account", title: "Account", view: Account },
];

export function navigate(path: string) {
  history.pushState(null, "", path);
  dispatchEvent(new PopStateEvent("popstate"));
}

function usePath(): string {
  const [path, setPath] = useState(location.pathname);
  useEffect(() => {
    const update = () => setPath(location.pathname);
    addEventListener("popstate", update);
    return () => removeEventListener("popstate", update);
  }, []);
  return path;
}

type Session = { state: "checking" } | { state: "out"; reason?: string } | { state: "in"; name: string };

function App() {
  const path = usePath();
  const [session, setSession] = useState<Session>({ state: "checking" });
  const [menuOpen, setMenuOpen] = useState(false);

  useEffect(() => {
    whenUnauthorized(() => {
      setCsrfToken(null);
      setSession({ state: "out", reason: "Your session has ended; please sign in again." });
    });
    if (!csrfToken()) {
      setSession({ state: "out" });
      return;
    }
    control("/auth/whoami", { method: "POST" })
      .then((who) => setSession({ state: "in", name: who.name }))
      .catch(() => setSession({ state: "out" }));
  }, []);

  if (session.state === "checking") return <p class="centre">Loading…</p>;
  if (session.state === "out") {
    return <Login reason={session.reason} onIn={(name) => setSession({ state: "in", name })} />;
  }
  const page = PAGES.find((p) => p.path === path) ?? PAGES[0];
  const View = page.view;
  document.title = `${page.title} · DAARION admin`;
  return (
    <div class="shell">
      <header class="top">
        <button
          type="button"
          class="menu-toggle"
          aria-expanded={menuOpen}
          aria-controls="nav"
          onClick={() => setMenuOpen(!menuOpen)}
        >
          ☰ <span class="sr-only">Menu</span>
        </button>
        <strong class="brand">DAARION</strong>
        <span class="who">{session.name}</span>
        <button
          type="button"
          onClick={async () => {
            await control("/auth/logout", { method: "POST" }).catch(() => null);
            setCsrfToken(null);
            setSession({ state: "out", reason: "Signed out." });
          }}
        >
          Sign out
        </button>
      </header>
      <nav id="nav" class={menuOpen ? "open" : ""} aria-label="Pages">
        {PAGES.map((p) => (
          <a
            href={p.path}
            aria-current={p === page ? "page" : undefined}
            onClick={(e) => {
              e.preventDefault();
              setMenuOpen(false);
              navigate(p.path);
            }}
          >
            {p.title}
          </a>
        ))}
      </nav>
      <main>
        <h1>{page.title}</h1>
        <View />
      </main>
    </div>
  );
}

render(<App />, document.getElementById("app")!);
