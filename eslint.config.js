import js from '@eslint/js';
import tseslint from 'typescript-eslint';

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
    // are types (`import type`), its calls are operator/kube/api-client.ts's.
    files: ['operator/**/*.ts', 'bot/**/*.ts', 'bin/**/*.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          paths: [
            {
              name: '@kubernetes/client-node',
              message: 'import type only; talk to the apiserver with operator/kube/api-client.ts',
              allowTypeImports: true,
            },
          ],
        },
      ],
    },
  },
);
