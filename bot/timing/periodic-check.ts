// A check run now and every `everyMs`, one at a time: a slow Redis does not stack them up.
import { within } from './within.js';

export class PeriodicCheck {
  private timer?: NodeJS.Timeout;
  private checking?: Promise<void>;

  constructor(
    private readonly check: () => Promise<void>,
    private readonly everyMs: number,
  ) {}

  start(): void {
    this.tick();
    this.timer = setInterval(() => this.tick(), this.everyMs);
    this.timer.unref();
  }

  private tick(): void {
    this.checking ??= this.check().finally(() => {
      this.checking = undefined;
    });
  }

  /** No more checks; waits up to `timeoutMs` for one running (an unreachable Redis must not hold up a shutdown). */
  async stop(timeoutMs: number): Promise<void> {
    clearInterval(this.timer);
    await within(this.checking?.catch(() => undefined) ?? Promise.resolve(), timeoutMs, () => undefined);
  }
}
