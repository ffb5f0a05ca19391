// Database errors must never carry the connection string or its password into logs, metrics or
// error messages. Drivers do not normally echo them, but a misparsed URL or a wrapped error can.

/** The URL itself and, when it has one, its password (raw and percent-decoded). */
function secretsOf(databaseUrl: string): string[] {
  const secrets = [databaseUrl];
  try {
    const password = new URL(databaseUrl).password;
    if (password) secrets.push(password, decodeURIComponent(password));
  } catch {
    // Not a parseable URL: the whole string is still masked.
  }
  return secrets.filter((s) => s.length > 0).sort((a, b) => b.length - a.length);
}

export function redactText(text: string, databaseUrl: string): string {
  let out = text;
  for (const secret of secretsOf(databaseUrl)) out = out.split(secret).join('[redacted]');
  return out;
}

/** Masks the URL and password in an error's message and stack, in place, and returns it. */
export function redactError<E>(err: E, databaseUrl: string): E {
  if (err instanceof Error) {
    err.message = redactText(err.message, databaseUrl);
    if (err.stack) err.stack = redactText(err.stack, databaseUrl);
  }
  return err;
}
