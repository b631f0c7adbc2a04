// @ts-check
import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

const cliOnly = [
  { group: ['@oclif/*'], message: 'Only src/commands may use oclif.' },
  { group: ['listr2'], message: 'Only src/commands renders progress.' },
];

/**
 * The pipeline's stages and the stages each may import: imports point one way, down the
 * pipeline (file → load → plan → broker → executor → agents → state), to src/core. Only
 * src/commands and src/cli (the two top stages) may import oclif, listr2 or each other.
 */
const stages = {
  core: [],
  agents: ['core'],
  load: ['core', 'agents'],
  plan: ['core', 'agents', 'load'],
  broker: ['core'],
  executor: ['core', 'agents', 'broker'],
  daemon: ['core', 'broker'],
  reconcile: ['core', 'agents', 'load', 'plan', 'broker', 'executor', 'daemon'],
  watch: ['core', 'agents', 'load', 'plan', 'broker', 'executor', 'daemon', 'reconcile'],
  web: ['core', 'agents', 'broker', 'executor', 'daemon', 'reconcile'],
};
const allStages = [...Object.keys(stages), 'cli', 'commands'];
const stageRules = Object.entries(stages).map(([stage, allowed]) => {
  const banned = allStages.filter((other) => other !== stage && !allowed.includes(other));
  return {
    files: [`src/${stage}/**/*.ts`],
    rules: {
      'no-console': 'error',
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            ...cliOnly,
            {
              group: banned.map((other) => `**/${other}/**`),
              message: `src/${stage} may import only ${allowed.length > 0 ? allowed.map((a) => `src/${a}`).join(', ') : 'nothing of spin'}.`,
            },
          ],
        },
      ],
    },
  };
});

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'coverage/**', 'test/fixtures/**', 'bench/.out/**'] },
  js.configs.recommended,
  ...tseslint.configs.strictTypeChecked,
  {
    languageOptions: {
      parserOptions: {
        projectService: true,
        tsconfigRootDir: import.meta.dirname,
      },
    },
    rules: {
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { ignoreRestSiblings: true }],
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true }],
      '@typescript-eslint/switch-exhaustiveness-check': [
        'error',
        { considerDefaultExhaustiveForUnions: true, requireDefaultForNonUnion: false },
      ],
    },
  },
  ...stageRules,
  {
    files: ['src/cli/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [{ group: ['**/commands/**'], message: 'src/cli never imports src/commands.' }],
        },
      ],
    },
  },
  {
    files: ['test/**/*.ts'],
    rules: {
      'no-restricted-properties': [
        'error',
        { object: 'it', property: 'only' },
        { object: 'describe', property: 'only' },
        { object: 'test', property: 'only' },
        { object: 'it', property: 'skip' },
        { object: 'describe', property: 'skip' },
        { object: 'test', property: 'skip' },
      ],
      '@typescript-eslint/no-non-null-assertion': 'off',
    },
  },
  {
    files: ['**/*.js', '**/*.cjs'],
    ...tseslint.configs.disableTypeChecked,
    languageOptions: {
      ...tseslint.configs.disableTypeChecked.languageOptions,
      globals: globals.node,
    },
  },
  { files: ['**/*.cjs'], rules: { '@typescript-eslint/no-require-imports': 'off' } },
  { files: ['src/ui/**/*.js'], languageOptions: { globals: globals.browser } },
);
