/**
 * A command of a loaded package: what to do (resource + action + params), where (node), after
 * what (needs), and within which bounds (timeout, retries). Ids are unique within a package.
 */
export interface CommandSpec {
  id: string;
  resource: string;
  action: string;
  params: Record<string, unknown>;
  needs: string[];
  node: string;
  timeoutMs: number;
  retries: number;
  /** `allow`: a replace of this command may undo what holds data (see `--allow-replace`). */
  replace?: 'allow';
}

/** A loaded, validated package: its commands in file order. */
export interface PackageSpec {
  name: string;
  description?: string;
  /** The file the package was read from, as given on the command line. */
  file: string;
  commands: CommandSpec[];
}
