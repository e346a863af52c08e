// Keeps a page current by itself: polls the gateway's change marker (/api/v1/live) and, when
// it changed, runs the page's refresh. Polling rather than server-sent events: EventSource
// cannot send the bearer token (docs/dashboards.md), and a poll holds no connection open.
import { apiGet } from "./api.js";

const DEFAULT_S = 15;

/** Seconds between polls: ?live_s=N (1-300) on the page's address, else 15. */
function intervalMs() {
  const asked = Number(new URLSearchParams(location.search).get("live_s"));
  const s = Number.isFinite(asked) && asked >= 1 ? Math.min(asked, 300) : DEFAULT_S;
  return s * 1000;
}

// read when the page starts: the overview rewrites its address with its filters
const INTERVAL_MS = intervalMs();

/**
 * Call `refresh()` whenever the marker for `selection` changes (not while the tab is hidden,
 * a refresh is still running, or the page is not showing figures). Returns a stop function.
 */
export function keepLive(refresh, selection = () => ({})) {
  let last = null;
  let busy = false;
  const poll = async (first) => {
    const state = document.body.dataset.state;
    if (busy || (!first && (document.hidden || (state !== "ready" && state !== "error")))) return;
    busy = true;
    try {
      const { version } = await apiGet("/live", selection());
      if (last !== null && version !== last) await refresh();
      last = version;
    } catch {
      // a failed poll is retried at the next tick; a refused token shows the sign-in form
    } finally {
      busy = false;
    }
  };
  // The first marker is read at once, while the page fetches its figures: a window stored
  // after that is a change the next tick sees.
  poll(true);
  const timer = setInterval(() => poll(false), INTERVAL_MS);
  return () => clearInterval(timer);
}
