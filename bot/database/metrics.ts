// Database error counter. The operation label is bounded: model.action, a raw operation
// ($queryRaw, ...) or `transaction`; never query text or values.
import { Counter, type Registry } from 'prom-client';

export class DatabaseMetrics {
  readonly errors: Counter<'operation'>;

  constructor(registry?: Registry) {
    this.errors = new Counter({
      name: 'shardwarden_database_errors_total',
      help: 'Database queries and transactions that failed, by operation (model.action, raw operation or transaction).',
      labelNames: ['operation'],
      registers: registry ? [registry] : [],
    });
  }
}
