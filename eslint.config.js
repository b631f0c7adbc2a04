// @ts-check
import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

const restrict = (patterns) => ({
  'no-restricted-imports': ['error', { patterns }],
});
const cliOnly = [
  { group: ['@oclif/*'], message: 'Only src/commands may use oclif.' },
  { group: ['listr2'], message: 'Only src/commands renders progress.' },
  { group: ['**/commands/**', '**/cli/**'], message: 'The core never imports the CLI layer.' },
];

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
    },
  },
  {
    files: ['src/**/*.ts'],
    ignores: ['src/commands/**', 'src/cli/**'],
    rules: { 'no-console': 'error', ...restrict(cliOnly) },
  },
  {
    files: ['src/agents/**/*.ts'],
    rules: {
      ...restrict([
        ...cliOnly,
        {
          group: ['**/planner/**', '**/daemon/**', '**/executor/**'],
          message: 'Agents sit below the planner, broker and executor.',
        },
      ]),
    },
  },
  {
    files: ['src/core/**/*.ts'],
    rules: {
      ...restrict([
        ...cliOnly,
        {
          group: ['**/planner/**', '**/daemon/**', '**/executor/**', '**/agents/**'],
          message: 'core sits below everything.',
        },
      ]),
    },
  },
  {
    files: ['src/planner/**/*.ts'],
    rules: {
      ...restrict([
        ...cliOnly,
        {
          group: ['**/daemon/**', '**/executor/**'],
          message: 'The planner does not depend on the broker or executor.',
        },
      ]),
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
    files: ['**/*.js'],
    ...tseslint.configs.disableTypeChecked,
    languageOptions: {
      ...tseslint.configs.disableTypeChecked.languageOptions,
      globals: globals.node,
    },
  },
);
