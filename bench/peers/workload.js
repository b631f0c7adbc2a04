// The workload of bench:apply, one graph for every tool that builds it: `count` directories
// v0 … v(count-1), either independent or as 10 chains of count/10 (each directory needs the one
// before it in its chain). Counting up from v0 visits every chain in order, so a loop that makes
// them one after the other satisfies both shapes.

/** The number of chains of the `chains` shape. */
export const chainCount = 10;

/** The name of the i-th directory: spin's command id and volume name, make's target. */
export const volumeName = (i) => `v${i}`;

/** The index the i-th directory needs first, or undefined when it needs nothing. */
export function predecessor(i, count, shape) {
  if (shape === 'independent') return undefined;
  const perChain = Math.ceil(count / chainCount);
  return i % perChain === 0 ? undefined : i - 1;
}

/** A spin package of `count` add_volume commands shaped as `shape`. */
export function packageText(count, shape) {
  const lines = [`package: bench-apply-${count}-${shape}`, 'commands:'];
  for (let i = 0; i < count; i++) {
    const before = predecessor(i, count, shape);
    const needs = before === undefined ? '' : `, needs: [${volumeName(before)}]`;
    const name = volumeName(i);
    lines.push(
      `  ${name}: { resource: storage, action: add_volume${needs}, params: { path: ${name} } }`,
    );
  }
  return lines.join('\n') + '\n';
}

/** A Makefile (run in the directory that receives them) with one `mkdir` target per directory. */
export function makefileText(count, shape) {
  const names = Array.from({ length: count }, (_, i) => volumeName(i));
  const lines = ['.PHONY: all', `all: ${names.join(' ')}`];
  for (let i = 0; i < count; i++) {
    const before = predecessor(i, count, shape);
    lines.push(`${names[i]}:${before === undefined ? '' : ` ${volumeName(before)}`}`, '\tmkdir $@');
  }
  return lines.join('\n') + '\n';
}

/**
 * The package of the no-op re-apply: 1,000 storage commands, 10 volumes and 990 sparse raw images
 * (each needs its volume), as earlier versions of this benchmark measured it.
 */
export function mixedPackageText(count, volumes = 10) {
  const lines = ['package: bench-apply-mixed', 'commands:'];
  for (let v = 0; v < volumes; v++)
    lines.push(`  vol${v}: { resource: storage, action: add_volume, params: { path: vol${v} } }`);
  for (let i = 0; i < count - volumes; i++) {
    const v = i % volumes;
    lines.push(
      `  img${i}: { resource: storage, action: create_image, needs: [vol${v}], params: { volume: vol${v}, image: img${i}.raw, image_size: 1 } }`,
    );
  }
  return lines.join('\n') + '\n';
}
