// The page's data: JSON snapshots from /api, and the daemon's pushed events from /events.
import { useEffect, useRef, useState } from '/vendor/hooks.mjs';

/** GETs a JSON route; a refused session sends the page to the login message. */
export async function getJson(path) {
  const response = await fetch(path, { credentials: 'same-origin' });
  if (response.status === 401) {
    window.location.assign('/');
    throw new Error('not logged in');
  }
  const body = await response.json();
  if (!response.ok) throw new Error(body?.error?.message ?? `HTTP ${response.status}`);
  return body;
}

const listeners = new Set();
let source;

/**
 * Follows /events once for the whole page. Each (re)connection starts with `hello`, after which
 * every view fetches its snapshot again: a daemon restart is caught up without a reload.
 */
export function followEvents(onStatus) {
  source = new EventSource('/events');
  const emit = (kind, data) => {
    for (const listener of listeners) listener(kind, data);
  };
  source.addEventListener('hello', () => {
    onStatus('live');
    emit('hello', {});
  });
  source.addEventListener('state', () => emit('state', {}));
  source.addEventListener('message', (e) => emit('broker', JSON.parse(e.data)));
  source.addEventListener('error', () => onStatus('reconnecting'));
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
 * A snapshot of `path`, fetched again on every reconnection and whenever `shouldRefetch(kind,
 * data)` says an event changed it (several events within 100 ms make one fetch).
 */
export function useSnapshot(path, shouldRefetch = () => true) {
  const [state, setState] = useState({ data: undefined, error: undefined });
  const timer = useRef(undefined);
  const load = () => {
    getJson(path).then(
      (data) => setState({ data, error: undefined }),
      (error) => setState((s) => ({ data: s.data, error: String(error.message ?? error) })),
    );
  };
  useEffect(() => {
    setState({ data: undefined, error: undefined });
    load();
  }, [path]);
  useEvents((kind, data) => {
    if (kind !== 'hello' && !shouldRefetch(kind, data)) return;
    clearTimeout(timer.current);
    timer.current = setTimeout(load, kind === 'hello' ? 0 : 100);
  });
  return [state.data, state.error, (update) => setState((s) => ({ ...s, data: update(s.data) }))];
}
