/**
 * An AbortController that also aborts, with the same reason, when `parent` does; `dispose`
 * detaches it from the parent once its work is done. What `AbortSignal.any` gives, without the
 * cost that one per command adds up to, and without keeping the child alive through the parent.
 */
export function linkedAbort(parent: AbortSignal): {
  controller: AbortController;
  dispose: () => void;
} {
  const controller = new AbortController();
  if (parent.aborted) {
    controller.abort(parent.reason);
    return { controller, dispose: () => undefined };
  }
  const follow = (): void => {
    controller.abort(parent.reason);
  };
  parent.addEventListener('abort', follow, { once: true });
  return {
    controller,
    dispose: () => {
      parent.removeEventListener('abort', follow);
    },
  };
}
