import { describe, expect, it } from 'vitest';
import { watchScope } from '../../src/watch/watch-scope.js';

const file = { isFile: () => true };
const dir = { isFile: () => false };

describe('watchScope', () => {
  it('keeps package files below the directory and nothing else', () => {
    const s = watchScope('/w', '/elsewhere/home', '/elsewhere/home/state.json');
    expect(s.includes('/w/a.spin.yaml')).toBe(true);
    expect(s.includes('/w/sub/b.spin.yaml')).toBe(true);
    expect(s.includes('/w/a.spin.yaml.tmp-12')).toBe(false);
    expect(s.includes('/w/.git/x.spin.yaml')).toBe(false);
    expect(s.includes('/w/node_modules/x.spin.yaml')).toBe(false);
    expect(s.includes('/other/a.spin.yaml')).toBe(false);
    expect(s.ignored('/w')).toBe(false);
    expect(s.ignored('/w/sub', dir)).toBe(false);
    expect(s.ignored('/w/notes.txt', file)).toBe(true);
  });

  it("leaves out spin's own files: a home below the directory whole, else its agent roots", () => {
    const inside = watchScope('/w', '/w/home', '/w/state.json');
    expect(inside.ignored('/w/home', dir)).toBe(true);
    expect(inside.includes('/w/home/images/v/disk.spin.yaml')).toBe(false);
    expect(inside.ignored('/w/state.json.lock')).toBe(true);
    const around = watchScope('/h/packages', '/h', '/h/state.json');
    expect(around.includes('/h/packages/a.spin.yaml')).toBe(true);
    const rootIsHome = watchScope('/h', '/h', '/h/state.json');
    expect(rootIsHome.includes('/h/a.spin.yaml')).toBe(true);
    expect(rootIsHome.includes('/h/images/v/x.spin.yaml')).toBe(false);
    expect(rootIsHome.includes('/h/vms/1/x.spin.yaml')).toBe(false);
  });
});
