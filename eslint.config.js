// @ts-check
// `npm run lint` = this (type-aware typescript-eslint), `prettier --check`, and `dpdm` for import circles.
import js from '@eslint/js';
import prettier from 'eslint-config-prettier';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', '.servers/**', '.servers-*/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      // tsconfig.test.json covers src, test, bench and scripts: one program for the whole tree.
      parserOptions: { project: './tsconfig.test.json', tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      // The drivers hand rows and events over as `any` (pg's rows, mysql2's RowDataPacket, zongji's
      // events, JSON.parse of a checkpoint), and rows are read by column name with values kept as the
      // server's text on purpose (DESIGN.md invariant 2). Every read would need a typed wrapper first:
      // ~640 reports, none a bug. Typed row readers are their own piece of work.
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      // Many methods implement an async contract (Check.run, Probes, close) with a value at hand;
      // `async` keeps a throw a rejection, which is what their callers handle.
      '@typescript-eslint/require-await': 'off',
      // Rejections and rethrows pass on what the driver threw, unchanged: the runner tells a lost
      // connection from a bad statement by the driver's own error (its code), so nothing is rewrapped.
      '@typescript-eslint/prefer-promise-reject-errors': 'off',
      '@typescript-eslint/only-throw-error': 'off',
      // Errors that replace a driver's on purpose carry the one line the user is shown; the driver's
      // error is not a cause worth keeping there.
      'preserve-caught-error': 'off',
      // The functions passed on unbound (a reporter's `write`, a heartbeat's `stop`, vitest's matchers)
      // are closures in plain objects typed with method syntax, not class methods that use `this`.
      '@typescript-eslint/unbound-method': 'off',
      // `const { state: _state, ...plain } = r` leaves a field out of a copy.
      '@typescript-eslint/no-unused-vars': ['error', { ignoreRestSiblings: true, varsIgnorePattern: '^_', argsIgnorePattern: '^_' }],
    },
  },
  {
    files: ['test/**/*.ts'],
    rules: {
      // Tests print whatever a server or a run returned in their failure messages, unknown shapes included.
      '@typescript-eslint/no-base-to-string': 'off',
      '@typescript-eslint/restrict-template-expressions': 'off',
      // Harnesses assign a value to read it in a callback or a later poll, which the rule cannot follow.
      'no-useless-assignment': 'off',
      // test/corpus hands an async 'close' handler to a child process: a harness, not shipped code.
      '@typescript-eslint/no-misused-promises': 'off',
    },
  },
  { files: ['**/*.js', '**/*.mjs'], ...tseslint.configs.disableTypeChecked },
  // Formatting is prettier's (npm run lint runs prettier --check); eslint does not judge it.
  prettier,
);
