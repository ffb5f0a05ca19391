import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const CLIENT_NODE_MESSAGE = 'import type only; talk to the apiserver with operator/kube/api-client.ts';

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'coverage/', 'charts/', 'manifests/', 'bot/database/generated/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  {
    // The operator and the bot runtime must not load @kubernetes/client-node (~80 MB): its models
    // are types (`import type`), its calls are operator/kube/api-client.ts's. An import whose
    // specifiers are all inline `type` still loads the module under verbatimModuleSyntax, so it
    // is refused too, and so are its subpaths and import().
    files: ['operator/**/*.ts', 'bot/**/*.ts', 'bin/**/*.ts'],
    rules: {
      '@typescript-eslint/no-import-type-side-effects': 'error',
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          paths: [
            {
              name: '@kubernetes/client-node',
              message: CLIENT_NODE_MESSAGE,
              allowTypeImports: true,
            },
          ],
          patterns: [
            { group: ['@kubernetes/client-node/*'], message: CLIENT_NODE_MESSAGE, allowTypeImports: true },
          ],
        },
      ],
      'no-restricted-syntax': [
        'error',
        {
          selector: 'ImportExpression[source.value=/^@kubernetes\\u002Fclient-node/]',
          message: CLIENT_NODE_MESSAGE,
        },
      ],
    },
  },
);
