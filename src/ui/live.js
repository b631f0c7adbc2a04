// The page's data: JSON snapshots from /api, and the daemon's pushed events from /events.
import { useEffect, useRef, useState } from '/vendor/hooks.mjs';

/** GETs a JSON route; a refused session sends the page to the login message. */
export async function getJson(path) {
  const response = await fetch(path, { credentials: 'same-origin' });
  const seq = Number(response.headers.get('x-spin-seq') ?? '-1');
  if (response.status === 401) {
    window.location.assign('/');
    throw new Error('not logged in');
  }
  const body = await response.json();
  if (!response.ok) throw new Error(body?.error?.message ?? `HTTP ${response.status}`);
  return { body, seq };
}

const listeners = new Set();
const statusListeners = new Set();
let status = 'connecting';
let connections = 0;
/** The `seq` of the stream's first `hello`, once it came; later ones are reconnections. */
let firstSeq;

function setStatus(next) {
  status = next;
  for (const listener of statusListeners) listener(next);
}

// Opened as the page's modules load, so that it is up by the time the first view asks for data.
const source = new EventSource('/events');
const emit = (kind, data) => {
  for (const listener of listeners) listener(kind, data);
};
source.addEventListener('hello', (e) => {
  connections += 1;
  setStatus('live');
  if (connections === 1) firstSeq = JSON.parse(e.data).seq;
  emit('hello', { reconnected: connections > 1, seq: JSON.parse(e.data).seq });
});
source.addEventListener('state', () => emit('state', {}));
source.addEventListener('message', (e) => emit('broker', JSON.parse(e.data)));
source.addEventListener('error', () => setStatus('reconnecting'));

/** Calls `onStatus` with the stream's state now and at each change: live, reconnecting. */
export function followStatus(onStatus) {
  statusListeners.add(onStatus);
  onStatus(status);
  return () => statusListeners.delete(onStatus);
}

/** Calls `listener(kind, data)` for each pushed event while the component is mounted. */
export function useEvents(listener) {
  const ref = useRef(listener);
  ref.current = listener;
  useEffect(() => {
    const call = (kind, data) => ref.current(kind, data);
    listeners.add(call);
    return () => listeners.delete(call);
  }, []);
}

/**
 * Whether a snapshot answered at update `seq` may lack what came before the stream's first
 * `hello`: it followed from `firstSeq` on, so only a snapshot older than that does.
 */
function stale(seq) {
  return firstSeq !== undefined && seq < firstSeq;
}

/**
 * A snapshot of `path`, fetched at once, again when it turns out older than the event stream,
 * on every reconnection and whenever `shouldRefetch(kind,
 * data)` says an event changed it (several events within 100 ms make one fetch).
 */
export function useSnapshot(path, shouldRefetch = () => true) {
  const [state, setState] = useState({ data: undefined, error: undefined });
  const timer = useRef(undefined);
  const seq = useRef(-1);
  const load = () => {
    getJson(path).then(
      ({ body, seq: at }) => {
        seq.current = at;
        setState({ data: body, error: undefined });
        if (stale(at)) load();
      },
      (error) => setState((s) => ({ data: s.data, error: String(error.message ?? error) })),
    );
  };
  useEffect(() => {
    setState({ data: undefined, error: undefined });
    load();
  }, [path]);
  useEvents((kind, data) => {
    if (kind === 'hello' && !data.reconnected && !(seq.current >= 0 && stale(seq.current))) return;
    if (kind !== 'hello' && !shouldRefetch(kind, data)) return;
    clearTimeout(timer.current);
    timer.current = setTimeout(load, kind === 'hello' ? 0 : 100);
  });
  return [state.data, state.error, (update) => setState((s) => ({ ...s, data: update(s.data) }))];
}
