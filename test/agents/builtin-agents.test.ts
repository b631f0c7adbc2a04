import { expect, it } from 'vitest';
import { builtinAgents } from '../../src/agents/builtin-agents.js';
import { actionRegistry } from '../../src/agents/registry.js';

it('implements exactly the registered specs, with params for every declared inverse', () => {
  const agents = builtinAgents({ allowShell: false });
  expect([...agents.keys()].sort()).toEqual([...actionRegistry.keys()].sort());
  for (const [resource, specs] of actionRegistry) {
    const agent = agents.get(resource)!;
    expect(agent.resource).toBe(resource);
    expect([...agent.actions.keys()].sort()).toEqual([...specs.keys()].sort());
    for (const [name, spec] of specs) {
      const action = agent.actions.get(name)!;
      expect(action.spec).toBe(spec);
      if (spec.inverse !== undefined) {
        expect(specs.has(spec.inverse), `${resource}/${name} inverse`).toBe(true);
        expect(action.inverseParams, `${resource}/${name} inverseParams`).toBeTypeOf('function');
      }
    }
  }
});

it('maps params to the inverse action', () => {
  const agents = builtinAgents({ allowShell: false });
  const copy = agents.get('storage')!.actions.get('copy_image')!;
  expect(
    copy.inverseParams!({ from_volume: 'a', from_image: 'x', to_volume: 'b', to_image: 'y' }),
  ).toEqual({ volume: 'b', image: 'y' });
  expect(
    agents.get('emulation')!.actions.get('start')!.inverseParams!({ id: 3, ready_when: 'x' }),
  ).toEqual({
    id: 3,
  });
});
